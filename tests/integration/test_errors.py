"""Every error an agent can cause, through a real MCP client, on SQLite and PostgreSQL.

Each error must read ``[code] message`` (what a model reads first), carry a structured error with
code/message/retryable/who_fixes, and never leak a traceback, SQL, or the rejected input itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from mcp import Client
from sqlalchemy import Connection, text

from mcp_checkout.domain import CatalogRow, utc_now
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.service.orders import CREATE_ORDER, CreateOrder
from mcp_checkout.store import idempotency as idempotency_store
from mcp_checkout.store.catalog_write import upsert_catalog
from tests.support import tool_data as data

WHO_FIXES = {"agent", "buyer", "merchant", "retry", "operator"}
LEAKS = re.compile(
    r"Traceback|File \"|\bSELECT\b|\bINSERT\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE FROM\b|\bWHERE\b|"
    r"sqlalchemy|sqlite3|asyncpg|aiosqlite|psycopg|IntegrityError|OperationalError|ProgrammingError",
    re.IGNORECASE,
)
ITEM = {"sku": "MUG-01", "quantity": 1}
# Argument validation happens before any database work: one backend is enough for those tests.
VALIDATION_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def error_of(result: Any, code: str, *, rejected: Sequence[str] = ()) -> dict[str, Any]:
    """Check the error's shape and cleanliness; return its structured body."""
    assert result.is_error, f"expected [{code}], got a result: {str(result.structured_content)[:300]}"
    first = result.content[0].text
    assert first.startswith(f"[{code}] "), first
    everything = "\n".join(getattr(part, "text", "") for part in result.content)
    leak = LEAKS.search(everything)
    assert leak is None, f"error text leaks {leak.group(0)!r}: {everything}"
    for value in rejected:
        assert value not in everything, f"the rejected input is echoed back: {everything[:500]}"
    # no structuredContent on errors: clients (the Inspector, the TS SDK) validate it against outputSchema
    assert result.structured_content is None
    body = json.loads(result.content[1].text)["error"]
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert len(body["message"]) > 20
    assert isinstance(body["retryable"], bool)
    assert body["who_fixes"] in WHO_FIXES
    return dict(body)


async def reserved(services: Services) -> dict[str, int]:
    from mcp_checkout.store.models import skus

    rows = await services.db.read(lambda c: c.execute(skus.select()).mappings().all())
    return {row["sku"]: row["reserved"] for row in rows}


async def order_count(services: Services) -> int:
    return await services.db.read(lambda c: c.execute(text("SELECT count(*) FROM orders")).scalar_one())


# ---------------------------------------------------------------- invalid_input: arguments
BIG = "Zq" * 5000  # 10 kB, distinctive so an echo is easy to spot
LONG_KEY = "k" * 256
INVALID_ARGUMENTS: list[tuple[str, dict[str, Any], Sequence[str]]] = [
    ("add_to_cart", {"cart_id": "cart_abc", "sku": "MUG-01", "quantity": 0}, ()),
    ("add_to_cart", {"cart_id": "cart_abc", "sku": "MUG-01", "quantity": -1}, ()),
    ("add_to_cart", {"cart_id": "cart_abc", "sku": "MUG-01", "quantity": 10**9}, ("1000000000",)),
    ("add_to_cart", {"cart_id": "cart_abc", "sku": "MUG-01", "quantity": "abc"}, ("'abc'", '"abc"')),
    ("add_to_cart", {"cart_id": "cart_abc", "sku": "MUG-01", "quantity": [1]}, ("[1]",)),
    ("add_to_cart", {"cart_id": "cart_abc", "sku": "MUG-01", "quantity": 2.5}, ("2.5",)),
    ("add_to_cart", {"cart_id": "cart_abc", "sku": BIG, "quantity": 1}, (BIG[:40],)),
    ("add_to_cart", {"cart_id": "not-a-cart-id", "sku": "MUG-01"}, ("not-a-cart-id",)),
    ("update_cart_item", {"cart_id": "cart_abc", "sku": "MUG-01", "quantity": 0}, ()),
    ("update_cart_item", {"cart_id": "cart_abc", "sku": "MUG-01", "quantity": 1000}, ()),
    ("search_catalog", {"query": BIG}, (BIG[:40],)),
    ("search_catalog", {"query": "mug", "limit": 0}, ()),
    ("search_catalog", {"query": "mug", "limit": 101}, ()),
    ("search_catalog", {"query": "mug", "min_price": -1}, ()),
    ("search_catalog", {"query": "mug", "cursor": BIG}, (BIG[:40],)),
    ("get_product", {"sku": BIG}, (BIG[:40],)),
    ("get_product", {"product_id": "../../etc/passwd"}, ("../../etc/passwd",)),
    ("create_cart", {"currency": "usd-dollars"}, ("usd-dollars",)),
    ("create_order", {"idempotency_key": LONG_KEY, "items": [ITEM]}, (LONG_KEY,)),
    ("create_order", {"idempotency_key": "", "items": [ITEM]}, ()),
    ("create_order", {"idempotency_key": "my key with spaces", "items": [ITEM]}, ("my key with spaces",)),
    ("create_order", {"idempotency_key": "orders/2024/0001", "items": [ITEM]}, ("orders/2024/0001",)),
    ("create_order", {"idempotency_key": "ключ-заказа", "items": [ITEM]}, ("ключ-заказа",)),
    ("create_order", {"idempotency_key": "k-q0", "items": [{"sku": "MUG-01", "quantity": 0}]}, ()),
    ("create_order", {"idempotency_key": "k-q-1", "items": [{"sku": "MUG-01", "quantity": -1}]}, ()),
    ("create_order", {"idempotency_key": "k-qbig", "items": [{"sku": "MUG-01", "quantity": 10**9}]}, ("1000000000",)),
    ("create_order", {"idempotency_key": "k-qstr", "items": [{"sku": "MUG-01", "quantity": "abc"}]}, ("'abc'",)),
    ("create_order", {"idempotency_key": "k-qlist", "items": [{"sku": "MUG-01", "quantity": [1]}]}, ("[1]",)),
    ("create_order", {"idempotency_key": "k-items", "items": "MUG-01"}, ()),
    (
        "create_order",
        {"idempotency_key": "k-extra", "items": [{"sku": "MUG-01", "quantity": 1, "unit_price": "sneaky-price-1"}]},
        ("sneaky-price-1",),
    ),
    (
        "create_order",
        {
            "idempotency_key": "k-addr",
            "items": [ITEM],
            "shipping_address": {
                "name": "Ada",
                "line1": "1 Main St",
                "city": "Springfield",
                "postal_code": "12345",
                "country": "US",
                "gate_code": "sneaky-gate-9981",
            },
        },
        ("sneaky-gate-9981",),
    ),
    (
        "create_order",
        {"idempotency_key": "k-country", "items": [ITEM], "shipping_address": {"name": "Ada", "line1": "1 Main"}},
        (),
    ),
    ("create_order", {"idempotency_key": "k-email", "items": [ITEM], "email": "not an email"}, ("not an email",)),
    ("create_order", {"idempotency_key": "k-ref", "items": [ITEM], "merchant_reference_id": "ref with space"}, ()),
    ("get_order", {"order_id": "12345"}, ()),
    ("lookup_orders", {"merchant_reference_id": "x" * 129}, ("x" * 129,)),
    ("cancel_order", {"order_id": "ord_abc", "reason": BIG}, (BIG[:40],)),
]


@VALIDATION_ONLY
async def test_invalid_arguments_are_invalid_input_without_echo(server: Any, seeded: Services) -> None:
    """One client, every case (a test each would spend its time re-creating the database)."""
    failures: list[str] = []
    async with Client(server) as client:
        for number, (tool, arguments, rejected) in enumerate(INVALID_ARGUMENTS):
            try:
                body = error_of(await client.call_tool(tool, arguments), "invalid_input", rejected=rejected)
                assert body["retryable"] is False
                assert body["who_fixes"] == "agent"
            except AssertionError as exc:
                failures.append(f"case {number} {tool} {str(arguments)[:120]}: {str(exc)[:400]}")
    assert failures == [], "\n".join(failures)
    assert await order_count(seeded) == 0
    assert set((await reserved(seeded)).values()) == {0}


@VALIDATION_ONLY
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_validation_errors_name_the_field_in_both_modes(server: Any, seeded: Services, mode: str) -> None:
    async with Client(server, mode=mode) as client:
        result = await client.call_tool("add_to_cart", {"cart_id": "cart_abc", "sku": "MUG-01", "quantity": 0})
        body = error_of(result, "invalid_input")
        assert "quantity" in body["message"]
        assert [p["field"] for p in body["details"]["problems"]] == ["quantity"]
        result = await client.call_tool("no_such_tool", {})
        error_of(result, "invalid_input")


@VALIDATION_ONLY
async def test_a_boolean_is_not_a_quantity(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        result = await client.call_tool(
            "create_order", {"idempotency_key": "k-bool", "items": [ITEM | {"quantity": True}]}
        )
        error_of(result, "invalid_input")
    assert await order_count(seeded) == 0


@VALIDATION_ONLY
async def test_unknown_arguments_are_refused(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        typo = {"idempotency_key": "k-typo", "items": [ITEM], "merchant_reference": "crm-typo-77"}
        error_of(await client.call_tool("create_order", typo), "invalid_input", rejected=("crm-typo-77",))
        error_of(await client.call_tool("search_catalog", {"query": "mug", "limt": 1}), "invalid_input")
    assert await order_count(seeded) == 0


@VALIDATION_ONLY
async def test_a_lone_surrogate_anywhere_is_invalid_input(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        result = await client.call_tool("create_order", {"idempotency_key": "k-sur", "items": [ITEM], "note": "\ud800"})
        error_of(result, "invalid_input")
    assert await order_count(seeded) == 0


@VALIDATION_ONLY
async def test_lone_surrogates_in_declared_arguments_are_invalid_input(server: Any, seeded: Services) -> None:
    address = {"name": "Ada \ud800", "line1": "1 Main St", "city": "X", "postal_code": "1", "country": "US"}
    async with Client(server) as client:
        for tool, args in [
            ("search_catalog", {"query": "mug \ud800"}),
            ("create_order", {"idempotency_key": "k-sur2", "items": [ITEM], "shipping_address": address}),
        ]:
            error_of(await client.call_tool(tool, args), "invalid_input")
    assert await order_count(seeded) == 0


@VALIDATION_ONLY
async def test_cart_id_and_items_are_exclusive(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        cart = data(await client.call_tool("create_cart", {}))
        both = {"idempotency_key": "k-both", "cart_id": cart["cart_id"], "items": [ITEM]}
        error_of(await client.call_tool("create_order", both), "invalid_input")
        error_of(await client.call_tool("create_order", {"idempotency_key": "k-neither"}), "invalid_input")
        error_of(await client.call_tool("create_order", {"idempotency_key": "k-empty", "items": []}), "invalid_input")
        twice = {"idempotency_key": "k-dup", "items": [ITEM, ITEM]}
        error_of(await client.call_tool("create_order", twice), "invalid_input")
        error_of(await client.call_tool("get_product", {}), "invalid_input")
        error_of(await client.call_tool("get_product", {"sku": "MUG-01", "product_id": "prod_1"}), "invalid_input")
        # None of the refused calls held on to its key: the same key works for a valid order.
        data(await client.call_tool("create_order", {"idempotency_key": "k-neither", "items": [ITEM]}))
    assert await order_count(seeded) == 1


@VALIDATION_ONLY
async def test_min_price_above_max_price(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        result = await client.call_tool("search_catalog", {"query": "mug", "min_price": 5000, "max_price": 100})
        body = error_of(result, "invalid_input")
        assert "max_price" in body["message"]


@VALIDATION_ONLY
async def test_more_than_100_item_lines_are_refused(server: Any, seeded: Services) -> None:
    rows = [CatalogRow(f"Bulk {i}", f"BULK-{i:03d}", 100, "USD", 5) for i in range(101)]
    now = utc_now()
    await seeded.db.write(lambda conn: upsert_catalog(conn, rows, now))
    items = [{"sku": row.sku, "quantity": 1} for row in rows]
    async with Client(server) as client:
        error_of(await client.call_tool("create_order", {"idempotency_key": "k-101", "items": items}), "invalid_input")
    assert await order_count(seeded) == 0


# ---------------------------------------------------------------- cursors
async def test_invalid_cursors(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        page = data(await client.call_tool("search_catalog", {"query": "mug", "limit": 1}))
        cursor = page["next_cursor"]
        assert cursor
        second = data(await client.call_tool("search_catalog", {"query": "mug", "limit": 1, "cursor": cursor}))
        assert second["items"][0]["sku"] != page["items"][0]["sku"]

        for bad in ("!!!not-a-cursor", "bm90IGpzb24", "eyJrIjoic2VhcmNoX2NhdGFsb2ciLCJwIjotMSwicyI6IngifQ"):
            result = await client.call_tool("search_catalog", {"query": "mug", "limit": 1, "cursor": bad})
            assert error_of(result, "invalid_cursor", rejected=(bad,))["next_actions"] == ["search_catalog"]
        other_query = {"query": "socks", "limit": 1, "cursor": cursor}
        error_of(await client.call_tool("search_catalog", other_query), "invalid_cursor", rejected=(cursor,))
        other_filter = {"query": "mug", "limit": 1, "cursor": cursor, "in_stock_only": True}
        error_of(await client.call_tool("search_catalog", other_filter), "invalid_cursor")


# ---------------------------------------------------------------- not found
async def test_not_found_errors(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        body = error_of(await client.call_tool("get_product", {"sku": "NOPE-1"}), "sku_not_found")
        assert "search_catalog" in body["message"]
        error_of(await client.call_tool("get_product", {"product_id": "prod_000000"}), "product_not_found")
        error_of(await client.call_tool("get_cart", {"cart_id": "cart_nope"}), "cart_not_found")
        error_of(await client.call_tool("add_to_cart", {"cart_id": "cart_nope", "sku": "MUG-01"}), "cart_not_found")
        body = error_of(
            await client.call_tool("create_order", {"idempotency_key": "k-nocart", "cart_id": "cart_nope"}),
            "cart_not_found",
        )
        assert "create_cart" in body["message"]
        cart = data(await client.call_tool("create_cart", {}))
        add = {"cart_id": cart["cart_id"], "sku": "NOPE-1"}
        error_of(await client.call_tool("add_to_cart", add), "sku_not_found")
        items = {"idempotency_key": "k-nosku", "items": [ITEM, {"sku": "NOPE-1", "quantity": 1}]}
        error_of(await client.call_tool("create_order", items), "sku_not_found")

        error_of(await client.call_tool("get_order", {"order_id": "ord_nope"}), "order_not_found")
        error_of(await client.call_tool("cancel_order", {"order_id": "ord_nope"}), "order_not_found")
        body = error_of(
            await client.call_tool("lookup_orders", {"merchant_reference_id": "crm:404"}), "order_not_found"
        )
        assert "allow_missing" in body["message"]
        missing = data(
            await client.call_tool("lookup_orders", {"merchant_reference_id": "crm:404", "allow_missing": True})
        )
        assert missing["status"] == "not_found"
        assert missing["orders"] == []
    assert await order_count(seeded) == 0
    assert set((await reserved(seeded)).values()) == {0}


@VALIDATION_ONLY
async def test_unknown_resources_say_which_code(server: Any, seeded: Services) -> None:
    from mcp.shared.exceptions import MCPError

    async with Client(server) as client:
        with pytest.raises(MCPError) as caught:
            await client.read_resource("catalog://products/NOPE-1")
        assert "[sku_not_found]" in str(caught.value)
        with pytest.raises(MCPError) as caught:
            await client.read_resource("orders://ord_nope")
        assert "[order_not_found]" in str(caught.value)


# ---------------------------------------------------------------- business rules
async def test_currency_mismatch(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        cart = data(await client.call_tool("create_cart", {"currency": "USD"}))
        add = {"cart_id": cart["cart_id"], "sku": "TOWEL-EU", "quantity": 1}
        body = error_of(await client.call_tool("add_to_cart", add), "currency_mismatch")
        assert "EUR" in body["message"]
        assert "create_cart" in body["message"]
        assert data(await client.call_tool("get_cart", {"cart_id": cart["cart_id"]}))["lines"] == []
        mixed = {"idempotency_key": "k-mixed", "items": [ITEM, {"sku": "TOWEL-EU", "quantity": 1}]}
        body = error_of(await client.call_tool("create_order", mixed), "currency_mismatch")
        assert body["details"]["currencies"] == ["EUR", "USD"]
    assert await order_count(seeded) == 0
    assert set((await reserved(seeded)).values()) == {0}


async def test_insufficient_stock_gives_the_numbers_and_leaves_the_key_usable(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        cart = data(await client.call_tool("create_cart", {}))
        add = {"cart_id": cart["cart_id"], "sku": "MUG-02", "quantity": 3}
        body = error_of(await client.call_tool("add_to_cart", add), "insufficient_stock")
        assert "Only 2" in body["message"]
        assert "3 requested" in body["message"]
        assert (body["details"]["available"], body["details"]["requested"]) == (2, 3)
        assert "update_cart_item" in body["next_actions"]

        order = {"idempotency_key": "k-short", "items": [{"sku": "MUG-02", "quantity": 5}]}
        body = error_of(await client.call_tool("create_order", order), "insufficient_stock")
        assert (body["details"]["available"], body["details"]["requested"]) == (2, 5)
        none_left = {"idempotency_key": "k-none", "items": [{"sku": "SOCK-L-GRY", "quantity": 1}]}
        body = error_of(await client.call_tool("create_order", none_left), "insufficient_stock")
        assert body["details"]["available"] == 0
        assert await order_count(seeded) == 0
        assert set((await reserved(seeded)).values()) == {0}

        # Only successful results are stored: after a restock the very same call succeeds with the same key.
        restock = [CatalogRow("Enamel Camp Mug", "MUG-02", 1450, "USD", 9, "Speckled enamel mug for camping trips.")]
        now = utc_now()
        await seeded.db.write(lambda conn: upsert_catalog(conn, restock, now))
        created = data(await client.call_tool("create_order", order))
        assert created["replayed"] is False
    assert (await reserved(seeded))["MUG-02"] == 5


async def test_cart_empty_leaves_the_cart_open(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        cart = data(await client.call_tool("create_cart", {}))
        args = {"idempotency_key": "k-empty-cart", "cart_id": cart["cart_id"]}
        body = error_of(await client.call_tool("create_order", args), "cart_empty")
        assert "add_to_cart" in body["message"]
        again = data(await client.call_tool("get_cart", {"cart_id": cart["cart_id"]}))
        assert again["status"] == "open"
        assert again["order_id"] is None
        data(await client.call_tool("add_to_cart", {"cart_id": cart["cart_id"], "sku": "MUG-01"}))
        data(await client.call_tool("create_order", args))
    assert await order_count(seeded) == 1


async def test_cart_not_open_and_cart_already_ordered(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        cart = data(await client.call_tool("create_cart", {}))
        cart_id = cart["cart_id"]
        data(await client.call_tool("add_to_cart", {"cart_id": cart_id, "sku": "MUG-01", "quantity": 2}))
        first = data(
            await client.call_tool(
                "create_order", {"idempotency_key": "k-a", "cart_id": cart_id, "merchant_reference_id": "r1"}
            )
        )
        for tool, args in [
            ("add_to_cart", {"cart_id": cart_id, "sku": "MUG-01"}),
            ("update_cart_item", {"cart_id": cart_id, "sku": "MUG-01", "quantity": 1}),
            ("remove_from_cart", {"cart_id": cart_id, "sku": "MUG-01"}),
        ]:
            body = error_of(await client.call_tool(tool, args), "cart_not_open")
            assert first["order_id"] in body["message"]

        # A new key with the same details: the cart's one order, replayed.
        same = {"idempotency_key": "k-b", "cart_id": cart_id, "merchant_reference_id": "r1"}
        replay = data(await client.call_tool("create_order", same))
        assert replay["order_id"] == first["order_id"]
        assert replay["replayed"] is True
        # A new key with different details: refused, naming the order.
        different = {"idempotency_key": "k-c", "cart_id": cart_id, "merchant_reference_id": "r2"}
        body = error_of(await client.call_tool("create_order", different), "cart_already_ordered")
        assert first["order_id"] in body["message"]
        assert body["details"]["order_id"] == first["order_id"]
        assert "get_order" in body["next_actions"]
    assert await order_count(seeded) == 1
    assert (await reserved(seeded))["MUG-01"] == 2


async def test_idempotency_conflict_names_the_order(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        first = data(await client.call_tool("create_order", {"idempotency_key": "k-1", "items": [ITEM]}))
        changed = {"idempotency_key": "k-1", "items": [{"sku": "MUG-01", "quantity": 2}]}
        body = error_of(await client.call_tool("create_order", changed), "idempotency_conflict")
        assert body["retryable"] is False
        assert first["order_id"] in body["message"]
        assert body["details"]["order_id"] == first["order_id"]
        # null differs from an absent field: that is a different request too.
        with_null = {"idempotency_key": "k-1", "items": [ITEM], "email": None}
        error_of(await client.call_tool("create_order", with_null), "idempotency_conflict")
    assert await order_count(seeded) == 1
    assert (await reserved(seeded))["MUG-01"] == 1


def _claim(key: str, locked_for: timedelta) -> Any:
    """Another attempt of ``create_order{items: [ITEM]}`` holding ``key`` (as a two-phase claim does)."""
    call = CREATE_ORDER.request(CreateOrder(key, items=[("MUG-01", 1)], sent={"idempotency_key", "items"}))

    def run(conn: Connection) -> bool:
        now = utc_now()
        record_id = idempotency_store.try_insert(
            conn,
            principal_id="local",
            operation="create_order",
            key=key,
            fingerprint=call.fingerprint,
            status="in_progress",
            resource_id=None,
            claim_token="another-attempt",
            locked_until=now + locked_for,
            now=now,
            expires_at=now + timedelta(days=2),
        )
        return record_id is not None

    return run


async def test_idempotency_in_flight_while_another_attempt_holds_the_key(server: Any, seeded: Services) -> None:
    request = {"items": [ITEM]}
    assert await seeded.db.write(_claim("k-busy", timedelta(seconds=20)))
    async with Client(server) as client:
        result = await client.call_tool("create_order", {"idempotency_key": "k-busy", **request})
        body = error_of(result, "idempotency_in_flight")
        assert body["retryable"] is True
        assert body["who_fixes"] == "retry"
        assert 1 <= body["retry_after_seconds"] <= 5
        assert "same key" in body["message"]
        # A different request under the held key is a conflict, not "in flight".
        changed = {"idempotency_key": "k-busy", "items": [{"sku": "MUG-01", "quantity": 3}]}
        error_of(await client.call_tool("create_order", changed), "idempotency_conflict")
    assert await order_count(seeded) == 0
    assert set((await reserved(seeded)).values()) == {0}


async def test_a_dead_attempts_key_is_taken_over_after_its_lease(server: Any, seeded: Services) -> None:
    request = {"items": [ITEM]}
    assert await seeded.db.write(_claim("k-dead", timedelta(seconds=-1)))
    async with Client(server) as client:
        created = data(await client.call_tool("create_order", {"idempotency_key": "k-dead", **request}))
        replay = data(await client.call_tool("create_order", {"idempotency_key": "k-dead", **request}))
    assert replay["order_id"] == created["order_id"]
    assert replay["replayed"] is True
    assert await order_count(seeded) == 1


async def test_cancel_an_expired_order_is_invalid_state(server: Any, seeded: Services, settings: Any) -> None:
    async with Client(server) as client:
        order = data(await client.call_tool("create_order", {"idempotency_key": "k-exp", "items": [ITEM]}))
        later = utc_now() + timedelta(minutes=settings.order_ttl_minutes + 1)
        sweeper = build_services(settings, clock=lambda: later)
        try:
            assert await sweeper.orders.expire_due() == 1
        finally:
            await sweeper.close()
        body = error_of(await client.call_tool("cancel_order", {"order_id": order["order_id"]}), "invalid_state")
        assert "expired" in body["message"]
        assert body["details"]["status"] == "expired"
        assert "get_order" in body["message"]
    assert (await reserved(seeded))["MUG-01"] == 0


# ---------------------------------------------------------------- fail closed
async def _hide_idempotency_table(services: Services) -> None:
    if services.db.dialect == "sqlite":  # the file is this test's own: really drop it
        await services.db.write(lambda c: c.exec_driver_sql("DROP TABLE idempotency_keys"))
    else:  # the PostgreSQL database is shared by the run: make the table vanish, put it back after
        await services.db.write(lambda c: c.exec_driver_sql("ALTER TABLE idempotency_keys RENAME TO idem_hidden"))


async def _restore_idempotency_table(services: Services) -> None:
    if services.db.dialect == "sqlite":
        from mcp_checkout.store.models import idempotency_keys

        await services.db.write(idempotency_keys.create)
    else:
        await services.db.write(lambda c: c.exec_driver_sql("ALTER TABLE idem_hidden RENAME TO idempotency_keys"))


async def test_create_order_fails_closed_without_the_idempotency_store(server: Any, seeded: Services) -> None:
    args = {"idempotency_key": "k-closed", "items": [{"sku": "MUG-01", "quantity": 3}]}
    async with Client(server) as client:
        data(await client.call_tool("search_catalog", {"query": "mug"}))  # the server is up and connected
        await _hide_idempotency_table(seeded)
        try:
            result = await client.call_tool("create_order", args)
            body = error_of(result, "storage_unavailable")
            assert body["retryable"] is True
            assert "idempotency_keys" not in result.content[0].text
            assert await order_count(seeded) == 0
            assert set((await reserved(seeded)).values()) == {0}
        finally:
            await _restore_idempotency_table(seeded)
        # Once the store is back, the retry with the same key creates the order exactly once.
        created = data(await client.call_tool("create_order", args))
        assert created["replayed"] is False
        assert data(await client.call_tool("create_order", args))["order_id"] == created["order_id"]
    assert await order_count(seeded) == 1
    assert (await reserved(seeded))["MUG-01"] == 3


# ---------------------------------------------------------------- hostile search input
HOSTILE_QUERIES = [
    '"',
    '""',
    "mug OR socks",
    "OR",
    "AND NOT",
    "*",
    "mug*",
    "NEAR(mug socks)",
    "NEAR(",
    "'; DROP TABLE skus; --",
    "\\",
    "mug:*",
    "a & b | !c",
    "(((",
    "^mug",
    "-mug",
    "sku_fts MATCH 1",
    "🙂☕🧦",
    "mug 🙂",
    "\x00",
    "ß İ ǅ ﬁ",
    "中文 商品",
    "the a an of",
    "x" * 500,
    " ".join(["mug"] * 100),
    "w" * 41 + " " + "y" * 41,
]


async def test_hostile_search_input_never_breaks_search(server: Any, seeded: Services) -> None:
    failures: list[str] = []
    async with Client(server) as client:
        for query in HOSTILE_QUERIES:
            try:
                result = await client.call_tool("search_catalog", {"query": query})
                if result.is_error:
                    error_of(result, "invalid_input")
                else:
                    assert isinstance(result.structured_content["items"], list)
                # The catalog is intact and search still works afterwards.
                hits = data(await client.call_tool("search_catalog", {"query": "mug"}))
                assert {item["sku"] for item in hits["items"]} == {"MUG-01", "MUG-02"}
            except AssertionError as exc:
                failures.append(f"{query[:60]!r}: {str(exc)[:400]}")
    assert failures == [], "\n".join(failures)


async def test_search_operators_are_treated_as_words(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        for query in ('"mug"', "mug*", "(mug)", "mug:", "MUG"):
            hits = data(await client.call_tool("search_catalog", {"query": query}))
            assert {item["sku"] for item in hits["items"]} == {"MUG-01", "MUG-02"}, query
        too_long = await client.call_tool("search_catalog", {"query": BIG})
        error_of(too_long, "invalid_input", rejected=(BIG[:40],))
