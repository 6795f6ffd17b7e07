"""Merchant tools (import_catalog_csv, upsert_product, adjust_inventory, list_orders, sales_summary) and the
merchant_daily_report prompt, through a real MCP client on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from mcp_checkout.config import Settings
from mcp_checkout.domain import CatalogRow, Principal
from mcp_checkout.errors import Forbidden, InsufficientStock, InvalidInput
from mcp_checkout.payments.offline import OfflineGateway
from mcp_checkout.server import build_server
from mcp_checkout.service.checkout_links import CreateLink
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.service.merchant import MerchantService
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.service.refunds import RefundOrder
from mcp_checkout.store.catalog_write import upsert_catalog
from tests.support import tool_data as data

MERCHANT = Principal(id="local", kind="merchant")
CATALOG_AND_SALES_TOOLS = ("import_catalog_csv", "upsert_product", "adjust_inventory", "list_orders", "sales_summary")
HEADER = "product_name,sku_code,unit_price,quantity_on_hand,category"
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # argument checks never reach the DB


def error(result: Any) -> tuple[str, str]:
    """(code, message) of a failed tool call."""
    assert result.is_error, f"expected an error, got {str(result.structured_content)[:300]}"
    text = str(result.content[0].text)
    assert text.startswith("[") and "Traceback" not in text, text
    return json.loads(result.content[1].text)["error"]["code"], text


@dataclasses.dataclass
class Shop:
    server: Any
    services: Services
    clock: Any
    import_dir: Path


@pytest.fixture
async def shop(
    settings: Settings, tmp_path: Path, fake_clock: Any, small_catalog: list[CatalogRow]
) -> AsyncIterator[Shop]:
    """An MCP server and the services it uses, on a seeded database, with a hand-moved clock and an
    import directory; the merchant service reports import progress every 10 ms."""
    clock = fake_clock
    clock.now = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
    import_dir = tmp_path / "imports"
    import_dir.mkdir()
    shop_settings = settings.model_copy(update={"import_dir": import_dir})
    built = build_services(shop_settings, clock=clock)
    merchant = MerchantService(
        built.db, clock, orders=built.orders, catalog=built.catalog, default_currency="USD",
        import_dir=shop_settings.resolved_import_dir(), progress_interval=0.01,
    )  # fmt: skip
    services = dataclasses.replace(built, merchant=merchant)
    now = clock.now
    await services.db.write(lambda conn: upsert_catalog(conn, small_catalog, now))
    yield Shop(build_server(shop_settings, services=services), services, clock, import_dir)
    await services.close()


async def order(services: Services, key: str, items: list[tuple[str, int]], reference: str | None = None) -> str:
    command = CreateOrder(idempotency_key=key, items=items, merchant_reference_id=reference)
    return (await services.orders.create(MERCHANT, command)).order_id


async def pay(services: Services, order_id: str) -> None:
    handoff = await services.payments.handoff(MERCHANT, order_id)
    gateway = services.payments.gateway
    assert isinstance(gateway, OfflineGateway)
    await gateway.simulate_payment(handoff.intent_id)
    synced = await services.payments.sync(MERCHANT, order_id)
    assert synced.order.status == "paid"


# ---------------------------------------------------------------- who may call
async def test_buyers_neither_see_nor_call_merchant_tools(settings: Settings, seeded: Services) -> None:
    buyer = build_server(settings.model_copy(update={"local_principal_kind": "buyer"}))
    async with Client(buyer) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}
        assert not listed & set(CATALOG_AND_SALES_TOOLS) and "search_catalog" in listed
        assert "merchant_daily_report" not in {p.name for p in (await client.list_prompts()).prompts}
        arguments: dict[str, dict[str, Any]] = {
            "import_catalog_csv": {"csv_text": f"{HEADER}\nMug,MUG-9,1.00,1,Kitchen\n"},
            "upsert_product": {"product_name": "Mug", "sku": "MUG-9", "price": 100},
            "adjust_inventory": {"sku": "MUG-01", "set_to": 0},
            "list_orders": {},
            "sales_summary": {},
        }
        for name, args in arguments.items():
            code, text = error(await client.call_tool(name, args))
            assert code == "forbidden" and "merchant" in text, name
    product = await seeded.catalog.get_product(sku="MUG-01")
    assert product.variants[0].available == 10  # adjust_inventory did nothing
    buyer_principal = Principal(id="someone", kind="buyer")
    with pytest.raises(Forbidden):  # the service refuses too, whatever the transport does
        await seeded.merchant.list_orders(buyer_principal)
    with pytest.raises(Forbidden):
        await seeded.merchant.adjust_inventory(buyer_principal, "MUG-01", set_to=0)


async def test_merchants_see_the_tools_and_the_prompt(server: Any, seeded: Services) -> None:
    async with Client(server) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(CATALOG_AND_SALES_TOOLS) <= set(tools)
        for name in ("list_orders", "sales_summary"):
            assert tools[name].annotations.read_only_hint is True
        for name in ("import_catalog_csv", "upsert_product"):
            hints = tools[name].annotations
            assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint) == (False, True, True)
        adjust = tools["adjust_inventory"].annotations
        assert (adjust.read_only_hint, adjust.idempotent_hint) == (False, False), "a delta moves stock again"
        assert "merchant_daily_report" in {p.name for p in (await client.list_prompts()).prompts}


# ---------------------------------------------------------------- import_catalog_csv
async def test_import_csv_text_dry_run_then_for_real(shop: Shop) -> None:
    csv_text = f"{HEADER}\nCedar Candle,CANDLE-S,12.50,4,Home\nCedar Candle,CANDLE-L,19.00,2,Home\nStoneware Coffee Mug,MUG-01,18.00,12,Kitchen\n"
    async with Client(shop.server) as client:
        dry = data(await client.call_tool("import_catalog_csv", {"csv_text": csv_text, "dry_run": True}))
        assert (dry["rows_read"], dry["created"], dry["updated"], dry["dry_run"]) == (3, 2, 1, True)
        missing = await client.call_tool("get_product", {"sku": "CANDLE-S"})
        assert error(missing)[0] == "sku_not_found"
        report = data(await client.call_tool("import_catalog_csv", {"csv_text": csv_text}))
        assert (report["created"], report["updated"], report["skipped"], report["problems"]) == (2, 1, 0, [])
        candle = data(await client.call_tool("get_product", {"sku": "CANDLE-L"}))
        assert {v["sku"]: v["price"]["amount"] for v in candle["variants"]} == {"CANDLE-S": 1250, "CANDLE-L": 1900}
        again = data(await client.call_tool("import_catalog_csv", {"csv_text": csv_text}))
        assert (again["created"], again["updated"]) == (0, 3)
    assert (await shop.services.catalog.get_product(sku="MUG-01")).variants[0].available == 12


async def test_import_with_problems_is_refused_whole_unless_skip_invalid(shop: Shop) -> None:
    csv_text = f"{HEADER}\nGood Lamp,LAMP-1,30.00,3,Home\nBad Lamp,LAMP-2,1.234,3,Home\n"
    async with Client(shop.server) as client:
        code, text = error(await client.call_tool("import_catalog_csv", {"csv_text": csv_text}))
        assert code == "catalog_import_invalid" and "line 3" in text and "skip_invalid" in text
        assert error(await client.call_tool("get_product", {"sku": "LAMP-1"}))[0] == "sku_not_found"
        report = data(await client.call_tool("import_catalog_csv", {"csv_text": csv_text, "skip_invalid": True}))
        assert (report["created"], report["skipped"]) == (1, 1)
        assert report["problems"][0]["line"] == 3 and report["problems"][0]["sku"] == "LAMP-2"


async def test_import_from_a_file_in_the_import_directory(shop: Shop) -> None:
    (shop.import_dir / "spring.csv").write_text(f"{HEADER}\nLinen Apron,APRON-1,24.00,6,Kitchen\n")
    (shop.import_dir / "sub").mkdir()
    (shop.import_dir / "sub" / "more.csv").write_text(f"{HEADER}\nLinen Napkin,NAPKIN-1,8.00,20,Kitchen\n")
    async with Client(shop.server) as client:
        report = data(await client.call_tool("import_catalog_csv", {"path": "spring.csv"}))
        assert report["created"] == 1
        nested = data(await client.call_tool("import_catalog_csv", {"path": str(shop.import_dir / "sub" / "more.csv")}))
        assert nested["created"] == 1
        code, text = error(await client.call_tool("import_catalog_csv", {"path": "autumn.csv"}))
        assert code == "invalid_input" and "spring.csv" in text  # lists the files that are there
        code, _ = error(await client.call_tool("import_catalog_csv", {"path": "sub"}))
        assert code == "invalid_input"


async def test_paths_outside_the_import_directory_are_refused(shop: Shop, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text(f"{HEADER}\nStolen,STOLEN-1,1.00,1,X\n")
    inside = shop.import_dir / "ok.csv"
    inside.write_text(f"{HEADER}\nAllowed,ALLOWED-1,1.00,1,X\n")
    os.symlink(secret, shop.import_dir / "link-out.csv")
    os.symlink(inside, shop.import_dir / "link-in.csv")
    os.symlink(tmp_path, shop.import_dir / "dir-out")
    escapes = [
        "../secret.csv",
        "sub/../../secret.csv",
        str(secret),
        "link-out.csv",
        "dir-out/secret.csv",
        "/etc/passwd",
        str(shop.import_dir) + "/../secret.csv",
    ]
    async with Client(shop.server) as client:
        for path in escapes:
            code, text = error(await client.call_tool("import_catalog_csv", {"path": path}))
            assert code == "forbidden" and "outside the import directory" in text, path
            assert "csv_text" in text  # says what to do instead
        assert error(await client.call_tool("get_product", {"sku": "STOLEN-1"}))[0] == "sku_not_found"
        allowed = data(await client.call_tool("import_catalog_csv", {"path": "link-in.csv"}))
        assert allowed["created"] == 1  # a symlink that stays inside is fine


async def test_missing_import_directory_says_how_to_create_it(
    settings: Settings, seeded: Services, tmp_path: Path
) -> None:
    server = build_server(settings.model_copy(update={"import_dir": tmp_path / "nowhere"}))
    async with Client(server) as client:
        code, text = error(await client.call_tool("import_catalog_csv", {"path": "catalog.csv"}))
        assert code == "invalid_input" and "does not exist" in text and "nowhere" in text


@SQLITE_ONLY
async def test_import_arguments_are_checked(server: Any) -> None:
    async with Client(server) as client:
        code, text = error(await client.call_tool("import_catalog_csv", {}))
        assert code == "invalid_input" and "exactly one" in text
        both = {"csv_text": f"{HEADER}\n", "path": "x.csv"}
        assert error(await client.call_tool("import_catalog_csv", both))[0] == "invalid_input"
        too_big = await client.call_tool("import_catalog_csv", {"csv_text": "x" * 5_000_001})
        code, text = error(too_big)
        assert code == "invalid_input" and "csv_text" in text
        assert error(await client.call_tool("import_catalog_csv", {"path": "x" * 1025}))[0] == "invalid_input"
        assert error(await client.call_tool("import_catalog_csv", {"csv_text": ""}))[0] == "invalid_input"


async def test_a_large_import_reports_progress_to_the_client(shop: Shop) -> None:
    rows = "\n".join(f"Bulk Item {i},BULK-{i:05d},{i % 90 + 1}.50,{i % 7},Bulk" for i in range(20_000))
    big: list[tuple[float, float | None]] = []
    small: list[tuple[float, float | None]] = []

    def collect(into: list[tuple[float, float | None]]) -> Any:
        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            into.append((progress, total))

        return on_progress

    async with Client(shop.server) as client:
        result = await client.call_tool(
            "import_catalog_csv", {"csv_text": HEADER + "\n" + rows}, progress_callback=collect(big)
        )
        assert data(result)["created"] == 20_000
        tiny = await client.call_tool(
            "import_catalog_csv", {"csv_text": f"{HEADER}\nOne,ONE-1,1.00,1,X\n"}, progress_callback=collect(small)
        )
        assert data(tiny)["created"] == 1
    assert len(big) >= 3, big
    assert [done for done, _ in big] == sorted(done for done, _ in big)  # never goes back
    assert all(total is not None and 0 <= done <= total for done, total in big)
    assert big[-1][0] == big[-1][1]  # ends at 100%
    assert small and small[-1][0] == small[-1][1]  # even a tiny import says when it is done


# ---------------------------------------------------------------- upsert_product
async def test_upsert_creates_then_updates_one_sku(shop: Shop) -> None:
    args = {"product_name": "Oak Cutting Board", "sku": "BOARD-L", "price": 4500, "stock": 5, "category": "Kitchen"}
    async with Client(shop.server) as client:
        created = data(await client.call_tool("upsert_product", args))
        assert created["created"] is True
        assert created["inventory"] == {
            "sku": "BOARD-L", "title": "Oak Cutting Board", "stock_on_hand": 5, "reserved": 0, "available": 5,
            "previous_stock_on_hand": None,
        }  # fmt: skip
        assert created["product"]["category"] == "Kitchen"
        assert created["product"]["variants"][0]["price"] == {"amount": 4500, "currency": "USD", "display": "$45.00"}
        retry = data(await client.call_tool("upsert_product", args))
        assert retry["created"] is False and retry["inventory"]["stock_on_hand"] == 5  # same call, same state
        repriced = data(
            await client.call_tool(
                "upsert_product", {"product_name": "Oak Cutting Board", "sku": "BOARD-L", "price": 3900}
            )
        )
        assert repriced["inventory"]["stock_on_hand"] == 5  # absent stock keeps the stored value
        assert repriced["product"]["category"] == "Kitchen"  # and absent texts too
        assert repriced["product"]["variants"][0]["price"]["amount"] == 3900
        variant = data(
            await client.call_tool(
                "upsert_product",
                {"product_name": "Oak Cutting Board", "sku": "BOARD-S", "price": 2900, "sku_name": "Small", "stock": 2},
            )
        )
        assert [v["sku"] for v in variant["product"]["variants"]] == ["BOARD-L", "BOARD-S"]
        assert variant["inventory"]["title"] == "Oak Cutting Board - Small"
        euro = data(
            await client.call_tool(
                "upsert_product", {"product_name": "Linen Tea Towel", "sku": "TOWEL-EU", "price": 950}
            )
        )
        assert euro["product"]["variants"][0]["price"]["currency"] == "EUR"  # an existing SKU keeps its currency
        found = data(await client.call_tool("search_catalog", {"query": "cutting board"}))
        assert {item["sku"] for item in found["items"]} == {"BOARD-L", "BOARD-S"}


async def test_upsert_never_sets_stock_below_reserved(shop: Shop) -> None:
    await order(shop.services, "reserve-6", [("MUG-01", 6)])
    async with Client(shop.server) as client:
        args = {"product_name": "Stoneware Coffee Mug", "sku": "MUG-01", "price": 1800, "stock": 5}
        code, text = error(await client.call_tool("upsert_product", args))
        assert code == "invalid_input" and "6 unit(s) reserved" in text and "Nothing was changed" in text
        ok = data(await client.call_tool("upsert_product", {**args, "stock": 6}))
        assert ok["inventory"] == {
            "sku": "MUG-01", "title": "Stoneware Coffee Mug", "stock_on_hand": 6, "reserved": 6, "available": 0,
            "previous_stock_on_hand": 10,
        }  # fmt: skip


async def test_upsert_rejects_unusable_values(shop: Shop) -> None:
    base = {"product_name": "Lamp", "sku": "LAMP-X", "price": 100}
    async with Client(shop.server) as client:
        for bad in (
            {"price": -1},
            {"price": 10**10 + 1},
            {"price": "12.50"},
            {"stock": -1},
            {"currency": "usd"},
            {"sku": ""},
            {"sku": "S" * 65},
            {"product_name": "N" * 301},
            {"description": "D" * 5001},
        ):
            code, _ = error(await client.call_tool("upsert_product", {**base, **bad}))
            assert code == "invalid_input", bad
        for bad, word in (({"currency": "XYZ"}, "ISO 4217"), ({"product_name": "Lamp\x07"}, "control character")):
            code, text = error(await client.call_tool("upsert_product", {**base, **bad}))
            assert code == "invalid_input" and word in text, bad
        code, text = error(
            await client.call_tool("upsert_product", {**base, "product_name": "N" * 300, "sku_name": "V" * 300})
        )
        assert code == "invalid_input" and "title" in text
    assert (await shop.services.catalog.search("lamp")).items == []


# ---------------------------------------------------------------- adjust_inventory
async def test_adjust_inventory_absolute_and_delta(shop: Shop) -> None:
    async with Client(shop.server) as client:
        counted = data(
            await client.call_tool("adjust_inventory", {"sku": "MUG-01", "set_to": 25, "reason": "stocktake"})
        )
        assert counted == {
            "sku": "MUG-01", "title": "Stoneware Coffee Mug", "stock_on_hand": 25, "reserved": 0, "available": 25,
            "previous_stock_on_hand": 10,
        }  # fmt: skip
        again = data(await client.call_tool("adjust_inventory", {"sku": "MUG-01", "set_to": 25}))
        assert again["stock_on_hand"] == 25  # absolute: safe to retry
        delivered = data(await client.call_tool("adjust_inventory", {"sku": "MUG-01", "delta": 12}))
        assert (delivered["previous_stock_on_hand"], delivered["stock_on_hand"]) == (25, 37)
        broken = data(await client.call_tool("adjust_inventory", {"sku": "MUG-01", "delta": -7, "reason": "breakage"}))
        assert broken["stock_on_hand"] == 30 and broken["available"] == 30
        zero = data(await client.call_tool("adjust_inventory", {"sku": "MUG-02", "set_to": 0}))
        assert zero["available"] == 0
    product = await shop.services.catalog.get_product(sku="MUG-01")
    assert product.variants[0].available == 30


async def test_adjust_inventory_never_goes_below_reserved(shop: Shop, db_facts: Any) -> None:
    await order(shop.services, "reserve-8", [("MUG-01", 8)])
    async with Client(shop.server) as client:
        code, text = error(await client.call_tool("adjust_inventory", {"sku": "MUG-01", "set_to": 5}))
        assert code == "invalid_input" and "8 unit(s) reserved" in text and "set_to=8" in text
        details = json.loads(
            (await client.call_tool("adjust_inventory", {"sku": "MUG-01", "delta": -3})).content[1].text
        )
        assert details["error"]["details"] == {
            "sku": "MUG-01", "stock_on_hand": 10, "reserved": 8, "requested_stock_on_hand": 7
        }  # fmt: skip
        assert "delta=-2" in details["error"]["message"]
        exact = data(await client.call_tool("adjust_inventory", {"sku": "MUG-01", "delta": -2}))
        assert (exact["stock_on_hand"], exact["reserved"], exact["available"]) == (8, 8, 0)
        assert error(await client.call_tool("adjust_inventory", {"sku": "MUG-01", "set_to": 7}))[0] == "invalid_input"
    assert (await db_facts(shop.services.db).stock())["MUG-01"] == (8, 8)
    await db_facts(shop.services.db).assert_stock_consistent()


async def test_adjust_inventory_errors(shop: Shop) -> None:
    async with Client(shop.server) as client:
        code, text = error(await client.call_tool("adjust_inventory", {"sku": "NOPE", "set_to": 1}))
        assert code == "sku_not_found" and "upsert_product" in text
        code, text = error(await client.call_tool("adjust_inventory", {"sku": "MUG-01"}))
        assert code == "invalid_input" and "exactly one" in text
        both = {"sku": "MUG-01", "set_to": 1, "delta": 1}
        assert error(await client.call_tool("adjust_inventory", both))[0] == "invalid_input"
        for bad in ({"set_to": -1}, {"set_to": 10**9 + 1}, {"delta": -(10**9) - 1}, {"delta": 1.5}, {"reason": ""}):
            args = {"sku": "MUG-01", **({} if "set_to" in bad or "delta" in bad else {"delta": 1}), **bad}
            assert error(await client.call_tool("adjust_inventory", args))[0] == "invalid_input", bad
        await client.call_tool("adjust_inventory", {"sku": "MUG-01", "set_to": 10**9})
        code, text = error(await client.call_tool("adjust_inventory", {"sku": "MUG-01", "delta": 1}))
        assert code == "invalid_input" and "limit" in text
    assert (await shop.services.catalog.get_product(sku="MUG-01")).variants[0].available == 10**9


async def test_adjustments_racing_orders_never_oversell(shop: Shop, db_facts: Any) -> None:
    """20 orders of 1 and 10 removals of 1 race for MUG-01's 10 units: whatever wins, reserved never
    exceeds stock on hand and every unit is accounted for."""
    placed: list[str] = []
    removed: list[int] = []

    async def buy(i: int) -> None:
        with contextlib.suppress(InsufficientStock):
            placed.append(await order(shop.services, f"race-{i}", [("MUG-01", 1)]))

    async def remove() -> None:
        try:
            await shop.services.merchant.adjust_inventory(MERCHANT, "MUG-01", delta=-1, reason="race")
            removed.append(1)
        except InvalidInput:
            pass

    async with anyio.create_task_group() as tasks:
        for i in range(20):
            tasks.start_soon(buy, i)
            if i % 2 == 0:
                tasks.start_soon(remove)
    on_hand, reserved = (await db_facts(shop.services.db).stock())["MUG-01"]
    assert reserved == len(placed) and on_hand == 10 - len(removed)
    assert len(placed) + len(removed) == 10  # every unit went to an order or was removed; none twice
    await db_facts(shop.services.db).assert_stock_consistent()


# ---------------------------------------------------------------- list_orders
async def test_list_orders_pages_over_all_orders_without_duplicates_or_gaps(shop: Shop, db_facts: Any) -> None:
    async with Client(shop.server) as client:
        data(
            await client.call_tool(
                "upsert_product", {"product_name": "Bulk Pencil", "sku": "PENCIL", "price": 100, "stock": 5000}
            )
        )
    for i in range(230):
        if i % 3 == 0:
            shop.clock.advance(seconds=1)  # three orders share each timestamp: seq breaks the tie
        await order(shop.services, f"bulk-{i}", [("PENCIL", 1 + i % 4)], reference=f"ref-{i % 10}")
    expected = [
        row["id"]
        for row in sorted(
            await db_facts(shop.services.db).orders(), key=lambda r: (r["created_at"], r["seq"]), reverse=True
        )
    ]
    async with Client(shop.server) as client:
        seen: list[str] = []
        pages, cursor = 0, None
        while True:
            args: dict[str, Any] = {"limit": 100}
            if cursor:
                args["cursor"] = cursor
            page = data(await client.call_tool("list_orders", args))
            pages += 1
            seen += [item["order_id"] for item in page["orders"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 3 and len(seen) == 230 == len(set(seen))
        assert seen == expected
        first = data(await client.call_tool("list_orders", {"limit": 1}))["orders"][0]
        assert first["number"].startswith("MC-") and first["status"] == "pending_payment"
        assert first["item_count"] == 1 + 229 % 4 and first["total"]["amount"] == 100 * (1 + 229 % 4)
        assert first["merchant_reference_id"] == "ref-9" and first["expires_at"] is not None

        # a filtered listing pages the same way, and its cursor belongs to its filters
        filtered: list[str] = []
        cursor = None
        while True:
            args = {"merchant_reference_id": "ref-3", "limit": 7}
            if cursor:
                args["cursor"] = cursor
            page = data(await client.call_tool("list_orders", args))
            filtered += [item["order_id"] for item in page["orders"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            other = await client.call_tool("list_orders", {"merchant_reference_id": "ref-4", "cursor": cursor})
            assert error(other)[0] == "invalid_cursor"
        assert len(filtered) == 23 == len(set(filtered))
        assert filtered == [order_id for index, order_id in enumerate(expected) if (229 - index) % 10 == 3]
        assert error(await client.call_tool("list_orders", {"cursor": "not-a-cursor"}))[0] == "invalid_cursor"


async def test_list_orders_filters_by_status_and_time(shop: Shop) -> None:
    t0 = shop.clock.now
    early = await order(shop.services, "early", [("MUG-01", 1)], reference="crm-1")
    shop.clock.advance(minutes=10)
    paid_id = await order(shop.services, "paid", [("SOCK-M-GRY", 2)])
    await pay(shop.services, paid_id)
    shop.clock.advance(minutes=10)
    canceled = await order(shop.services, "canceled", [("MUG-02", 1)])
    await shop.services.orders.cancel(MERCHANT, canceled, "test")
    link = await shop.services.links.create_link(MERCHANT, CreateLink(order_id=early, merchant_reference_id="link-ref"))
    assert link.order_id == early
    async with Client(shop.server) as client:

        async def ids(**args: Any) -> list[str]:
            return [item["order_id"] for item in data(await client.call_tool("list_orders", args))["orders"]]

        assert await ids() == [canceled, paid_id, early]
        assert await ids(status="paid") == [paid_id]
        assert await ids(status="canceled") == [canceled]
        assert await ids(created_from=(t0 + timedelta(minutes=5)).isoformat()) == [canceled, paid_id]
        assert await ids(created_to=(t0 + timedelta(minutes=10)).isoformat()) == [early]  # exclusive end
        naive = (t0 + timedelta(minutes=10)).replace(tzinfo=None).isoformat()
        assert await ids(created_from=naive, created_to=(t0 + timedelta(minutes=11)).isoformat()) == [paid_id]
        assert await ids(merchant_reference_id="crm-1") == [early]
        assert await ids(merchant_reference_id="link-ref") == [early]  # a link's reference finds its order
        assert await ids(merchant_reference_id="nothing") == []
        # an unpaid order past its deadline is listed as expired, not as payable
        shop.clock.advance(hours=2)
        listed = data(await client.call_tool("list_orders", {}))["orders"]
        assert {item["order_id"]: item["status"] for item in listed}[early] == "expired"
        assert all(item["expires_at"] is None for item in listed)
        assert await ids(status="pending_payment") == []


@SQLITE_ONLY
async def test_list_orders_bounds(server: Any) -> None:
    async with Client(server) as client:
        for bad in (
            {"limit": 0},
            {"limit": 101},
            {"status": "shipped"},
            {"created_from": "yesterday"},
            {"created_from": "2026-01-01T00:00:00" + "0" * 40},
            {"created_from": "2026-02-01", "created_to": "2026-01-01"},
            {"merchant_reference_id": "has space"},
            {"cursor": ""},
            {"cursor": "c" * 513},
        ):
            code, _ = error(await client.call_tool("list_orders", bad))
            assert code == "invalid_input", bad


# ---------------------------------------------------------------- sales_summary
async def test_sales_summary_matches_the_orders_paid_and_refunded(shop: Shop) -> None:
    services, clock = shop.services, shop.clock
    t0 = clock.now
    # day 1: two paid orders (USD, EUR), one left unpaid
    mugs = await order(services, "d1-mugs", [("MUG-01", 2)])  # 36.00 USD
    await pay(services, mugs)
    towels = await order(services, "d1-towels", [("TOWEL-EU", 3)])  # 27.00 EUR
    await pay(services, towels)
    await order(services, "d1-unpaid", [("SOCK-M-GRY", 1)])
    # day 2: one paid order, one canceled, a partial refund of day 1's mugs
    clock.advance(days=1)
    await services.orders.expire_due()
    mixed = await order(services, "d2-mixed", [("MUG-01", 1), ("SOCK-M-GRY", 1)])  # 18.00 + 22.00 USD
    await pay(services, mixed)
    canceled = await order(services, "d2-canceled", [("MUG-02", 1)])
    await services.orders.cancel(MERCHANT, canceled, None)
    clock.advance(hours=2)
    refund = await services.refunds.refund(MERCHANT, RefundOrder(mugs, "refund-1", 1000, "chipped"))
    assert refund.status == "succeeded"
    clock.advance(hours=1)

    def window(start: timedelta, end: timedelta) -> dict[str, Any]:
        return {"period_start": (t0 + start).isoformat(), "period_end": (t0 + end).isoformat()}

    def product(sku: str, title: str, units: int, amount: int, display: str, currency: str = "USD") -> dict[str, Any]:
        money = {"amount": amount, "currency": currency, "display": display}
        return {"sku": sku, "title": title, "units": units, "revenue": money}

    async with Client(shop.server) as client:
        day1 = data(await client.call_tool("sales_summary", window(timedelta(hours=-1), timedelta(hours=1))))
        assert day1["orders_created"] == {
            "total": 3, "pending_payment": 0, "paid": 2, "partially_fulfilled": 0, "fulfilled": 0, "canceled": 0,
            "expired": 1, "refunded": 0,
        }  # fmt: skip
        eur, usd = day1["sales"]
        assert (eur["currency"], eur["paid_orders"], eur["revenue"]["amount"], eur["net"]["display"]) == (
            "EUR", 1, 2700, "€27.00"
        )  # fmt: skip
        assert eur["top_by_units"] == [product("TOWEL-EU", "Linen Tea Towel", 3, 2700, "€27.00", "EUR")]
        assert (usd["paid_orders"], usd["revenue"]["amount"], usd["refunds"], usd["refunded"]["amount"]) == (
            1,
            3600,
            0,
            0,
        )
        assert usd["top_by_revenue"] == [product("MUG-01", "Stoneware Coffee Mug", 2, 3600, "$36.00")]

        day2 = data(await client.call_tool("sales_summary", window(timedelta(days=1), timedelta(days=2))))
        assert day2["orders_created"]["total"] == 2
        assert (day2["orders_created"]["paid"], day2["orders_created"]["canceled"]) == (1, 1)
        [usd2] = day2["sales"]
        assert (usd2["paid_orders"], usd2["revenue"]["amount"], usd2["refunds"], usd2["refunded"]["amount"]) == (
            1,
            4000,
            1,
            1000,
        )
        assert usd2["net"] == {"amount": 3000, "currency": "USD", "display": "$30.00"}
        socks, mug = (
            product("SOCK-M-GRY", "Merino Wool Socks - M / Grey", 1, 2200, "$22.00"),
            product("MUG-01", "Stoneware Coffee Mug", 1, 1800, "$18.00"),
        )
        assert usd2["top_by_units"] == [socks, mug]  # equal units: higher revenue first
        assert usd2["top_by_revenue"] == [socks, mug]

        both = data(await client.call_tool("sales_summary", window(timedelta(0), timedelta(days=2))))
        usd_both = both["sales"][1]
        assert (usd_both["paid_orders"], usd_both["revenue"]["amount"], usd_both["net"]["amount"]) == (2, 7600, 6600)
        assert [(p["sku"], p["units"], p["revenue"]["amount"]) for p in usd_both["top_by_units"]] == [
            ("MUG-01", 3, 5400), ("SOCK-M-GRY", 1, 2200)
        ]  # fmt: skip

        refund_only = data(
            await client.call_tool("sales_summary", window(timedelta(days=1, hours=1), timedelta(days=1, hours=3)))
        )
        [usd3] = refund_only["sales"]
        assert usd3["net"] == {"amount": -1000, "currency": "USD", "display": "-$10.00"}
        assert usd3["top_by_units"] == [] and refund_only["orders_created"]["total"] == 0

        default = data(await client.call_tool("sales_summary", {}))  # the last 24 hours: day 2 and the refund
        assert default["period_end"].startswith((t0 + timedelta(days=1, hours=3)).isoformat()[:19])
        assert [(s["currency"], s["paid_orders"], s["refunds"]) for s in default["sales"]] == [("USD", 1, 1)]
        since = data(await client.call_tool("sales_summary", {"period_start": (t0 + timedelta(hours=-1)).isoformat()}))
        assert since["orders_created"]["total"] == 5

        empty = data(await client.call_tool("sales_summary", window(timedelta(days=-30), timedelta(days=-29))))
        assert empty["sales"] == [] and empty["orders_created"]["total"] == 0


@SQLITE_ONLY
async def test_sales_summary_bounds(server: Any) -> None:
    async with Client(server) as client:
        for bad in (
            {"period_start": "2026-02-01", "period_end": "2026-01-01"},
            {"period_start": "2026-01-01", "period_end": "2026-01-01"},
            {"period_start": "2024-01-01", "period_end": "2026-01-01"},
            {"period_start": "soon"},
            {"period_start": "2099-01-01"},
        ):
            code, _ = error(await client.call_tool("sales_summary", bad))
            assert code == "invalid_input", bad


# ---------------------------------------------------------------- the prompt
@SQLITE_ONLY
async def test_merchant_daily_report_prompt(server: Any) -> None:
    async with Client(server) as client:
        day = await client.get_prompt("merchant_daily_report", {"date": "2026-03-10"})
        text = "\n".join(m.content.text for m in day.messages)
        assert "sales_summary(period_start='2026-03-10T00:00:00Z', period_end='2026-03-11T00:00:00Z')" in text
        assert "status='pending_payment'" in text and "status='expired'" in text and "list_orders" in text
        latest = await client.get_prompt("merchant_daily_report", {})
        text = "\n".join(m.content.text for m in latest.messages)
        assert "last 24 hours" in text and "sales_summary()" in text
        with pytest.raises(MCPError):
            await client.get_prompt("merchant_daily_report", {"date": "tomorrow"})
