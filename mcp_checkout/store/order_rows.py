"""The rows an order's view is built from, in ONE statement.

A statement sees one snapshot by itself, so this read needs no transaction: on PostgreSQL get_order is one
round trip to the server where a REPEATABLE READ transaction of six statements took eight. The statement
is a UNION ALL of five parts, each filling its own columns and leaving the others NULL (typed, so that
every column is read back with its table's type: sealed text opened, timestamps in UTC):

- ``o``: the order, with its newest checkout link, that link's session and its latest payment attempt;
- ``i``: its lines; ``e``: its status history; ``x``: its issues; ``f``: its shipments.

Views of an order already read in a write transaction take its :class:`Related` facts from
:func:`related` (one statement instead of four).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    String,
    Table,
    bindparam,
    cast,
    exists,
    literal_column,
    null,
    select,
    union_all,
)

from mcp_checkout.store.hot_read import HotRead
from mcp_checkout.store.models import (
    checkout_links,
    checkout_sessions,
    fulfillments,
    order_events,
    order_issues,
    order_items,
    orders,
    payments,
)


@dataclass(frozen=True, slots=True)
class Related:
    """What the order view shows beside the order itself: its newest checkout link (id, status,
    merchant_reference_id, expires_at) and that link's session status, its latest payment attempt, and
    whether it has issues."""

    link: Mapping[str, Any] | None
    session_status: str | None
    payment: Mapping[str, Any] | None
    has_issues: bool


@dataclass(frozen=True, slots=True)
class OrderRows:
    """An order and everything its view shows, from one snapshot; child rows in their display order."""

    order: Mapping[Any, Any]
    related: Related
    items: Sequence[Mapping[Any, Any]]  # by line_no
    events: Sequence[Mapping[Any, Any]]  # by id: the status history, oldest first
    issues: Sequence[Mapping[Any, Any]]  # by id
    fulfillments: Sequence[Mapping[Any, Any]]  # by created_at, id


_LINK_FIELDS = ("id", "status", "merchant_reference_id", "expires_at")
_PAYMENT_FIELDS = (
    "gateway", "intent_id", "status", "attempt", "amount_received_minor", "refunded_minor", "currency", "last_error"
)  # fmt: skip
_newest_link = checkout_links.alias("newest_link")
_latest_attempt = payments.alias("latest_attempt")
_NEWEST_LINK_ID = (
    select(_newest_link.c.id)
    .where(_newest_link.c.order_id == orders.c.id)
    .order_by(_newest_link.c.created_at.desc(), _newest_link.c.id)
    .limit(1)
    .correlate(orders)
    .scalar_subquery()
)
LATEST_PAYMENT_ID = (  # the id of the order's newest payment attempt, correlated to ``orders``
    select(_latest_attempt.c.id)
    .where(_latest_attempt.c.order_id == orders.c.id)
    .order_by(_latest_attempt.c.attempt.desc())
    .limit(1)
    .correlate(orders)
    .scalar_subquery()
)
_WITH_RELATED = (
    orders.outerjoin(checkout_links, checkout_links.c.id == _NEWEST_LINK_ID)
    .outerjoin(checkout_sessions, checkout_sessions.c.link_id == checkout_links.c.id)
    .outerjoin(payments, payments.c.id == LATEST_PAYMENT_ID)
)
_RELATED_COLUMNS: dict[str, ColumnElement[Any]] = {
    **{f"link_{name}": checkout_links.c[name] for name in _LINK_FIELDS},
    "session_status": checkout_sessions.c.status,
    **{f"payment_{name}": payments.c[name] for name in _PAYMENT_FIELDS},
}
_ORDER_ID = bindparam("order_id", type_=String)


def _own(table: Table, prefix: str) -> dict[str, ColumnElement[Any]]:
    return {f"{prefix}{column.name}": column for column in table.c if column.name != "order_id"}


# (part, the prefix of its labels, its columns by label, FROM, the WHERE naming the order)
_PARTS: tuple[tuple[str, str, dict[str, ColumnElement[Any]], FromClause, ColumnElement[bool]], ...] = (
    ("o", "", {**_own(orders, ""), **_RELATED_COLUMNS}, _WITH_RELATED, orders.c.id == _ORDER_ID),
    ("i", "item_", _own(order_items, "item_"), order_items, order_items.c.order_id == _ORDER_ID),
    ("e", "event_", _own(order_events, "event_"), order_events, order_events.c.order_id == _ORDER_ID),
    ("x", "issue_", _own(order_issues, "issue_"), order_issues, order_issues.c.order_id == _ORDER_ID),
    ("f", "shipment_", _own(fulfillments, "shipment_"), fulfillments, fulfillments.c.order_id == _ORDER_ID),
)
_TYPES = {label: column.type for *_head, columns, _from, _where in _PARTS for label, column in columns.items()}
_LABELS = list(_TYPES)


def _branch(part: str, columns: dict[str, ColumnElement[Any]], source: FromClause, where: ColumnElement[bool]) -> Any:
    chosen = [
        columns[label].label(label) if label in columns else cast(null(), _TYPES[label]).label(label)
        for label in _LABELS
    ]
    return select(literal_column(f"'{part}'", String).label("part"), *chosen).select_from(source).where(where)


_VIEW_ROWS = union_all(*(_branch(part, columns, source, where) for part, _prefix, columns, source, where in _PARTS))
VIEW_ROWS = HotRead(_VIEW_ROWS, "order_id")
"""The rows of an order's view, for ``Database.fetch(VIEW_ROWS, order_id)``; :func:`of_rows` reads them."""

# Where each part's own columns sit in a row (after "part"), and their names without the part's prefix.
_SLICES: dict[str, tuple[slice, tuple[str, ...]]] = {}
_start = 1
for _part, _prefix, _columns, _from, _where in _PARTS:
    _SLICES[_part] = (slice(_start, _start + len(_columns)), tuple(label[len(_prefix) :] for label in _columns))
    _start += len(_columns)
_ORDER_FIELDS = tuple(column.name for column in orders.c)
# Where the "o" part's values sit in its row: the order's own columns (labelled by their names), its newest
# link's and latest payment attempt's, and the columns that say whether it has them.
_AT = {label: index for index, label in enumerate(("part", *_LABELS))}
_ORDER_AT = slice(_AT[_ORDER_FIELDS[0]], _AT[_ORDER_FIELDS[-1]] + 1)
if ("part", *_LABELS)[_ORDER_AT] != _ORDER_FIELDS:
    raise AssertionError("the order's own columns must lead the 'o' part, in table order")


class _RelatedAt:
    """Where a row labelled as :data:`_RELATED_COLUMNS` holds the :class:`Related` facts, and those facts read
    from it by position: the newest link if there is one, its session's status, the latest payment attempt if
    there is one."""

    def __init__(self, labels: Sequence[str]) -> None:
        at = {label: index for index, label in enumerate(labels)}
        self._link = itemgetter(*(at[f"link_{name}"] for name in _LINK_FIELDS))
        self._payment = itemgetter(*(at[f"payment_{name}"] for name in _PAYMENT_FIELDS))
        self._link_id, self._session_status = at["link_id"], at["session_status"]
        self._payment_attempt = at["payment_attempt"]

    def related(self, row: Sequence[Any], has_issues: bool) -> Related:
        return Related(
            link=dict(zip(_LINK_FIELDS, self._link(row), strict=True)) if row[self._link_id] is not None else None,
            session_status=row[self._session_status],
            payment=dict(zip(_PAYMENT_FIELDS, self._payment(row), strict=True))
            if row[self._payment_attempt] is not None
            else None,
            has_issues=has_issues,
        )


_VIEW_RELATED = _RelatedAt(("part", *_LABELS))


def _fields(row: Sequence[Any], part: str) -> dict[str, Any]:
    where, names = _SLICES[part]
    return dict(zip(names, row[where], strict=True))


def read(conn: Connection, order_id: str) -> OrderRows | None:
    """The order ``order_id`` and all its view shows, from one statement; None if there is no such order."""
    return of_rows(conn.execute(_VIEW_ROWS, {"order_id": order_id}).all())


def of_rows(rows: Sequence[Sequence[Any]]) -> OrderRows | None:
    """The :class:`OrderRows` of the rows :data:`VIEW_ROWS` read; None if they have no order."""
    parts: dict[str, list[Sequence[Any]]] = {"o": [], "i": [], "e": [], "x": [], "f": []}
    for row in rows:
        parts[row[0]].append(row)
    if not parts["o"]:
        return None
    head = parts["o"][0]
    issues = sorted((_fields(row, "x") for row in parts["x"]), key=lambda issue: issue["id"])
    return OrderRows(
        order=dict(zip(_ORDER_FIELDS, head[_ORDER_AT], strict=True)),
        related=_VIEW_RELATED.related(head, has_issues=bool(issues)),
        items=sorted((_fields(row, "i") for row in parts["i"]), key=lambda item: item["line_no"]),
        events=sorted((_fields(row, "e") for row in parts["e"]), key=lambda event: event["id"]),
        issues=issues,
        fulfillments=sorted((_fields(row, "f") for row in parts["f"]), key=lambda f: (f["created_at"], f["id"])),
    )


_RELATED = (
    select(
        *(column.label(label) for label, column in _RELATED_COLUMNS.items()),
        exists().where(order_issues.c.order_id == orders.c.id).correlate(orders).label("has_issues"),
    )
    .select_from(_WITH_RELATED)
    .where(orders.c.id == _ORDER_ID)
)


def related(conn: Connection, order_id: str) -> Related:
    """The :class:`Related` facts of an order that exists (read in the caller's transaction), in one statement."""
    facts = conn.execute(_RELATED, {"order_id": order_id}).one()
    return _RELATED_AT.related(facts, has_issues=bool(facts[-1]))


_RELATED_AT = _RelatedAt(list(_RELATED_COLUMNS))  # then has_issues, last
