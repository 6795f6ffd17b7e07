"""get_order reads an order and everything its view shows in ONE statement (store/order_rows.py): the view it
builds is exactly the one built inside a transaction from the order's separate statements (order_view), for
an order with several checkout links, payment attempts, issues and shipments, and for an unpaid order whose
notices need the store's shipping rates. A buyer still sees only their own orders."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, insert, update

from mcp_checkout.domain import Principal, utc_now
from mcp_checkout.errors import OrderNotFound
from mcp_checkout.service.container import Services
from mcp_checkout.service.order_view import current_view
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.store.models import (
    checkout_links,
    checkout_sessions,
    fulfillments,
    order_issues,
    orders,
    payments,
)

MERCHANT = Principal(id="local", kind="merchant", client="test")
ADDRESS = {"name": "Ada Buyer", "line1": "1 Market St", "city": "San Francisco", "region": "CA",
           "postal_code": "94105", "country": "US"}  # fmt: skip


def _link(order_id: str, n: int, status: str, at: Any) -> dict[str, Any]:
    return {
        "id": f"lnk_{n}", "token_hash": f"hash{n}", "token_hint": f"h{n}", "order_id": order_id,
        "principal_id": "local", "status": status, "merchant_reference_id": f"ref-{n}",
        "created_at": at, "updated_at": at, "expires_at": at + timedelta(hours=1),
    }  # fmt: skip


def _payment(order_id: str, attempt: int, status: str, at: Any) -> dict[str, Any]:
    return {
        "order_id": order_id, "attempt": attempt, "gateway": "offline", "intent_id": f"pi_{attempt}",
        "status": status, "amount_minor": 1800, "currency": "USD", "amount_received_minor": 1800 * (attempt - 1),
        "refunded_minor": 0, "last_error": None if attempt > 1 else "card_declined", "created_at": at, "updated_at": at,
    }  # fmt: skip


async def test_get_order_in_one_statement_shows_what_the_transaction_view_shows(seeded: Services) -> None:
    created = await seeded.orders.create(
        MERCHANT, CreateOrder(idempotency_key="rows", items=[("MUG-01", 2)], merchant_reference_id="ref-order")
    )
    order_id = created.order_id
    start = utc_now()

    def surround(conn: Connection) -> None:
        # Two links (the newer one is shown) with a session; attempts 2 and 1 (the latest is shown).
        conn.execute(insert(checkout_links), [_link(order_id, 1, "replaced", start), _link(order_id, 2, "in_session",
                                                                                              start + timedelta(1))])  # fmt: skip
        conn.execute(
            insert(checkout_sessions).values(
                id="ses_2",
                link_id="lnk_2",
                order_id=order_id,
                status="payment_pending",
                created_at=start,
                updated_at=start,
            )
        )
        conn.execute(
            insert(payments), [_payment(order_id, 2, "succeeded", start), _payment(order_id, 1, "failed", start)]
        )
        conn.execute(
            insert(order_issues),
            [{"order_id": order_id, "code": f"issue_{n}", "message": f"Issue {n}.", "at": start} for n in (1, 2)],
        )
        conn.execute(
            insert(fulfillments),
            [
                {"id": f"ful_{n}", "order_id": order_id, "lines": [{"line_no": 1, "sku": "MUG-01", "quantity": 1}],
                 "carrier": "UPS", "tracking_number": f"1Z{n}", "created_at": start + timedelta(minutes=3 - n)}
                for n in (1, 2)
            ],
        )  # fmt: skip
        conn.execute(update(orders).where(orders.c.id == order_id).values(status="fulfilled"))

    await seeded.db.write(surround)
    view = await seeded.orders.get(MERCHANT, order_id)
    assert view == await seeded.db.read(lambda conn: current_view(conn, order_id))
    assert view.checkout is not None and (view.checkout.link_id, view.checkout.session_status) == (
        "lnk_2",
        "payment_pending",
    )
    assert view.payment is not None and (view.payment.attempt, view.payment.status) == (2, "succeeded")
    assert [issue.code for issue in view.issues] == ["issue_1", "issue_2"]
    assert [shipment.fulfillment_id for shipment in view.fulfillments] == ["ful_2", "ful_1"]  # oldest first
    assert [line.sku for line in view.lines] == ["MUG-01"] and view.status == "fulfilled"


async def test_get_order_of_a_fresh_order_is_what_create_order_answered(seeded: Services) -> None:
    created = await seeded.orders.create(MERCHANT, CreateOrder(idempotency_key="fresh", items=[("MUG-01", 1)]))
    view = await seeded.orders.get(MERCHANT, created.order_id)
    assert view == created
    assert view.checkout is None and view.payment is None and view.issues == [] and view.fulfillments == []


async def test_an_order_that_lacks_its_option_shows_the_notice_the_transaction_view_shows(seeded: Services) -> None:
    created = await seeded.orders.create(MERCHANT, CreateOrder(idempotency_key="no-option", items=[("MUG-01", 1)]))
    await seeded.db.write(
        lambda conn: conn.execute(
            update(orders)
            .where(orders.c.id == created.order_id)
            .values(requires_shipping=True, shipping_address=ADDRESS, fulfillment_option=None)
        )
    )
    view = await seeded.orders.get(MERCHANT, created.order_id)  # reads the store's rates to word the notice
    assert [message.code for message in view.messages] in (["fulfillment_option_required"], ["address_undeliverable"])
    assert view == await seeded.db.read(lambda conn: current_view(conn, created.order_id))


async def test_a_buyer_gets_only_their_own_orders(seeded: Services) -> None:
    buyer = Principal(id="buyer-1", kind="buyer", client="test")
    other = Principal(id="buyer-2", kind="buyer", client="test")
    created = await seeded.orders.create(buyer, CreateOrder(idempotency_key="mine", items=[("MUG-01", 1)]))
    assert (await seeded.orders.get(buyer, created.order_id)).order_id == created.order_id
    with pytest.raises(OrderNotFound):
        await seeded.orders.get(other, created.order_id)
    with pytest.raises(OrderNotFound):
        await seeded.orders.get(MERCHANT, "ord_missing")
