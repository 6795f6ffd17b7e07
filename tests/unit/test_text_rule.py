"""domain.check_text: the one rule for text no database can store, and how it names the field."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from mcp_checkout.domain import check_text, text_problem
from mcp_checkout.errors import InvalidInput


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"sku": "A\x00B"}, "sku"),
        ({"items": [{"sku": "ok"}, {"sku": "\x00"}]}, "items[1].sku"),
        ({"address": {"name": "Ada \ud800"}}, "address.name"),
        ({"ok": "fine", "bad\x00key": 1}, "arguments (a key)"),
        ("\x00", "text"),
    ],
)
def test_the_first_bad_text_is_refused_naming_its_field(value: object, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_text(value)
    assert caught.value.details["field"] == field
    assert caught.value.message.startswith(f"{field} ")


@pytest.mark.parametrize("text", ["", "Mug", "🙂☕", "tab\tand\nnewline", "ß İ 中文", "x" * 10_000])
def test_text_every_database_stores_passes(text: str) -> None:
    assert text_problem(text) is None
    check_text({"a": [text, {"b": text}], text[:10] or "k": 1})


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (MappingProxyType({"ok": "fine", "note": "bad\x00"}), "note"),  # a mapping that is not a dict
        ({"a": ["ok", ("fine", {"deep": "x\ud83d"})]}, "a[1][1].deep"),  # a tuple, a lone high surrogate
        ({"pair": "\ud83d\ude42"}, "pair"),  # two surrogate code points are not UTF-8 either
        ({"many": ["ok"] * 200_000 + ["\x00"]}, "many[200000]"),  # past the quick walk's bound
        ({"é\x00": 1}, "arguments (a key)"),
    ],
)
def test_no_bad_text_gets_past_the_quick_walk(value: object, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_text(value)
    assert caught.value.details["field"] == field


def test_a_structure_that_contains_itself_ends() -> None:
    looped: dict[str, object] = {"name": "ok"}
    looped["self"] = looped
    with pytest.raises(RecursionError):  # as before the quick walk: the full walk recurses
        check_text(looped)
