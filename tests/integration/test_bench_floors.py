"""The benchmark's payload floors (bench/floors.py) cost what the SDK costs for the very tool they stand for:
the same published schemas (the client validates each result against the outputSchema), the same argument
model, and none of our server's own per-call work."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from bench.floors import FLOORS, floor_server
from mcp_checkout.config import Settings
from mcp_checkout.server import build_server
from mcp_checkout.service.views import MoneyOut, ProductOut, SkuOut

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the tool list needs no database

PRODUCT = ProductOut(
    product_id="prod_1",
    external_id=None,
    name="Mug",
    description="A mug.",
    category="Kitchen",
    variants=[
        SkuOut(
            sku="MUG-01",
            name="",
            title="Mug",
            price=MoneyOut(amount=1800, currency="USD", display="$18.00"),
            available=3,
            in_stock=True,
        )
    ],
)


@SQLITE_ONLY
async def test_each_floor_publishes_exactly_the_schemas_of_its_tool(settings: Settings) -> None:
    server = build_server(settings)
    floor = floor_server(server, lambda _name, _arguments: PRODUCT)
    async with Client(server) as client, Client(floor) as floor_client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        floors = {tool.name: tool for tool in (await floor_client.list_tools()).tools}
    assert set(floors) == set(FLOORS)
    for name, tool in FLOORS.items():
        # create_order publishes "As get_order's result." (tools/schemas.py): so must its floor
        assert floors[name].output_schema == tools[tool].output_schema, name
        assert floors[name].input_schema == tools[tool].input_schema, name


@SQLITE_ONLY
async def test_a_floor_validates_arguments_with_its_tools_model_and_answers_the_precomputed_result(
    settings: Settings,
) -> None:
    asked: list[tuple[str, dict[str, Any]]] = []

    def answer(name: str, arguments: dict[str, Any]) -> ProductOut:
        asked.append((name, {key: value for key, value in arguments.items() if key != "ctx"}))
        return PRODUCT

    floor = floor_server(build_server(settings), answer)
    async with Client(floor) as client:
        answered = await client.call_tool("bench_floor_product", {"sku": "MUG-01"})
        refused = await client.call_tool("bench_floor_product", {"sku": "x" * 65})  # get_product's bound: 64
    assert not answered.is_error
    assert answered.structured_content == PRODUCT.model_dump(mode="json")
    assert asked == [("bench_floor_product", {"product_id": None, "sku": "MUG-01"})]
    assert refused.is_error  # by the SDK itself: no gate of ours, no [code] mapping
    assert "[invalid_input]" not in refused.content[0].text
    assert floor.middleware == [] or all(getattr(m, "__module__", "").startswith("mcp.") for m in floor.middleware)
