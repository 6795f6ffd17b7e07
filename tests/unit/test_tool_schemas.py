"""tools/schemas.py: what a model is shown of a tool's schemas, on hand-made schemas with known answers."""

from __future__ import annotations

from typing import Any

import jsonschema

from mcp_checkout.tools.schemas import compact_schema, inline_single_use_defs, shape_results, share_arguments

ADDRESS = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 100}}, "required": ["city"]}


def test_a_definition_used_once_is_inlined_and_one_used_twice_or_by_itself_stays() -> None:
    node = {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}
    schema = {
        "type": "object",
        "properties": {
            "home": {"$ref": "#/$defs/Address", "description": "Where to ship."},
            "a": {"$ref": "#/$defs/Money"},
            "b": {"$ref": "#/$defs/Money"},
            "tree": {"$ref": "#/$defs/Node"},
        },
        "$defs": {"Address": ADDRESS, "Money": {"type": "integer"}, "Node": node},
    }
    out = inline_single_use_defs(schema)
    assert out["properties"]["home"] == {**ADDRESS, "description": "Where to ship."}
    assert set(out["$defs"]) == {"Money", "Node"}
    assert out["properties"]["a"] == {"$ref": "#/$defs/Money"}
    for value in ({"home": {"city": "Oslo"}, "a": 1, "b": 2}, {"home": {}}):
        assert (jsonschema.Draft202012Validator(schema).is_valid(value)) == (
            jsonschema.Draft202012Validator(out).is_valid(value)
        )


def test_optional_arguments_are_plain_and_min_length_one_and_titles_go() -> None:
    schema = {
        "title": "Args",
        "type": "object",
        "properties": {
            "name": {
                "anyOf": [{"type": "string", "minLength": 1, "maxLength": 9}, {"type": "null"}],
                "default": None,
                "title": "Name",
            },
            "code": {"type": "string", "minLength": 2, "title": "Code"},
        },
    }
    assert compact_schema(schema) == {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 9}, "code": {"type": "string", "minLength": 2}},
    }


def test_a_shared_argument_is_named_only_while_its_owner_is_listed() -> None:
    order = {"type": "object", "properties": {"shipping_address": ADDRESS, "discount_codes": _codes()}}
    cart = {"type": "object", "properties": {"shipping_address": ADDRESS, "discount_codes": _codes()}}
    shared = share_arguments({"create_order": order, "update_cart": cart})
    shown = shared["create_order"]["properties"]
    assert shown["shipping_address"] == {"type": "object", "description": "As update_cart's."}
    assert shown["discount_codes"] == {"type": "array", "maxItems": 5, "description": "As update_cart's."}
    assert shared["update_cart"] == cart
    assert share_arguments({"create_order": order}) == {"create_order": order}


def test_a_result_model_is_shown_in_full_by_the_get_tool_and_named_elsewhere_even_nested() -> None:
    order = {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}
    waited = {
        "type": "object",
        "properties": {"reached": {"type": "boolean"}, "order": {"$ref": "#/$defs/OrderOut"}},
        "$defs": {"OrderOut": {**order, "title": "OrderOut"}},
    }
    out = shape_results({"create_order": order, "get_order": order, "wait_for_order": waited, "ping": None})
    assert out["get_order"] == order
    assert out["create_order"] == {"type": "object", "description": "As get_order's result."}
    assert out["wait_for_order"] == {
        "type": "object",
        "properties": {
            "reached": {"type": "boolean"},
            "order": {"type": "object", "description": "As get_order's result."},
        },
    }
    assert out["ping"] is None
    result = {"reached": True, "order": {"order_id": "ord_1", "status": "paid"}}
    jsonschema.validate(result, out["wait_for_order"])  # what clients validate results against still holds


def _codes() -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 5, "description": "Codes."}
