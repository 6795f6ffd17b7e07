"""What every connected model pays on every turn for the tool list (name + description + input schema of each
tool, as bench/tool_list_size.py measures it) stays within budget, so a new tool or a longer docstring that
breaks it fails here rather than costing every agent tokens unnoticed. Issue 11: ≤ 12,000 B for a buyer,
≤ 28,000 B for everything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.tool_list_size import BUDGETS, measure
from mcp_checkout.config import Settings


@pytest.mark.parametrize("kind", ["buyer", "merchant"])
async def test_the_tool_list_a_model_sees_stays_within_budget(kind: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, local_principal_kind=kind)
    count, visible, _full, sizes = await measure(settings)
    heaviest = ", ".join(f"{name} {size} B" for name, size in sizes[:5])
    assert visible <= BUDGETS[kind], f"{kind}: {count} tools cost {visible} B > {BUDGETS[kind]} B; heaviest: {heaviest}"
    assert count >= (17 if kind == "buyer" else 32), "fewer tools than expected: is the caller kind right?"
