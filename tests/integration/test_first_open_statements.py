"""A buyer's first open of a checkout link (the claim, issue 12) on the offline gateway: one quick read that finds
the link fresh, then ONE write transaction that claims the session, makes the payment attempt with its intent and
reads what the page shows. 7 SQL statements on SQLite, 8 on PostgreSQL (where the latest payment is read again
after the row locks); it was 16 statements in three transactions."""

from __future__ import annotations

from sqlalchemy import text

from mcp_checkout.domain import Principal
from mcp_checkout.service.checkout_links import CreateLink
from mcp_checkout.service.container import Services
from tests.support import counted

MERCHANT = Principal(id="local", kind="merchant", client="test")


async def token(services: Services, key: str) -> str:
    link = await services.links.create_link(MERCHANT, CreateLink(sku="MUG-01", quantity=2, idempotency_key=key))
    assert link.url is not None
    return link.url.rsplit("/", 1)[1]


async def test_a_first_open_is_one_read_and_one_write_transaction(seeded: Services) -> None:
    await seeded.checkout.open(await token(seeded, "warm"))  # the configuration cached, statements compiled
    fresh = await token(seeded, "k1")
    with counted(seeded.db) as seen:
        page = await seeded.checkout.open(fresh)
    expected = 7 if seeded.db.dialect == "sqlite" else 8
    assert len(seen["statements"]) == expected, "\n".join(seen["statements"])
    assert len(seen["commits"]) == 2
    assert page.step == "pay" and page.total.amount == 3600 and [line.quantity for line in page.lines] == [2]
    assert page.intent_status == "requires_payment_method" and page.store.name
    session, payment = await seeded.db.read(
        lambda conn: conn.execute(
            text(
                "select s.status, p.attempt || ':' || p.status || ':' || p.amount_minor || ':' || i.status "
                "from checkout_sessions s join payments p on p.order_id = s.order_id "
                "join offline_intents i on i.id = p.intent_id where s.id = :id"
            ),
            {"id": page.session_id},
        ).one()
    )
    assert (session, payment) == ("open", "1:requires_payment_method:3600:requires_payment_method")
    again = await seeded.checkout.open(fresh)  # a reload resumes the same session and intent
    assert again.session_id == page.session_id and again.intent_status == page.intent_status
