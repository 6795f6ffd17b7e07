"""The store's configuration through a real MCP client, on SQLite and PostgreSQL: the store profile (seeded
from the settings on first start, readable by anyone, changed only by the merchant, audited), with clear
errors for unusable values."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import Client

from mcp_checkout.config import Settings
from mcp_checkout.domain import Principal
from mcp_checkout.server import build_server
from mcp_checkout.service.carts import CreateCart
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.store import pricing as pricing_store
from mcp_checkout.store import store_profile as profile_store

MERCHANT = Principal(id="local", kind="merchant")
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def data(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content[0].text
    assert result.structured_content is not None
    return dict(result.structured_content)


def error(result: Any) -> tuple[str, str]:
    """(code, message) of a failed tool call; never a traceback or SQL."""
    assert result.is_error, f"expected an error, got {str(result.structured_content)[:300]}"
    text = str(result.content[0].text)
    assert text.startswith("[") and "Traceback" not in text and "SELECT" not in text and "INSERT" not in text, text
    return json.loads(result.content[1].text)["error"]["code"], text


def buyer_server(settings: Settings) -> Any:
    return build_server(settings.model_copy(update={"local_principal_kind": "buyer", "local_principal_id": "b1"}))


# ---------------------------------------------------------------- store profile
async def test_the_profile_is_seeded_from_the_settings_on_first_start_and_kept_after(settings: Settings) -> None:
    named = settings.model_copy(update={"merchant_name": "Ada Ceramics", "default_currency": "EUR"})
    async with Client(build_server(named)) as client:
        profile = data(await client.call_tool("get_store_profile", {}))
        assert (profile["name"], profile["default_currency"], profile["prices_include_tax"]) == (
            "Ada Ceramics",
            "EUR",
            False,
        )
        data(await client.call_tool("update_store_profile", {"name": "Ada & Co"}))
    services = build_services(named.model_copy(update={"merchant_name": "Other"}))
    try:
        stored = await services.db.read(profile_store.get)
        assert stored is not None and stored.name == "Ada & Co" and stored.default_currency == "EUR"
        await services.prepare_database()  # a second start (or another process) seeds nothing over it
        assert (await services.store_profile.get()).name == "Ada & Co"
    finally:
        await services.close()


async def test_the_merchant_changes_the_profile_and_every_change_is_audited(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        changed = data(
            await client.call_tool(
                "update_store_profile",
                {
                    "name": "  Ada Ceramics ",
                    "logo_url": "https://ada.example/logo.png",
                    "support_email": "help@ada.example",
                    "terms_url": "https://ada.example/terms",
                    "returns_url": "https://ada.example/returns",
                    "origin_country": "de",
                    "default_currency": "EUR",
                    "locale": "de-DE",
                    "prices_include_tax": True,
                    "allow_discount_stacking": True,
                },
            )
        )
        assert changed["name"] == "Ada Ceramics" and changed["origin_country"] == "DE"
        assert changed["locale"] == "de_DE" and changed["prices_include_tax"] is True
        assert changed["privacy_url"] is None  # not given: unchanged
        cleared = data(await client.call_tool("update_store_profile", {"logo_url": "", "support_email": ""}))
        assert cleared["logo_url"] is None and cleared["support_email"] is None and cleared["name"] == "Ada Ceramics"
        same = data(await client.call_tool("update_store_profile", {"name": "Ada Ceramics"}))
        assert same == cleared
        events = data(await client.call_tool("list_audit_events", {"action": "store_profile.update"}))["events"]
    assert len(events) == 2  # the unchanged name wrote no event
    assert events[0]["before"] == {"logo_url": "https://ada.example/logo.png", "support_email": "help@ada.example"}
    assert events[0]["after"] == {"logo_url": None, "support_email": None}
    assert events[1]["before"]["name"] == "Demo Store" and events[1]["after"]["name"] == "Ada Ceramics"
    assert events[1]["actor"] == "merchant" and events[1]["target"] == "store_profile"


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("arguments", "names"),
    [
        ({"logo_url": "ftp://ada.example/logo.png"}, "logo_url"),
        ({"terms_url": "not a url"}, "terms_url"),
        ({"support_email": "help-at-example"}, "support_email"),
        ({"origin_country": "XX"}, "origin_country"),
        ({"default_currency": "ABC"}, "default_currency"),
        ({"locale": "xx_QQ"}, "locale"),
        ({"name": "   "}, "name"),
        ({"name": "Ada\x07"}, "name"),
    ],
)
async def test_unusable_profile_values_are_refused_naming_the_field(
    settings: Settings, arguments: dict[str, Any], names: str
) -> None:
    async with Client(build_server(settings)) as client:
        code, text = error(await client.call_tool("update_store_profile", arguments))
        assert code == "invalid_input" and names in text
        assert data(await client.call_tool("get_store_profile", {}))["name"] == "Demo Store"  # nothing changed


@SQLITE_ONLY
async def test_schema_bounds_refuse_wrong_types_before_the_service(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        code, _ = error(await client.call_tool("update_store_profile", {"prices_include_tax": "yes"}))
        assert code == "invalid_input"
        code, _ = error(await client.call_tool("update_store_profile", {"logo_url": "https://x/" + "a" * 3000}))
        assert code == "invalid_input"


async def test_buyers_read_the_profile_but_cannot_change_it(settings: Settings, services: Services) -> None:
    async with Client(buyer_server(settings)) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
        assert "get_store_profile" in listed and "update_store_profile" not in listed
        assert data(await client.call_tool("get_store_profile", {}))["name"] == "Demo Store"
        code, text = error(await client.call_tool("update_store_profile", {"name": "Mine now"}))
        assert code == "forbidden" and "merchant" in text
    assert (await services.store_profile.get()).name == "Demo Store"


# ---------------------------------------------------------------- shipping and tax rates
PICKUP = {"name": "Ada Ceramics", "line1": "Hafenstr. 1", "city": "Hamburg", "postal_code": "20457", "country": "DE"}


async def test_shipping_rates_are_created_replaced_listed_and_audited(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        data(await client.call_tool("update_store_profile", {"default_currency": "EUR"}))
        made = data(
            await client.call_tool(
                "upsert_shipping_rate",
                {"rate_id": "eu-std", "name": "Standard", "countries": ["de", "FR", "DE"], "price": 490,
                 "free_over": 5000, "min_days": 2, "max_days": 4, "carrier": "DHL"},
            )
        )  # fmt: skip
        assert made["countries"] == ["DE", "FR"] and made["price"]["currency"] == "EUR"  # the store's currency
        assert made["free_over"]["amount"] == 5000 and made["active"] is True and made["kind"] == "shipping"
        data(
            await client.call_tool(
                "upsert_shipping_rate",
                {"rate_id": "world", "name": "International", "countries": ["*"], "price": 1500, "currency": "USD"},
            )
        )
        pickup = data(
            await client.call_tool(
                "upsert_shipping_rate",
                {"rate_id": "shop", "name": "Collect in Hamburg", "countries": ["DE"], "price": 0, "kind": "pickup",
                 "pickup_address": PICKUP},
            )
        )  # fmt: skip
        assert pickup["pickup_address"]["city"] == "Hamburg"
        replaced = data(
            await client.call_tool(
                "upsert_shipping_rate",
                {"rate_id": "eu-std", "name": "Standard", "countries": ["DE"], "price": 590, "active": False},
            )
        )
        assert replaced["free_over"] is None and replaced["carrier"] is None and replaced["active"] is False
        listed = data(await client.call_tool("list_shipping_rates", {}))["rates"]
        assert [rate["rate_id"] for rate in listed] == ["eu-std", "world", "shop"]
        again = {"rate_id": "world", "name": "International", "countries": ["*"], "price": 1500, "currency": "USD"}
        data(await client.call_tool("upsert_shipping_rate", again))  # the same rate again: no new audit event
        events = data(await client.call_tool("list_audit_events", {"action": "shipping_rate.upsert"}))["events"]
    assert [event["target"] for event in events] == ["eu-std", "shop", "world", "eu-std"]
    assert events[0]["before"]["price_minor"] == 490 and events[0]["after"]["price_minor"] == 590
    assert events[3]["before"] is None and events[3]["after"]["countries"] == ["DE", "FR"]


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("arguments", "names"),
    [
        ({"countries": ["XX"]}, "countries[0]"),
        ({"countries": ["*", "DE"]}, "stands alone"),
        ({"countries": []}, "countries"),
        ({"currency": "ABC"}, "currency"),
        ({"min_days": 5, "max_days": 2}, "min_days"),
        ({"price": -1}, "price"),
        ({"rate_id": "has space"}, "rate_id"),
        ({"kind": "pickup"}, "pickup_address"),
        ({"pickup_address": PICKUP}, "pickup_address"),
        ({"kind": "pickup", "pickup_address": PICKUP | {"region": "Atlantis"}}, "pickup_address.region"),
        ({"kind": "drone"}, "kind"),
    ],
)
async def test_unusable_shipping_rates_are_refused_naming_the_field(
    settings: Settings, arguments: dict[str, Any], names: str
) -> None:
    rate = {"rate_id": "std", "name": "Standard", "countries": ["US"], "price": 500} | arguments
    async with Client(build_server(settings)) as client:
        code, text = error(await client.call_tool("upsert_shipping_rate", rate))
        assert code == "invalid_input" and names in text
        assert data(await client.call_tool("list_shipping_rates", {}))["rates"] == []


async def test_tax_rates_are_set_per_country_region_and_category_listed_deleted_and_audited(
    settings: Settings,
) -> None:
    async with Client(build_server(settings)) as client:
        vat = data(await client.call_tool("upsert_tax_rate", {"country": "de", "rate_bps": 1900}))
        assert vat == {"country": "DE", "region": None, "category": "standard", "rate_bps": 1900,
                       "applies_to_shipping": False}  # fmt: skip
        data(await client.call_tool("upsert_tax_rate", {"country": "DE", "category": "Reduced", "rate_bps": 700}))
        ca = data(
            await client.call_tool(
                "upsert_tax_rate",
                {"country": "US", "region": "California", "rate_bps": 725, "applies_to_shipping": True},
            )
        )
        assert ca["region"] == "CA" and ca["applies_to_shipping"] is True
        data(await client.call_tool("upsert_tax_rate", {"country": "DE", "rate_bps": 2000}))  # replaces 19 %
        rates = data(await client.call_tool("list_tax_rates", {}))["rates"]
        assert [(r["country"], r["region"], r["category"], r["rate_bps"]) for r in rates] == [
            ("DE", None, "reduced", 700),
            ("DE", None, "standard", 2000),
            ("US", "CA", "standard", 725),
        ]
        assert len(data(await client.call_tool("list_tax_rates", {"country": "US"}))["rates"]) == 1
        assert data(await client.call_tool("delete_tax_rate", {"country": "DE", "category": "reduced"}))["deleted"]
        again = data(await client.call_tool("delete_tax_rate", {"country": "DE", "category": "reduced"}))
        assert again["deleted"] is False  # safe to retry
        events = data(await client.call_tool("list_audit_events", {}))["events"]
    actions = [(e["action"], e["target"]) for e in events]
    assert actions == [
        ("tax_rate.delete", "DE//reduced"),
        ("tax_rate.upsert", "DE//standard"),
        ("tax_rate.upsert", "US/CA/standard"),
        ("tax_rate.upsert", "DE//reduced"),
        ("tax_rate.upsert", "DE//standard"),
    ]
    assert events[1]["before"]["rate_bps"] == 1900 and events[1]["after"]["rate_bps"] == 2000


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("arguments", "names"),
    [
        ({"country": "XX"}, "country"),
        ({"region": "Atlantis"}, "region"),
        ({"rate_bps": 10001}, "rate_bps"),
        ({"rate_bps": -1}, "rate_bps"),
        ({"category": "VAT reduced!"}, "category"),
    ],
)
async def test_unusable_tax_rates_are_refused_naming_the_field(
    settings: Settings, arguments: dict[str, Any], names: str
) -> None:
    async with Client(build_server(settings)) as client:
        code, text = error(await client.call_tool("upsert_tax_rate", {"country": "US", "rate_bps": 500} | arguments))
        assert code == "invalid_input" and names in text
        assert data(await client.call_tool("list_tax_rates", {}))["rates"] == []


MERCHANT_CONFIG_CALLS: dict[str, dict[str, Any]] = {
    "update_store_profile": {"name": "Mine now"},
    "upsert_shipping_rate": {"rate_id": "x", "name": "X", "countries": ["US"], "price": 0},
    "list_shipping_rates": {},
    "upsert_tax_rate": {"country": "US", "rate_bps": 0},
    "list_tax_rates": {},
    "delete_tax_rate": {"country": "US"},
}


async def test_buyer_keys_are_refused_every_merchant_configuration_tool(settings: Settings) -> None:
    async with Client(buyer_server(settings)) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
        assert not listed & set(MERCHANT_CONFIG_CALLS)
        for name, arguments in MERCHANT_CONFIG_CALLS.items():
            code, text = error(await client.call_tool(name, arguments))
            assert code == "forbidden" and "merchant" in text, name


# ---------------------------------------------------------------- discount codes
async def test_discount_codes_are_created_replaced_listed_with_uses_and_audited(
    settings: Settings, services: Services
) -> None:
    async with Client(build_server(settings)) as client:
        data(await client.call_tool("upsert_product", {"product_name": "Mug", "sku": "MUG-K", "price": 900,
                                                       "category": "Kitchen"}))  # fmt: skip
        summer = data(
            await client.call_tool(
                "upsert_discount_code",
                {"code": "summer-15", "kind": "percent", "value": 1500, "starts_at": "2026-06-01",
                 "ends_at": "2026-09-01T00:00:00+02:00", "max_uses": 3, "max_uses_per_buyer": 1,
                 "applies_to": {"categories": ["Kitchen", "Kitchen"]}},
            )
        )  # fmt: skip
        assert summer["code"] == "SUMMER-15" and summer["currency"] is None and summer["uses"] == 0
        assert summer["applies_to"] == {"categories": ["Kitchen"], "skus": []}
        assert summer["ends_at"].startswith("2026-08-31T22:00:00")  # stored in UTC
        five = data(
            await client.call_tool(
                "upsert_discount_code", {"code": "FIVE", "kind": "fixed", "value": 500, "min_subtotal": 2000}
            )
        )
        assert five["currency"] == "USD" and five["min_subtotal"]["display"] == "$20.00"  # the store's currency
        ship = data(await client.call_tool("upsert_discount_code", {"code": "shipfree", "kind": "free_shipping"}))
        assert ship["value"] == 0 and ship["applies_to"] == {"categories": [], "skus": []}  # the whole cart

        for _ in range(2):  # two placed orders counted a use each (as create_order does)
            assert await services.db.write(lambda conn: pricing_store.take_use(conn, "SUMMER-15"))
        lower = {"code": "Summer-15", "kind": "percent", "value": 1500, "max_uses": 1}
        code, text = error(await client.call_tool("upsert_discount_code", lower))
        assert code == "invalid_input" and "used 2 time(s)" in text and "max_uses of at least 2" in text
        lowered = data(
            await client.call_tool(
                "upsert_discount_code", {"code": "SUMMER-15", "kind": "percent", "value": 2000, "max_uses": 2}
            )
        )
        assert lowered["uses"] == 2 and lowered["value"] == 2000 and lowered["starts_at"] is None  # uses kept
        listed = data(await client.call_tool("list_discount_codes", {}))["codes"]
        assert [(c["code"], c["uses"]) for c in listed] == [("FIVE", 0), ("SHIPFREE", 0), ("SUMMER-15", 2)]
        data(await client.call_tool("upsert_discount_code", {"code": "FIVE", "kind": "fixed", "value": 500,
                                                             "min_subtotal": 2000, "active": False}))  # fmt: skip
        active = data(await client.call_tool("list_discount_codes", {"active_only": True}))["codes"]
        assert [c["code"] for c in active] == ["SHIPFREE", "SUMMER-15"]
        events = data(await client.call_tool("list_audit_events", {"action": "discount_code.upsert"}))["events"]
    assert [e["target"] for e in events] == ["FIVE", "SUMMER-15", "SHIPFREE", "FIVE", "SUMMER-15"]  # not the refused
    assert events[1]["before"]["max_uses"] == 3 and events[1]["after"]["max_uses"] == 2
    assert events[4]["after"]["ends_at"] == "2026-08-31T22:00:00+00:00"


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("arguments", "names"),
    [
        ({"code": "no spaces"}, "code"),
        ({"code": "ÜBER"}, "code"),
        ({"value": 0}, "value"),
        ({"value": 10001}, "value"),
        ({"value": None}, "needs a value"),
        ({"kind": "fixed", "value": 500, "currency": "ABC"}, "currency"),
        ({"kind": "free_shipping", "value": 100}, "no value"),
        ({"kind": "bogo"}, "kind"),
        ({"starts_at": "2026-06-02", "ends_at": "2026-06-01"}, "ends_at"),
        ({"ends_at": "0001-01-01T00:00:00"}, "ends_at"),
        ({"max_uses": 0}, "max_uses"),
        ({"applies_to": {"brands": ["x"]}}, "brands"),
        ({"applies_to": {"categories": ["\x07"]}}, "applies_to.categories"),
    ],
)
async def test_unusable_discount_codes_are_refused_naming_the_field(
    settings: Settings, arguments: dict[str, Any], names: str
) -> None:
    code = {"code": "SPRING", "kind": "percent", "value": 1000} | arguments
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("upsert_discount_code", {k: v for k, v in code.items() if v is not None})
        kind, text = error(result)
        assert kind == "invalid_input" and names in text
        assert data(await client.call_tool("list_discount_codes", {}))["codes"] == []


async def test_a_code_for_skus_or_categories_the_catalog_does_not_have_is_refused_naming_them(
    settings: Settings,
) -> None:
    """Such a code would silently never apply (a typo, a SKU not imported yet): refused, naming each one."""
    async with Client(build_server(settings)) as client:
        data(await client.call_tool("upsert_product", {"product_name": "Mug", "sku": "MUG-K", "price": 900,
                                                       "category": "Kitchen"}))  # fmt: skip
        wanted = {"skus": ["MUG-K", "MUG-KK", "mug-k"], "categories": ["kitchen", "Kitchn"]}
        arguments = {"code": "SCOPED", "kind": "percent", "value": 1000, "applies_to": wanted}
        result = await client.call_tool("upsert_discount_code", arguments)
        code, text = error(result)
        assert code == "invalid_input" and "MUG-KK, mug-k" in text and "Kitchn" in text
        details = json.loads(result.content[1].text)["error"]["details"]
        assert details == {"field": "applies_to", "unknown_skus": ["MUG-KK", "mug-k"], "unknown_categories": ["Kitchn"]}
        assert data(await client.call_tool("list_discount_codes", {}))["codes"] == []
        made = data(await client.call_tool("upsert_discount_code", {
            **arguments, "applies_to": {"skus": ["MUG-K"], "categories": ["kitchen"]},
        }))  # fmt: skip
        assert made["applies_to"] == {"categories": ["kitchen"], "skus": ["MUG-K"]}


async def test_buyer_keys_are_refused_the_discount_code_tools(settings: Settings) -> None:
    async with Client(buyer_server(settings)) as client:
        for name, arguments in {
            "upsert_discount_code": {"code": "MINE", "kind": "percent", "value": 10000},
            "list_discount_codes": {},
        }.items():
            code, _ = error(await client.call_tool(name, arguments))
            assert code == "forbidden", name


# ---------------------------------------------------------------- SKU shipping and tax attributes
async def test_sku_attributes_through_upsert_product_csv_import_and_get_product(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        made = data(
            await client.call_tool(
                "upsert_product",
                {"product_name": "E-book", "sku": "BOOK-1", "price": 500, "requires_shipping": False,
                 "tax_category": "Reduced", "image_url": "https://shop.example/book.png"},
            )
        )  # fmt: skip
        variant = made["product"]["variants"][0]
        assert (variant["requires_shipping"], variant["tax_category"], variant["weight_grams"]) == (
            False,
            "reduced",
            None,
        )
        assert variant["image_url"] == "https://shop.example/book.png"
        data(await client.call_tool("upsert_product", {"product_name": "E-book", "sku": "BOOK-1", "price": 600}))
        kept = data(await client.call_tool("get_product", {"sku": "BOOK-1"}))["variants"][0]
        assert (kept["requires_shipping"], kept["tax_category"]) == (False, "reduced")  # not given: kept
        csv_text = (
            "product_name,sku_code,unit_price,requires_shipping,tax_category,weight_grams\n"
            "Mug,MUG-9,9.00,,,350\nE-book,BOOK-1,6.00,true,,\n"
        )
        report = data(await client.call_tool("import_catalog_csv", {"csv_text": csv_text}))
        assert (report["created"], report["updated"]) == (1, 1)
        mug = data(await client.call_tool("get_product", {"sku": "MUG-9"}))["variants"][0]
        assert (mug["requires_shipping"], mug["tax_category"], mug["weight_grams"]) == (True, "standard", 350)
        book = data(await client.call_tool("get_product", {"sku": "BOOK-1"}))["variants"][0]
        assert (book["requires_shipping"], book["tax_category"]) == (True, "reduced")
        code, text = error(
            await client.call_tool(
                "upsert_product", {"product_name": "Mug", "sku": "MUG-9", "price": 900, "tax_category": "VAT 7%"}
            )
        )
        assert code == "invalid_input" and "tax_category" in text
        events = data(await client.call_tool("list_audit_events", {"action": "product.upsert"}))["events"]
    assert events[-1]["after"]["requires_shipping"] is False and events[-1]["after"]["tax_category"] == "reduced"


async def test_the_store_profiles_currency_is_the_default_for_new_skus_imports_and_carts(
    settings: Settings, services: Services
) -> None:
    """One home: the settings (USD here) only seed the profile; once the merchant sets EUR, SKUs upserted or
    imported without a currency, and carts created without one, are in EUR. An existing SKU keeps its own."""
    async with Client(build_server(settings)) as client:
        data(await client.call_tool("upsert_product", {"product_name": "Old", "sku": "OLD-1", "price": 500}))
        data(await client.call_tool("update_store_profile", {"default_currency": "EUR"}))
        made = data(await client.call_tool("upsert_product", {"product_name": "Mug", "sku": "MUG-E", "price": 900}))
        assert made["product"]["variants"][0]["price"]["currency"] == "EUR"
        data(await client.call_tool("upsert_product", {"product_name": "Old", "sku": "OLD-1", "price": 600}))
        old = data(await client.call_tool("get_product", {"sku": "OLD-1"}))["variants"][0]
        assert (old["price"]["amount"], old["price"]["currency"]) == (600, "USD")
        csv_text = "product_name,sku_code,unit_price,quantity_on_hand\nBowl,BOWL-E,12.50,3\n"
        assert data(await client.call_tool("import_catalog_csv", {"csv_text": csv_text}))["created"] == 1
        bowl = data(await client.call_tool("get_product", {"sku": "BOWL-E"}))["variants"][0]
        assert (bowl["price"]["amount"], bowl["price"]["currency"]) == (1250, "EUR")
        cart = data(await client.call_tool("create_cart", {}))
        assert cart["currency"] == "EUR"
    ucp_cart, _ = await services.carts.create_once(MERCHANT, CreateCart(idempotency_key="cart-eur"))  # UCP's path
    assert ucp_cart.currency == "EUR"
