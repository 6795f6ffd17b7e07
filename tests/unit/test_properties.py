"""Properties: request fingerprints (ACP semantics), money totals, and the stock store against a model."""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from babel.numbers import get_currency_symbol, parse_decimal
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from mcp_checkout import domain
from mcp_checkout.domain import CatalogRow, Money, PricedLine, currency_exponent, money_sum, utc_now
from mcp_checkout.errors import InvalidInput
from mcp_checkout.store import catalog as catalog_store
from mcp_checkout.store.catalog_write import upsert_catalog
from mcp_checkout.store.db import Database
from mcp_checkout.store.models import skus

# ---------------------------------------------------------------- fingerprints
TEXT = st.text(max_size=12)  # hypothesis' text() never yields lone surrogates: JSON a client can send
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
REQUESTS = st.dictionaries(TEXT, JSON_VALUES, max_size=6)
FAST = settings(max_examples=60, deadline=None, database=None)


def _reorder(value: Any, rng: Any) -> Any:
    """The same JSON value with every object's keys in a different insertion order."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {key: _reorder(value[key], rng) for key in keys}
    if isinstance(value, list):
        return [_reorder(item, rng) for item in value]
    return value


def _as_floats(value: Any) -> Any:
    """Integers written as floats (1 -> 1.0) where a float holds them exactly."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) < 2**53:
        return float(value)
    if isinstance(value, dict):
        return {key: _as_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_floats(item) for item in value]
    return value


@FAST
@given(REQUESTS, st.randoms(use_true_random=False))
def test_fingerprint_ignores_key_order(request: dict[str, Any], rng: Any) -> None:
    assert domain.fingerprint(_reorder(request, rng)) == domain.fingerprint(request)


@FAST
@given(REQUESTS, st.sampled_from([None, 0, 2, "\t"]), st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : ")]))
def test_fingerprint_ignores_json_formatting(request: dict[str, Any], indent: Any, separators: Any) -> None:
    """Two clients serialise the same object differently; the server parses both to one fingerprint."""
    compact = json.loads(json.dumps(request, separators=(",", ":")))
    spaced = json.loads(json.dumps(request, indent=indent, separators=separators, ensure_ascii=bool(indent)))
    assert domain.fingerprint(spaced) == domain.fingerprint(compact) == domain.fingerprint(request)


@FAST
@given(REQUESTS)
def test_integral_floats_equal_integers(request: dict[str, Any]) -> None:
    assert domain.fingerprint(_as_floats(request)) == domain.fingerprint(request)


def test_the_acp_examples() -> None:
    fp = domain.fingerprint
    assert fp({"a": 1.0}) == fp({"a": 1})
    assert fp({"a": 1, "b": 2}) == fp({"b": 2, "a": 1})
    assert fp({"a": None}) != fp({})
    assert fp({"a": [1, 2]}) != fp({"a": [2, 1]})
    assert fp({"a": 1.5}) != fp({"a": 1})
    assert fp({"a": True}) != fp({"a": 1})
    assert fp({"a": False}) != fp({"a": 0})
    assert fp({"a": "1"}) != fp({"a": 1})
    assert fp({"a": {}}) != fp({"a": []})
    assert fp({"a": ""}) != fp({"a": None})
    assert len(fp({})) == 64


def test_the_canonical_form_is_stable_across_releases() -> None:
    # Stored keys keep their fingerprints across an upgrade only if these bytes never change.
    request = {
        "items": [("SKU-2", 1.0), ["SKU-1", 3]],
        "buyer": {"name": "Zoë", "tags": (True, None, 2.5)},
        "n": {2: "two", "1": "one"},
        "cart_id": None,
    }
    assert domain.canonical_json(request) == (
        '{"buyer":{"name":"Zoë","tags":[true,null,2.5]},"cart_id":null,'
        '"items":[["SKU-2",1],["SKU-1",3]],"n":{"1":"one","2":"two"}}'
    )
    assert domain.fingerprint(request) == hashlib.sha256(domain.canonical_json(request).encode()).hexdigest()


@FAST
@given(REQUESTS, TEXT)
def test_null_differs_from_absent(request: dict[str, Any], key: str) -> None:
    request.pop(key, None)
    assert domain.fingerprint({**request, key: None}) != domain.fingerprint(request)


@FAST
@given(st.dictionaries(TEXT, JSON_VALUES, min_size=1, max_size=4), st.lists(JSON_VALUES, min_size=2, max_size=5))
def test_array_order_matters(request: dict[str, Any], items: list[Any]) -> None:
    reordered = list(reversed(items))
    assume(domain.canonical_json(reordered) != domain.canonical_json(items))
    assert domain.fingerprint({**request, "items": items}) != domain.fingerprint({**request, "items": reordered})


@FAST
@given(REQUESTS, REQUESTS)
def test_fingerprints_differ_exactly_when_the_canonical_requests_differ(a: dict[str, Any], b: dict[str, Any]) -> None:
    same = domain.canonical_json(a) == domain.canonical_json(b)
    assert (domain.fingerprint(a) == domain.fingerprint(b)) is same


@FAST
@given(REQUESTS.filter(bool), st.data())
def test_any_semantic_change_changes_the_fingerprint(request: dict[str, Any], data: Any) -> None:
    """Change one value (or add, drop or rename a key) somewhere in the request."""
    key = data.draw(st.sampled_from(sorted(request)))
    change = data.draw(st.sampled_from(["value", "drop", "add", "rename"]))
    changed = dict(request)
    if change == "value":
        new = data.draw(JSON_VALUES)
        assume(domain.canonical_json(new) != domain.canonical_json(request[key]))
        changed[key] = new
    elif change == "drop":
        del changed[key]
    elif change == "add":
        extra = data.draw(TEXT.filter(lambda k: k not in request))
        changed[extra] = data.draw(JSON_VALUES)
    else:
        new_key = data.draw(TEXT.filter(lambda k: k not in request))
        changed[new_key] = changed.pop(key)
    assert domain.fingerprint(changed) != domain.fingerprint(request)


def test_a_real_create_order_request() -> None:
    base = {"cart_id": "cart_1", "email": "ada@example.com", "shipping_address": {"country": "US", "city": "X"}}
    same = json.loads(
        '{ "shipping_address" : {"city":"X","country":"US"}, "email":"ada@example.com","cart_id":"cart_1"}'
    )
    assert domain.fingerprint(same) == domain.fingerprint(base)
    for change in ({"email": "bob@example.com"}, {"shipping_address": {"country": "US", "city": "Y"}}):
        assert domain.fingerprint({**base, **change}) != domain.fingerprint(base)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_invalid_input(number: float) -> None:
    with pytest.raises(InvalidInput):
        domain.fingerprint({"quantity": number})


# ---------------------------------------------------------------- money
CURRENCY = st.sampled_from(["USD", "EUR", "JPY", "GBP", "KWD"])
LINE = st.builds(
    lambda price, quantity: (price, quantity),
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=1, max_value=domain.MAX_QUANTITY),
)


@FAST
@given(CURRENCY, st.lists(LINE, max_size=domain.MAX_CART_LINES))
def test_cart_total_is_the_sum_of_line_totals(currency: str, lines: list[tuple[int, int]]) -> None:
    priced = [PricedLine(f"SKU-{i}", "t", Money(price, currency), qty) for i, (price, qty) in enumerate(lines)]
    for line in priced:
        assert line.line_total == Money(line.unit_price.amount * line.quantity, currency)
    total = money_sum((line.line_total for line in priced), currency)
    assert total == Money(sum(price * qty for price, qty in lines), currency)
    assert total.currency == currency
    # The order of the lines does not change the total.
    assert money_sum((line.line_total for line in reversed(priced)), currency) == total


@FAST
@given(st.lists(LINE, min_size=1, max_size=5), st.integers(min_value=0, max_value=4))
def test_totals_never_mix_currencies(lines: list[tuple[int, int]], odd_one: int) -> None:
    priced = [PricedLine(f"SKU-{i}", "t", Money(price, "USD"), qty) for i, (price, qty) in enumerate(lines)]
    index = odd_one % len(priced)
    priced[index] = PricedLine("EUR-1", "t", Money(lines[index][0], "EUR"), lines[index][1])
    with pytest.raises(ValueError, match="EUR"):
        money_sum((line.line_total for line in priced), "USD")


@FAST
@given(st.integers(min_value=0, max_value=10**12), CURRENCY)
def test_display_round_trips(amount: int, currency: str) -> None:
    shown = Money(amount, currency).display()
    number = re.sub(r"[^0-9.,]", "", shown)
    assert parse_decimal(number, locale="en_US").scaleb(currency_exponent(currency)) == amount
    assert get_currency_symbol(currency, locale="en_US") in shown


# ---------------------------------------------------------------- the stock store against a model
STOCK_ROWS = [
    CatalogRow("Mug", "S-MUG", 1000, "USD", 5),
    CatalogRow("Towel", "S-TOWEL", 900, "USD", 0),
    CatalogRow("Print", "S-PRINT", 5000, "USD", 12),
]
SKU_CODES = [row.sku for row in STOCK_ROWS]


class StockMachine(RuleBasedStateMachine):
    """Reserve, release, commit and restock on a real SQLite file; the database must match a model."""

    template: Path
    workdir: Path

    def __init__(self) -> None:
        super().__init__()
        StockMachine.runs += 1
        path = self.workdir / f"stock-{StockMachine.runs}.db"
        shutil.copyfile(self.template, path)
        self.db = Database(f"sqlite:///{path}")
        self.engine = self.db.sync_engine
        with self.engine.begin() as conn:
            upsert_catalog(conn, STOCK_ROWS, utc_now())
        self.on_hand = {row.sku: row.stock for row in STOCK_ROWS}
        self.reserved = dict.fromkeys(SKU_CODES, 0)
        self.holds: list[tuple[str, int]] = []  # reservations an order would still hold

    runs = 0

    def teardown(self) -> None:
        self.engine.dispose()

    @initialize()
    def nothing_reserved_at_first(self) -> None:
        assert self._database() == {sku: (self.on_hand[sku], 0) for sku in SKU_CODES}

    def _database(self) -> dict[str, tuple[int, int]]:
        with self.engine.begin() as conn:
            rows = conn.execute(select(skus.c.sku, skus.c.stock_on_hand, skus.c.reserved)).all()
        return {sku: (on_hand, reserved) for sku, on_hand, reserved in rows}

    @rule(sku=st.sampled_from(SKU_CODES), quantity=st.integers(min_value=1, max_value=15))
    def reserve(self, sku: str, quantity: int) -> None:
        with self.engine.begin() as conn:
            done = catalog_store.reserve_stock(conn, sku, quantity, utc_now())
        expected = self.on_hand[sku] - self.reserved[sku] >= quantity
        assert done is expected
        if done:
            self.reserved[sku] += quantity
            self.holds.append((sku, quantity))

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def release(self, data: Any) -> None:
        sku, quantity = self.holds.pop(data.draw(st.integers(min_value=0, max_value=len(self.holds) - 1)))
        with self.engine.begin() as conn:
            catalog_store.release_stock(conn, {sku: quantity}, utc_now())
        self.reserved[sku] -= quantity

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def commit(self, data: Any) -> None:
        sku, quantity = self.holds.pop(data.draw(st.integers(min_value=0, max_value=len(self.holds) - 1)))
        with self.engine.begin() as conn:
            catalog_store.commit_stock(conn, {sku: quantity}, utc_now())
        self.reserved[sku] -= quantity
        self.on_hand[sku] -= quantity

    @rule(sku=st.sampled_from(SKU_CODES), quantity=st.integers(min_value=1, max_value=20))
    def release_more_than_is_reserved(self, sku: str, quantity: int) -> None:
        """A bookkeeping slip must never drive reserved below zero (the store refuses it)."""
        assume(quantity > self.reserved[sku])
        with self.engine.begin() as conn:
            catalog_store.release_stock(conn, {sku: quantity}, utc_now())
            catalog_store.commit_stock(conn, {sku: quantity}, utc_now())

    @rule(sku=st.sampled_from(SKU_CODES), extra=st.integers(min_value=0, max_value=10))
    def set_stock_at_or_above_reserved(self, sku: str, extra: int) -> None:
        row = next(r for r in STOCK_ROWS if r.sku == sku)
        target = self.reserved[sku] + extra
        changed = CatalogRow(row.product_name, sku, row.price_minor, row.currency, target)
        with self.engine.begin() as conn:
            upsert_catalog(conn, [changed], utc_now())
        self.on_hand[sku] = target

    @invariant()
    def database_matches_the_model(self) -> None:
        state = self._database()
        for sku, (on_hand, reserved) in state.items():
            assert 0 <= reserved <= on_hand, (sku, on_hand, reserved)
            assert (on_hand, reserved) == (self.on_hand[sku], self.reserved[sku]), sku
            assert reserved == sum(q for s, q in self.holds if s == sku)


def test_stock_store_matches_a_model(sqlite_template: Path, tmp_path: Path) -> None:
    StockMachine.template = sqlite_template
    StockMachine.workdir = tmp_path
    run_state_machine_as_test(
        StockMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
