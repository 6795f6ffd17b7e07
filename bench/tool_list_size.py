"""What a connected model pays for the tool list on every turn: bytes of name + description + input
schema, per caller kind and toolset, against the budgets issue 11 sets (buyer set 12 KB, everything 28 KB).
Also the full tools/list answer (output schemas included), which clients download but models rarely see.
Both are measured as served, after tools/toolsets.py and tools/schemas.py shaped the list: a tool whose
argument another listed tool defines is counted with the short reference it really carries.

    .venv/bin/python bench/tool_list_size.py
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from mcp_checkout.config import Settings
from mcp_checkout.server import build_server

BUDGETS = {"buyer": 12_000, "merchant": 28_000}


def model_visible(tool: Any) -> int:
    shown = {"name": tool.name, "description": tool.description, "inputSchema": tool.input_schema}
    return len(json.dumps(shown, separators=(",", ":"), ensure_ascii=False).encode())


async def measure(settings: Settings) -> tuple[int, int, int, list[tuple[str, int]]]:
    async with Client(build_server(settings)) as client:
        tools = (await client.list_tools()).tools
    sizes = sorted(((tool.name, model_visible(tool)) for tool in tools), key=lambda item: -item[1])
    full = sum(len(json.dumps(t.model_dump(mode="json", by_alias=True, exclude_none=True)).encode()) for t in tools)
    return len(tools), sum(size for _, size in sizes), full, sizes


async def main() -> None:
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as home:
        print(
            f"{'caller':10} {'toolsets':28} {'tools':>5} {'model-visible':>14} {'budget':>8} {'':4} {'tools/list':>11}"
        )
        for kind in ("buyer", "merchant"):
            for toolsets in (None, ["catalog", "cart", "checkout"]):
                settings = Settings(data_dir=Path(home), local_principal_kind=kind, toolsets=toolsets)
                count, visible, full, sizes = await measure(settings)
                budget = BUDGETS[kind] if toolsets is None else 0
                verdict = f"{budget:>8} {'PASS' if visible <= budget else 'MISS'}" if budget else f"{'':>8} {'':4}"
                label = ",".join(toolsets) if toolsets else "all"
                print(f"{kind:10} {label:28} {count:>5} {visible:>14} {verdict} {full:>11}")
                if toolsets is None:
                    print("    largest: " + ", ".join(f"{name} {size}" for name, size in sizes[:5]))


if __name__ == "__main__":
    anyio.run(main)
