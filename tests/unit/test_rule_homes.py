"""Each business rule has one home (README, "Architecture"): the checks a reader would make with grep."""

from __future__ import annotations

import functools
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "mcp_checkout"
MAX_LINES = 600
# Migrations and seed data are exempt from the size limit (issue 14).
EXEMPT = ("store/migrations/", "store/demo_catalog.py")


@functools.cache
def sources() -> dict[str, str]:
    return {
        path.relative_to(PACKAGE).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE.rglob("*.py"))
        if "store/migrations/" not in path.relative_to(PACKAGE).as_posix()
    }


def places(pattern: str) -> set[str]:
    found = re.compile(pattern)
    return {name for name, text in sources().items() if found.search(text)}


def test_no_source_module_is_over_600_lines() -> None:
    long = {
        name: text.count("\n")
        for name, text in sources().items()
        if text.count("\n") > MAX_LINES and not name.startswith(EXEMPT)
    }
    assert long == {}, f"split these by job: {long}"


def test_available_stock_is_computed_in_domain_and_enforced_by_one_conditional_update() -> None:
    arithmetic = places(r"on_hand\s*-\s*(?:\w+\.)*reserved\b")
    assert arithmetic <= {"domain/__init__.py", "store/catalog.py", "service/views.py"}, arithmetic
    assert "store/catalog.py" in arithmetic and "domain/__init__.py" in arithmetic


def test_who_may_do_what_is_listed_only_in_the_policy() -> None:
    assert places(r"MERCHANT_TOOLS") == set()
    assert places(r"(?m)^(?:MERCHANT_ONLY\b|def may_\w+|def require\()") == {"service/policy.py"}


def test_request_fingerprints_are_made_only_by_the_idempotency_module() -> None:
    callers = places(r"(?<!def )\bfingerprint\(")
    assert callers == {"service/idempotency.py", "domain/__init__.py"}, callers


def test_categories_compare_by_one_rule() -> None:
    assert places(r"(?m)^def _?category_key\(") == {"domain/__init__.py"}
