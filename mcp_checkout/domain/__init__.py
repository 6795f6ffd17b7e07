"""Pure types and rules: money, states and transitions, fingerprints, cursors. No I/O."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import ipaddress
import json
import math
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

from babel import Locale
from babel.numbers import NumberPattern, get_currency_precision

from mcp_checkout.errors import InsufficientStock, InvalidCursor, InvalidInput, InvalidState

MAX_QUANTITY = 999
MAX_CART_LINES = 100


# ---------------------------------------------------------------- money
DISPLAY_LOCALE = "en_US"


@functools.lru_cache(maxsize=1024)
def currency_exponent(currency: str) -> int:
    """Decimal places of the currency's minor unit (USD 2, JPY 0, BHD 3), from the CLDR data in babel."""
    return int(get_currency_precision(currency.upper()))


@functools.lru_cache(maxsize=64)
def _currency_pattern(locale: str) -> tuple[Locale, NumberPattern]:
    parsed = Locale.parse(locale)
    return parsed, parsed.currency_formats["standard"]


@functools.lru_cache(maxsize=8192)  # views show the same prices and totals again and again
def format_money(amount: int, currency: str, locale: str = DISPLAY_LOCALE) -> str:
    """An amount in minor units as people read it in ``locale``: "$36.00", "¥1,500", "-€10.00"."""
    fast = _fast_money(currency.upper(), locale)
    return fast(amount) if fast is not None else _cldr_money(amount, currency, locale)


def _cldr_money(amount: int, currency: str, locale: str) -> str:
    major = Decimal(amount).scaleb(-currency_exponent(currency))
    parsed, pattern = _currency_pattern(locale)
    return str(pattern.apply(major, parsed, currency=currency.upper(), currency_digits=True))


@functools.lru_cache(maxsize=256)
def _fast_money(currency: str, locale: str) -> Callable[[int], str] | None:
    """The CLDR display (babel, ~0.3 ms an amount) of this currency in this locale as a template, when it is one:
    sign-dependent prefix and suffix around digits grouped by three and the minor unit's digits. Derived from
    babel's own output and used only if it gives babel's answer for amounts of every length up to 10**15, both
    signs (grouping is the only rule that depends on the amount); None (babel then formats) otherwise."""
    exponent = currency_exponent(currency)
    probe = 1234567 * 10**exponent + int("7" * exponent or "0")
    shape = re.compile(r"(\D*)1(\D*)234(?:\2)567" + (r"(\D+)" + "7" * exponent if exponent else "()") + r"(\D*)")
    plus, minus = (
        shape.fullmatch(_cldr_money(probe, currency, locale)),
        shape.fullmatch(_cldr_money(-probe, currency, locale)),
    )
    if plus is None or minus is None or plus.group(2, 3) != minus.group(2, 3):
        return None
    group, decimal = plus.group(2), plus.group(3)
    scale = 10**exponent

    def shown(amount: int) -> str:
        outside = minus if amount < 0 else plus
        major, minor = divmod(abs(amount), scale)
        digits = f"{major:,}".replace(",", group) if group != "," else f"{major:,}"
        if exponent:
            digits = f"{digits}{decimal}{minor:0{exponent}d}"
        return f"{outside.group(1)}{digits}{outside.group(4)}"

    samples = [0, *(sign * (10**length - 3) for length in range(1, 16) for sign in (1, -1))]
    if any(shown(amount) != _cldr_money(amount, currency, locale) for amount in samples):
        return None
    return shown


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in integer minor units of an ISO-4217 currency (cents for USD, yen for JPY)."""

    amount: int
    currency: str

    def __add__(self, other: Money) -> Money:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return Money(self.amount + other.amount, self.currency)

    def times(self, quantity: int) -> Money:
        return Money(self.amount * quantity, self.currency)

    def display(self, locale: str = DISPLAY_LOCALE) -> str:
        return format_money(self.amount, self.currency, locale)


def money_sum(amounts: Iterable[Money], currency: str) -> Money:
    total = Money(0, currency)
    for amount in amounts:
        total = total + amount
    return total


@dataclass(frozen=True, slots=True)
class PricedLine:
    sku: str
    title: str
    unit_price: Money
    quantity: int

    @property
    def line_total(self) -> Money:
        return self.unit_price.times(self.quantity)


def check_quantity(quantity: int) -> int:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidInput(f"quantity must be between 1 and {MAX_QUANTITY}; got {quantity}.")
    return quantity


def available_units(stock_on_hand: int, reserved: int) -> int:
    """Units that can still be ordered: on hand minus what open orders hold, never below zero."""
    return max(stock_on_hand - reserved, 0)


def ensure_available(sku: str, requested: int, available: int) -> None:
    if requested > available:
        left = max(available, 0)
        raise InsufficientStock(
            f"Only {left} of SKU {sku} left ({requested} requested). "
            "Lower the quantity with update_cart_item, or remove the item with remove_from_cart.",
            details={"sku": sku, "available": left, "requested": requested},
            next_actions=["update_cart_item", "remove_from_cart", "search_catalog"],
        )


# ---------------------------------------------------------------- states
class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    PARTIALLY_FULFILLED = "partially_fulfilled"
    FULFILLED = "fulfilled"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REFUNDED = "refunded"


class Actor(StrEnum):
    AGENT = "agent"
    BUYER = "buyer"
    MERCHANT = "merchant"
    SYSTEM = "system"


class StockState(StrEnum):
    """What an order holds of its SKUs' stock."""

    RESERVED = "reserved"
    COMMITTED = "committed"
    RELEASED = "released"


ORDER_TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING_PAYMENT: frozenset({OrderStatus.PAID, OrderStatus.CANCELED, OrderStatus.EXPIRED}),
    # Shipping: some lines shipped → partially_fulfilled, everything shipped → fulfilled (fulfill_order).
    # A full refund ends any paid order, shipped or not (refund_order; committed stock stays sold).
    # The merchant may cancel a paid order while nothing has shipped: refunded in full, restocked.
    OrderStatus.PAID: frozenset(
        {OrderStatus.PARTIALLY_FULFILLED, OrderStatus.FULFILLED, OrderStatus.REFUNDED, OrderStatus.CANCELED}
    ),
    OrderStatus.PARTIALLY_FULFILLED: frozenset({OrderStatus.FULFILLED, OrderStatus.REFUNDED}),
    OrderStatus.FULFILLED: frozenset({OrderStatus.REFUNDED}),
    OrderStatus.CANCELED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}

# What a status does to the order's stock: a reservation is committed or released; committed (sold) stock
# is released by putting it back on hand (a paid order canceled before it shipped).
STOCK_EFFECT: Mapping[OrderStatus, StockState] = {
    OrderStatus.PAID: StockState.COMMITTED,
    OrderStatus.CANCELED: StockState.RELEASED,
    OrderStatus.EXPIRED: StockState.RELEASED,
}


class LinkStatus(StrEnum):
    ACTIVE = "active"
    IN_SESSION = "in_session"
    CONSUMED = "consumed"
    EXPIRED = "expired"
    REVOKED = "revoked"


class SessionStatus(StrEnum):
    OPEN = "open"
    PAYMENT_PENDING = "payment_pending"
    COMPLETED = "completed"
    CANCELED = "canceled"


LIVE_LINK_STATES = frozenset({LinkStatus.ACTIVE, LinkStatus.IN_SESSION})
MIN_LINK_TTL_MINUTES = 5
MAX_LINK_TTL_MINUTES = 10080


def check_transition(order_ref: str, current: OrderStatus, target: OrderStatus) -> None:
    if target not in ORDER_TRANSITIONS[current]:
        allowed = ", ".join(sorted(ORDER_TRANSITIONS[current])) or "none (final state)"
        raise InvalidState(
            f"Order {order_ref} is {current.value}; it cannot become {target.value}. "
            f"Allowed from {current.value}: {allowed}. Call get_order to see its history.",
            details={"order_id": order_ref, "status": current.value, "requested": target.value},
            next_actions=["get_order"],
        )


def reachable_statuses(current: OrderStatus) -> frozenset[OrderStatus]:
    """Every status an order in ``current`` can still come to (``current`` included)."""
    seen = {current}
    todo = [current]
    while todo:
        for following in ORDER_TRANSITIONS[todo.pop()] - seen:
            seen.add(following)
            todo.append(following)
    return frozenset(seen)


# ---------------------------------------------------------------- fingerprints
_PLAIN = frozenset({str, int, bool, type(None)})  # canonical as they are (exact types: a subclass takes the long way)


def _canonical(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    # The usual shapes first, their plain members checked here rather than in a call each.
    if kind is dict:
        return {
            (key if type(key) is str else str(key)): (item if type(item) in _PLAIN else _canonical(item))
            for key, item in value.items()
        }
    if kind is list or kind is tuple:
        return [item if type(item) in _PLAIN else _canonical(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput("numbers must be finite")
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    raise TypeError(f"not JSON data: {type(value).__name__}")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no whitespace, and integral floats written as integers."""
    return _CANONICAL_JSON.encode(_canonical(value))


_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)  # stateless: made once


def fingerprint(request: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical request, ACP semantics: key order ignored, ``1.0 == 1``,
    ``null`` differs from an absent key, array order matters."""
    return hashlib.sha256(canonical_json(request).encode()).hexdigest()


# ---------------------------------------------------------------- cursors
def cursor_scope(filters: Mapping[str, Any]) -> str:
    """A short digest of a listing's filters, carried in its cursors so a cursor is refused under other filters.
    (Not an idempotency fingerprint: those are made only by service/idempotency.py.)"""
    return fingerprint(filters)[:16]


def pack_cursor(fields: Mapping[str, Any]) -> str:
    """An opaque page cursor: ``fields`` as canonical JSON in url-safe base64, without padding."""
    return base64.urlsafe_b64encode(canonical_json(fields).encode()).decode().rstrip("=")


def unpack_cursor(cursor: str, bad: InvalidCursor) -> dict[str, Any]:
    """The fields of a cursor made by :func:`pack_cursor`; raises ``bad`` for anything else."""
    try:
        data = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    if not isinstance(data, dict):
        raise bad
    return data


def encode_cursor(kind: str, position: int, scope: str) -> str:
    return pack_cursor({"k": kind, "p": position, "s": scope[:16]})


def decode_cursor(cursor: str, kind: str, scope: str) -> int:
    """Return the position stored in a cursor made by :func:`encode_cursor` for the same query."""
    bad = InvalidCursor(
        "The cursor is not valid for this query. Repeat the same call without cursor to start over, "
        "and pass back next_cursor exactly as it was returned.",
        next_actions=[kind],
    )
    data = unpack_cursor(cursor, bad)
    if data.get("k") != kind or data.get("s") != scope[:16]:
        raise bad
    position = data.get("p")
    if not isinstance(position, int) or isinstance(position, bool) or position < 0 or position > 100_000:
        raise bad
    return position


# ---------------------------------------------------------------- secret keys
def parse_secret_keys(value: str) -> list[str]:
    """Fernet keys from a setting or key file, separated by commas or new lines, newest first. Each must be
    32 random bytes in url-safe base64; ValueError names the bad position, never the key."""
    keys = [part.strip() for part in value.replace("\n", ",").split(",") if part.strip()]
    for position, key in enumerate(keys, start=1):
        try:
            raw = base64.urlsafe_b64decode(key.encode())
        except (ValueError, binascii.Error):
            raw = b""
        if len(raw) != 32:
            raise ValueError(f"secret key #{position} is not 32 random bytes in url-safe base64 (44 characters)")
    return keys


# ---------------------------------------------------------------- ids and time
class Clock(Protocol):
    def __call__(self) -> datetime: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


# Every moment a caller sends (filters, periods, cursors) lies in this range: far enough from the calendar's
# ends (years 1 and 9999) that converting to UTC or stepping a year either way never overflows.
EARLIEST_MOMENT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_MOMENT = datetime(9999, 1, 1, tzinfo=UTC)


def utc_moment(moment: datetime, field: str) -> datetime:
    """``moment`` in UTC (a naive one is UTC already) if it lies from EARLIEST_MOMENT to LATEST_MOMENT;
    ``InvalidInput`` naming ``field`` otherwise. The one date-bound rule for every date input."""
    try:
        utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is in year 0
        utc = None
    if utc is not None and EARLIEST_MOMENT <= utc <= LATEST_MOMENT:
        return utc
    raise InvalidInput(
        f"{field} must be from 1970-01-01T00:00:00Z to 9999-01-01T00:00:00Z; got {moment.isoformat()[:40]}. "
        "Send an ISO 8601 time in that range, e.g. 2026-05-01T00:00:00Z.",
        details={"field": field},
    )


TokenSource = Callable[[int], str]


def new_id(prefix: str, token: TokenSource = secrets.token_hex) -> str:
    return f"{prefix}_{token(12)}"


def order_number(sequence: int) -> str:
    return f"MC-{sequence:06d}"


# ---------------------------------------------------------------- text
def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored as text on both databases, or None. PostgreSQL refuses NUL
    (U+0000) in text columns, and a lone surrogate is not valid Unicode anywhere."""
    if "\x00" in text:
        return "contains a NUL character (U+0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate)"
    return None


def _surely_storable(value: object) -> bool:
    """True when no string in ``value`` (nested dicts, lists and tuples, keys included) has a NUL or a lone
    surrogate: a walk that builds no field names (ASCII text needs no encoding check). False means "look
    closer" (also for a mapping that is not a dict, or past 100,000 values), where :func:`_check_text` names
    the field."""
    pending = [value]
    for _ in range(100_000):  # a bound, not a depth: a structure that contains itself ends too
        if not pending:
            return True
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item or (not item.isascii() and text_problem(item) is not None):
                return False
        elif isinstance(item, dict):
            for key, sub in item.items():
                if isinstance(key, str) and ("\x00" in key or (not key.isascii() and text_problem(key) is not None)):
                    return False
                pending.append(sub)
        elif isinstance(item, list | tuple):
            pending.extend(item)
        elif isinstance(item, Mapping):
            return False
    return False


def check_text(value: object, field: str = "") -> None:
    """Refuse (:class:`InvalidInput` naming the field, e.g. ``items[0].sku``) the first string in ``value``
    (and in nested dicts and lists, keys included) that :func:`text_problem` rejects."""
    if isinstance(value, str) or not _surely_storable(value):  # every request's arguments: tools/gate.py
        _check_text(value, field)


def _check_text(value: object, field: str) -> None:
    if isinstance(value, str):
        if (problem := text_problem(value)) is not None:
            name = field or "text"
            raise InvalidInput(
                f"{name} {problem}; remove it and call again.", details={"field": name, "problem": problem}
            )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{field}.{key}" if field else str(key)
            if isinstance(key, str) and text_problem(key) is not None:
                _check_text(key, f"{field or 'arguments'} (a key)")
            _check_text(item, where)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_text(item, f"{field}[{index}]")


def category_key(category: str) -> str:
    """How categories compare (catalog filters, tax categories, discount scopes): NFKC, case-folded, spaces
    collapsed, so "Home  & Kitchen" and "home & kitchen" are one category."""
    return " ".join(unicodedata.normalize("NFKC", category).lower().split())


# ---------------------------------------------------------------- callers
PrincipalKind = Literal["buyer", "merchant"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an API key or the local stdio user, and the MCP client it uses."""

    id: str
    kind: PrincipalKind
    client: str = "unknown"

    @property
    def actor(self) -> Actor:
        return Actor.MERCHANT if self.kind == "merchant" else Actor.AGENT


# ---------------------------------------------------------------- catalog rows
@dataclass(frozen=True, slots=True)
class CatalogRow:
    """One SKU of a catalog, as imported (CSV, upsert_product, seed data)."""

    product_name: str
    sku: str
    price_minor: int
    currency: str
    stock: int
    description: str = ""
    external_id: str | None = None
    sku_name: str = ""
    category: str = ""
    image_url: str = ""
    description_html: str = ""
    requires_shipping: bool = True
    tax_category: str = "standard"
    weight_grams: int | None = None

    @property
    def product_key(self) -> str:
        """Rows of one product share its external id or, lacking one, its name."""
        return f"ext:{self.external_id}" if self.external_id else f"name:{' '.join(self.product_name.lower().split())}"

    @property
    def title(self) -> str:
        return f"{self.product_name} - {self.sku_name}" if self.sku_name else self.product_name


# ---------------------------------------------------------------- redirect URLs (success_url / cancel_url)
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\"'<>\\^`{|}]")


def redirect_origin(field: str, url: str) -> str:
    """The origin (``scheme://host[:port]``) of a redirect URL a link may send the buyer to, rebuilt from its
    parsed parts (what goes into the page's Content-Security-Policy); InvalidInput naming ``field`` for
    anything but an absolute http(s) URL with a DNS name or IP literal, an optional port and no user info."""
    problem = InvalidInput(
        f"{field} must be an absolute http(s) URL with a host name and optional port, e.g. "
        "https://shop.example/thanks (no spaces, quotes, user names or passwords).",
        details={"field": field},
    )
    if len(url) > 2048 or _URL_FORBIDDEN.search(url):
        raise problem
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise problem from None
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if scheme not in ("http", "https") or not host or parts.username is not None or parts.password is not None:
        raise problem
    origin = _host_text(host) + (f":{port}" if port is not None else "")
    if parts.netloc.lower() != origin or not _valid_host(host):
        raise problem  # anything in the authority beyond a host name and a port
    return f"{scheme}://{origin}"


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host.lower()


def _valid_host(host: str) -> bool:
    if "%" in host:  # an IPv6 zone id: not a host a buyer's browser can be sent to
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.rstrip(".").split(".")
        return len(host) <= 253 and all(_DNS_LABEL.match(label) for label in labels)
    return True
