"""The views of the hot reads (get_product, get_order; on PostgreSQL read straight on the driver, store/hot_read.py) are
exactly the ones built the plain way: the rows read through SQLAlchemy as mappings, one pydantic model per
object, every MoneyOut made from a Money. Same models, same JSON, byte for byte."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, insert, select, update

from mcp_checkout import domain
from mcp_checkout.domain import CatalogRow, Money, OrderStatus, Principal, utc_now
from mcp_checkout.service import order_view
from mcp_checkout.service.container import Services
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.service.views import (
    CreatedBy,
    MoneyOut,
    OrderIssue,
    OrderLineOut,
    OrderOut,
    ProductOut,
    ShippingAddressOut,
    SkuOut,
    StatusChange,
)
from mcp_checkout.store import order_rows
from mcp_checkout.store.models import checkout_links, order_issues, orders, payments, products, skus
from tests.conftest import seed_catalog

CATALOG = [
    CatalogRow("Stoneware Coffee Mug", "MUG-01", 1800, "USD", 10, "A 12 oz stoneware mug.", None, "", "Kitchen"),
    CatalogRow(
        "Trail Jacket", "JKT-S", 12900, "USD", 3, "Light.", "P-JKT", "S / Red", "Outdoors",
        image_url="https://img.example/jkt-s.png", description_html="<p>Light.</p>", weight_grams=420,
    ),
    CatalogRow("Trail Jacket", "JKT-M", 12900, "USD", 0, "Light.", "P-JKT", "M / Red", "Outdoors", weight_grams=450),
    CatalogRow(
        "Trail Jacket", "JKT-L", 13900, "USD", 7, "Light.", "P-JKT", "L / Red", "Outdoors",
        requires_shipping=False, tax_category="reduced",
    ),
    CatalogRow("Gift Card", "GIFT-50", 5000, "JPY", 1, "", "P-GIFT", "", "", requires_shipping=False),
]  # fmt: skip


def _sku_out(row: Mapping[str, Any]) -> SkuOut:
    available = domain.available_units(row["stock_on_hand"], row["reserved"])
    return SkuOut(
        sku=row["sku"],
        name=row["name"],
        title=row["title"],
        price=MoneyOut.of(Money(row["price_minor"], row["currency"])),
        available=available,
        in_stock=available > 0,
        image_url=row.get("image_url") or None,
        requires_shipping=bool(row.get("requires_shipping", True)),
        tax_category=row.get("tax_category") or "standard",
        weight_grams=row.get("weight_grams"),
    )


def _plain_product(conn: Connection, product_id: str) -> ProductOut:
    product = conn.execute(select(products).where(products.c.id == product_id)).mappings().one()
    listed = skus.c.product_id == product_id, skus.c.archived_at.is_(None)
    variants = conn.execute(select(skus).where(*listed).order_by(skus.c.id)).mappings().all()
    return ProductOut(
        product_id=product["id"],
        external_id=product["external_id"],
        name=product["name"],
        description=product["description"],
        category=product["category"],
        description_html=product["description_html"] or None,
        variants=[_sku_out(row) for row in variants],
    )


async def test_get_product_is_the_view_built_one_model_at_a_time(services: Services) -> None:
    await seed_catalog(services, CATALOG)
    # Stock held by an order, and a SKU archived (no longer listed): the view shows both as they are.
    await services.db.write(lambda conn: conn.execute(update(skus).where(skus.c.sku == "JKT-S").values(reserved=1)))
    await services.db.write(
        lambda conn: conn.execute(update(skus).where(skus.c.sku == "JKT-M").values(archived_at=utc_now()))
    )
    for code in ("MUG-01", "JKT-S", "JKT-L", "GIFT-50"):
        for _ in range(2):  # the first call prepares the statement, the second reuses it
            found = await services.catalog.get_product(sku=code)
            by_id = await services.catalog.get_product(product_id=found.product_id)
            expected = await services.db.read(
                lambda conn, product_id=found.product_id: _plain_product(conn, product_id)
            )
            assert found == by_id == expected
            assert found.model_dump_json() == by_id.model_dump_json() == expected.model_dump_json()
            assert found.model_fields_set == expected.model_fields_set
            assert [v.model_fields_set for v in found.variants] == [v.model_fields_set for v in expected.variants]
    jacket = await services.catalog.get_product(sku="JKT-L")
    assert [v.sku for v in jacket.variants] == ["JKT-S", "JKT-L"]


def _plain_view(rows: order_rows.OrderRows) -> OrderOut:
    """view_of as it was built before it validated the whole view in one call: a model per part."""
    order = rows.order
    currency = order["currency"]
    status = OrderStatus(order["status"])
    address = order["shipping_address"]

    def money(amount: int) -> MoneyOut:
        return MoneyOut.of(Money(amount, currency))

    return OrderOut(
        order_id=order["id"],
        number=order["number"],
        status=status.value,
        currency=currency,
        lines=[
            OrderLineOut(
                sku=item["sku"],
                title=item["title"],
                quantity=item["quantity"],
                unit_price=money(item["unit_price_minor"]),
                line_total=money(item["line_total_minor"]),
                discount=money(item.get("discount_minor") or 0),
                tax=money(item.get("tax_minor") or 0),
                fulfilled_quantity=item.get("fulfilled_quantity") or 0,
                image_url=item.get("image_url") or None,
            )
            for item in rows.items
        ],
        **order_view.order_breakdown(order),
        **order_view.order_delivery(order, lambda: []),
        email=order["email"],
        merchant_reference_id=order["merchant_reference_id"],
        shipping_address=ShippingAddressOut.model_validate(address) if address else None,
        cart_id=order["cart_id"],
        stock=order["stock_state"],
        created_at=order["created_at"],
        updated_at=order["updated_at"],
        expires_at=order["expires_at"] if status is OrderStatus.PENDING_PAYMENT else None,
        created_by=CreatedBy(principal_id=order["principal_id"], client=order["client_name"]),
        fulfillments=[],
        checkout=order_view._checkout_state(rows.related),
        payment=order_view._payment_state(rows.related.payment) if rows.related.payment else None,
        issues=[OrderIssue(code=issue["code"], message=issue["message"], at=issue["at"]) for issue in rows.issues],
        status_history=[
            StatusChange(
                from_status=event["from_status"],
                to_status=event["to_status"],
                at=event["at"],
                actor=event["actor"],
                reason=event["reason"],
            )
            for event in rows.events
        ],
    )


MERCHANT = Principal(id="local", kind="merchant", client="test")
ADDRESS = {"name": "Ada Buyer", "line1": "1 Market St", "city": "San Francisco", "region": "CA",
           "postal_code": "94105", "country": "US"}  # fmt: skip


async def test_get_order_is_the_view_built_one_model_at_a_time(services: Services) -> None:
    await seed_catalog(services, CATALOG)
    plain = await services.orders.create(MERCHANT, CreateOrder(idempotency_key="plain", items=[("MUG-01", 2)]))
    rich = await services.orders.create(
        MERCHANT,
        CreateOrder(idempotency_key="rich", items=[("JKT-S", 1), ("MUG-01", 3)], merchant_reference_id="ref-1"),
    )
    at = utc_now()

    def surround(conn: Connection) -> None:
        order_id = rich.order_id
        conn.execute(
            update(orders).where(orders.c.id == order_id).values(shipping_address=ADDRESS, email="a@b.example")
        )
        conn.execute(
            insert(checkout_links).values(
                id="lnk_1", token_hash="h1", token_hint="h1", order_id=order_id, principal_id="local",
                status="active", merchant_reference_id="ref-1", created_at=at, updated_at=at, expires_at=at,
            )
        )  # fmt: skip
        conn.execute(
            insert(payments).values(
                order_id=order_id, attempt=1, gateway="offline", intent_id="pi_1", status="failed",
                amount_minor=1800, currency="USD", amount_received_minor=0, refunded_minor=0,
                last_error="card_declined", created_at=at, updated_at=at,
            )
        )  # fmt: skip
        conn.execute(
            insert(order_issues), [{"order_id": order_id, "code": f"i{n}", "message": "m", "at": at} for n in (1, 2)]
        )

    await services.db.write(surround)
    for order_id in (plain.order_id, rich.order_id):
        for _ in range(2):  # the first call prepares the statement, the second reuses it
            view = await services.orders.get(MERCHANT, order_id)
            rows = await services.db.read(lambda conn, order_id=order_id: order_rows.read(conn, order_id))
            assert rows is not None
            expected = _plain_view(rows)
            assert view == expected
            assert view.model_dump_json() == expected.model_dump_json()
            assert view.model_fields_set == expected.model_fields_set
            assert [line.model_fields_set for line in view.lines] == [line.model_fields_set for line in expected.lines]
    assert view.checkout is not None and view.payment is not None and len(view.issues) == 2 and len(view.lines) == 2
