"""The merchant's discount codes: checked, stored, listed with their uses, every change audited. Whether a
code applies to a cart, and how much it takes off, is domain/pricing.py's; counting uses is store/pricing.py's.

- ``code``: matched case-insensitively, stored upper-case, 1-64 of A-Z 0-9 _ -.
- ``kind`` ``percent``: ``value`` in basis points, 1-10000; ``fixed``: ``value`` in minor units of
  ``currency`` (the store's default unless given); ``free_shipping``: no value.
- ``min_subtotal`` is in minor units of the same currency; ``starts_at`` < ``ends_at`` (UTC).
- ``applies_to``: the whole cart (default), or lines in some categories and/or with some SKUs, each of which
  the catalog must have on sale (a code naming a misspelt or missing one would silently never apply:
  ``invalid_input`` names them; add the products first, then the code).
- An upsert states the whole code (omitted = default) but keeps the uses counted so far; ``max_uses``
  below them is refused (the orders that used the code keep it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection

from mcp_checkout import domain
from mcp_checkout.domain import Clock, Principal
from mcp_checkout.domain.pricing import BPS, DISCOUNT_KINDS, normalize_code
from mcp_checkout.domain.store_profile import StoreProfile
from mcp_checkout.errors import InvalidInput
from mcp_checkout.service import audit, catalog_rules, config_checks, policy
from mcp_checkout.service.store_profile import current
from mcp_checkout.service.views import DiscountCodeList, DiscountCodeOut, DiscountScopeOut, MoneyOut
from mcp_checkout.store import discount_codes as code_store
from mcp_checkout.store.db import Database

MAX_USES: Final = 10**9
MAX_SCOPE: Final = 500
_CODE = re.compile(r"[A-Z0-9_-]{1,64}")


@dataclass(frozen=True)
class DiscountCodeInput:
    code: str
    kind: str
    value: int | None = None
    currency: str | None = None
    min_subtotal: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_uses: int | None = None
    max_uses_per_buyer: int | None = None
    categories: Sequence[str] = ()
    skus: Sequence[str] = ()
    active: bool = True


def check_code(value: str) -> str:
    code = normalize_code(value)
    if not _CODE.fullmatch(code):
        raise InvalidInput(
            f"code {value[:64]!r} must be 1-64 of A-Z 0-9 _ - (case does not matter), e.g. SUMMER-15.",
            details={"field": "code"},
        )
    return code


def _value(command: DiscountCodeInput) -> int:
    if command.kind == "free_shipping":
        if command.value:
            raise InvalidInput("A free_shipping code takes no value; leave it out.", details={"field": "value"})
        return 0
    if command.value is None:
        example = "1500 for 15 %" if command.kind == "percent" else "500 for 5.00"
        raise InvalidInput(f"A {command.kind} code needs a value, e.g. {example}.", details={"field": "value"})
    if command.kind == "percent":
        return config_checks.amount(command.value, "value (basis points)", minimum=1, maximum=BPS)
    return config_checks.amount(command.value, "value", minimum=1)


def _scope(command: DiscountCodeInput) -> dict[str, Any]:
    if len(command.categories) > MAX_SCOPE or len(command.skus) > MAX_SCOPE:
        raise InvalidInput(f"applies_to lists at most {MAX_SCOPE} categories and {MAX_SCOPE} SKUs.")
    categories = sorted(
        {config_checks.text(name, "applies_to.categories", catalog_rules.MAX_CATEGORY, required=True)
         for name in command.categories}
    )  # fmt: skip
    skus = sorted(
        {config_checks.text(sku, "applies_to.skus", catalog_rules.MAX_SKU, required=True) for sku in command.skus}
    )
    if not categories and not skus:
        return {"all": True}
    return {"categories": categories, "skus": skus}


def _check_scope_exists(conn: Connection, scope: Mapping[str, Any]) -> None:
    """``InvalidInput`` naming every SKU and category of ``scope`` the catalog does not have on sale."""
    wanted_skus, categories = scope.get("skus") or [], scope.get("categories") or []
    if not wanted_skus and not categories:
        return
    found_skus, found_keys = code_store.known_scope(conn, wanted_skus, {domain.category_key(c) for c in categories})
    unknown_skus = [sku for sku in wanted_skus if sku not in found_skus]
    unknown_categories = [c for c in categories if domain.category_key(c) not in found_keys]
    if not unknown_skus and not unknown_categories:
        return
    named = [f"SKU(s) {', '.join(unknown_skus[:20])}"] if unknown_skus else []
    named += [f"categor(ies) {', '.join(unknown_categories[:20])}"] if unknown_categories else []
    raise InvalidInput(
        f"applies_to names {' and '.join(named)} that the catalog does not have on sale, so the code would never "
        "apply. Check the spelling (SKU codes are exact; search_catalog, get_product), or add the products "
        "first (upsert_product, import_catalog_csv), then call upsert_discount_code again.",
        details={
            "field": "applies_to",
            "unknown_skus": unknown_skus[:50],
            "unknown_categories": unknown_categories[:50],
        },
        next_actions=["search_catalog", "upsert_product"],
    )


def _uses(value: int | None, field: str) -> int | None:
    return None if value is None else config_checks.amount(value, field, minimum=1, maximum=MAX_USES)


def _moment(value: datetime | None, field: str) -> datetime | None:
    return None if value is None else domain.utc_moment(value, field)


def _code_values(command: DiscountCodeInput, profile: StoreProfile) -> dict[str, Any]:
    if command.kind not in DISCOUNT_KINDS:
        raise InvalidInput("kind must be percent, fixed or free_shipping.", details={"field": "kind"})
    value = _value(command)
    min_subtotal = None if command.min_subtotal is None else config_checks.amount(command.min_subtotal, "min_subtotal")
    currency = config_checks.currency(command.currency) if command.currency else None
    if currency is None and (command.kind == "fixed" or min_subtotal is not None):
        currency = profile.default_currency
    starts_at, ends_at = _moment(command.starts_at, "starts_at"), _moment(command.ends_at, "ends_at")
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise InvalidInput("ends_at must be after starts_at.", details={"field": "ends_at"})
    return {
        "kind": command.kind,
        "value": value,
        "currency": currency,
        "min_subtotal_minor": min_subtotal,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "max_uses": _uses(command.max_uses, "max_uses"),
        "max_uses_per_buyer": _uses(command.max_uses_per_buyer, "max_uses_per_buyer"),
        "applies_to": _scope(command),
        "active": bool(command.active),
    }


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _code_out(row: Mapping[str, Any]) -> DiscountCodeOut:
    scope = row["applies_to"] or {}
    minimum, currency = row["min_subtotal_minor"], row["currency"]
    return DiscountCodeOut(
        code=row["code"], kind=row["kind"], value=row["value"], currency=currency,
        min_subtotal=MoneyOut.minor(minimum, currency) if minimum is not None and currency else None,
        starts_at=_utc(row["starts_at"]), ends_at=_utc(row["ends_at"]), max_uses=row["max_uses"],
        max_uses_per_buyer=row["max_uses_per_buyer"], uses=row["uses"],
        applies_to=DiscountScopeOut(categories=scope.get("categories") or [], skus=scope.get("skus") or []),
        active=bool(row["active"]),
    )  # fmt: skip


def _audited(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    shown = {name: row[name] for name in code_store.CODE_FIELDS}
    for name in ("starts_at", "ends_at"):
        moment = _utc(shown[name])
        shown[name] = None if moment is None else moment.isoformat()
    return shown


class DiscountCodeService:
    def __init__(self, db: Database, clock: Clock, fallback: StoreProfile) -> None:
        self._db = db
        self._clock = clock
        self._fallback = fallback

    async def upsert(self, principal: Principal, command: DiscountCodeInput) -> DiscountCodeOut:
        policy.require(principal, "upsert_discount_code")
        code = check_code(command.code)
        now = self._clock()

        def work(conn: Connection) -> dict[str, Any]:
            values = _code_values(command, current(conn, self._fallback))
            _check_scope_exists(conn, values["applies_to"])
            before = code_store.code(conn, code)
            if not code_store.save(conn, code, values, now):
                uses = (code_store.code(conn, code) or {}).get("uses", 0)
                raise InvalidInput(
                    f"Discount code {code} has been used {uses} time(s) already; max_uses cannot be lower than "
                    f"that. Send max_uses of at least {uses}, or active=false to stop further uses.",
                    details={"field": "max_uses", "uses": uses},
                )
            after = code_store.code(conn, code)
            assert after is not None
            old, new = _audited(before), _audited(after)
            if old != new:
                audit.record(conn, principal, "discount_code.upsert", code, before=old, after=new, at=now)
            return after

        return _code_out(await self._db.write(work))

    async def list_codes(self, principal: Principal, *, active_only: bool = False) -> DiscountCodeList:
        policy.require(principal, "list_discount_codes")
        rows = await self._db.read(lambda conn: code_store.listed(conn, active_only=active_only))
        return DiscountCodeList(codes=[_code_out(row) for row in rows])
