"""The views of the hot reads (get_product; on PostgreSQL read straight on the driver, store/hot_read.py) are
exactly the ones built the plain way: the rows read through SQLAlchemy as mappings, one pydantic model per
object, every MoneyOut made from a Money. Same models, same JSON, byte for byte."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, select, update

from mcp_checkout import domain
from mcp_checkout.domain import CatalogRow, Money, utc_now
from mcp_checkout.service.container import Services
from mcp_checkout.service.views import MoneyOut, ProductOut, SkuOut
from mcp_checkout.store.models import products, skus
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
