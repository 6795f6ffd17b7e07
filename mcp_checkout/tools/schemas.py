"""The schemas a client is shown, made no heavier than a model needs: every connected model pays for the
tool list on every turn (``bench/tool_list_size.py`` measures it; ``tests/integration/test_tool_list_budget.py``
holds it). Arguments are still validated by each tool's own pydantic model, whatever is shown here.

MCP has no definitions shared between tools (each tool's schemas must stand alone: clients resolve only local
``$ref``s, and the Python SDK's client validates results against ``outputSchema``), so a definition two tools
need is shared in words: where the tool that defines it in full is listed too, the other one names it.
"""

from __future__ import annotations

import json
from typing import Any, Final

NULL: Final = {"type": "null"}
DEFS: Final = "#/$defs/"

# (tool, argument) -> (tool, argument) whose full schema the model already sees when both tools are listed.
SHARED_ARGUMENTS: Final[dict[tuple[str, str], tuple[str, str]]] = {
    ("create_order", "buyer"): ("update_cart", "buyer"),
    ("create_order", "shipping_address"): ("update_cart", "shipping_address"),
    ("create_order", "fulfillment_option_id"): ("update_cart", "fulfillment_option_id"),
    ("create_order", "discount_codes"): ("update_cart", "discount_codes"),
    ("upsert_shipping_rate", "pickup_address"): ("update_cart", "shipping_address"),
    ("fulfill_order", "lines"): ("create_order", "items"),
}


def compact_schema(node: Any) -> Any:
    """An input schema as a model needs it: pydantic's generated ``title`` keywords dropped (the property
    name says it), an optional ``X | None = None`` argument shown as plain ``X`` (leaving it out is how a model
    says "none"), ``minLength: 1`` left out (a model never means an empty string, and the tool refuses one
    with ``invalid_input``) and a ``$defs`` entry used once written where it is used. Every other bound,
    pattern, enum, default and description stays."""
    return inline_single_use_defs(_compact(node, optional_as_plain=True))


def _compact(node: Any, *, optional_as_plain: bool) -> Any:
    if not isinstance(node, dict):
        return node
    out = {key: value for key, value in node.items() if not (key == "title" and isinstance(value, str))}
    options = out.get("anyOf")
    if (
        optional_as_plain
        and isinstance(options, list)
        and len(options) == 2
        and NULL in options
        and out.get("default", ...) is None
    ):
        del out["anyOf"], out["default"]
        out = {**next(option for option in options if option != NULL), **out}
    if optional_as_plain and out.get("minLength") == 1:
        del out["minLength"]
    for key in ("properties", "$defs"):
        if isinstance(out.get(key), dict):
            out[key] = {name: _compact(sub, optional_as_plain=optional_as_plain) for name, sub in out[key].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _compact(out[key], optional_as_plain=optional_as_plain)
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(out.get(key), list):
            out[key] = [_compact(sub, optional_as_plain=optional_as_plain) for sub in out[key]]
    return out


def inline_single_use_defs(schema: Any) -> Any:
    """``{"$ref": "#/$defs/X"}`` replaced by X's schema wherever X is referred to once (a ``$ref`` beside other
    keywords keeps them: ``{"$ref": …, "description": …}``); definitions used more than once, or by
    themselves, stay. Shorter, and some clients handle ``$ref`` poorly."""
    if not isinstance(schema, dict) or not isinstance(schema.get("$defs"), dict):
        return schema
    defs: dict[str, Any] = schema["$defs"]
    text = json.dumps(schema)
    once = {name for name in defs if text.count(json.dumps(DEFS + name)) == 1 and not _refers_to(defs[name], name)}

    def replace(node: Any) -> Any:
        if isinstance(node, list):
            return [replace(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(DEFS) and ref[len(DEFS) :] in once:
            rest = {key: value for key, value in node.items() if key != "$ref"}
            return replace({**defs[ref[len(DEFS) :]], **rest})
        return {key: replace(value) for key, value in node.items() if not (key == "$defs" and node is schema)}

    out = replace(schema)
    kept = {name: replace(sub) for name, sub in defs.items() if name not in once}
    if kept:
        out["$defs"] = kept
    return out


def _refers_to(node: Any, name: str) -> bool:
    return json.dumps(DEFS + name) in json.dumps(node)


def share_arguments(schemas: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``schemas`` (tool name -> input schema) with each argument of SHARED_ARGUMENTS whose defining tool is
    listed too shown by its type, its outer bound and a description naming the definition, instead of
    repeating its full schema. The defining tool keeps its own argument in full (share it once)."""
    out = dict(schemas)
    for (tool, argument), (owner, owner_argument) in SHARED_ARGUMENTS.items():
        if tool not in out or owner not in out:
            continue
        properties = out[tool].get("properties", {})
        if argument not in properties or owner_argument not in out[owner].get("properties", {}):
            continue
        full = properties[argument]
        shown = {key: full[key] for key in ("type", "maxItems", "maxLength") if key in full}
        shown["description"] = f"As {owner}'s {owner_argument}." if owner_argument != argument else f"As {owner}'s."
        out[tool] = _drop_unused_defs({**out[tool], "properties": {**properties, argument: shown}})
    return out


def _drop_unused_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without the ``$defs`` nothing refers to any more (directly or through another definition)."""
    defs = schema.get("$defs")
    if not isinstance(defs, dict):
        return schema
    body = {key: value for key, value in schema.items() if key != "$defs"}
    used: dict[str, Any] = {}
    while True:
        reached = {name: sub for name, sub in defs.items() if _refers_to([body, list(used.values())], name)}
        if reached.keys() == used.keys():
            break
        used = reached
    return {**body, "$defs": used} if used else body


def shape_results(schemas: dict[str, dict[str, Any] | None]) -> dict[str, dict[str, Any] | None]:
    """Output schemas (tool name -> schema) without pydantic's generated titles (nullability stays: a result
    field can be null), where a model several tools return (an order, a cart, a checkout link) is shown in
    full once: the ``get_`` tool among them (else the first by name) keeps it; the others, and results that
    embed it (``wait_for_order``'s ``order``), name that tool instead. Results still carry every field and
    validate against what is shown."""
    compacted = {name: _compact(schema, optional_as_plain=False) for name, schema in schemas.items()}
    groups: dict[str, list[str]] = {}
    for name, schema in compacted.items():
        if schema is not None:
            groups.setdefault(json.dumps(schema, sort_keys=True), []).append(name)
    owners = {
        min(names, key=lambda name: (not name.startswith("get_"), name)): names
        for names in groups.values()
        if len(names) > 1
    }
    out: dict[str, dict[str, Any] | None] = {}
    for name, schema in compacted.items():
        owner = next((owner for owner, names in owners.items() if name in names and name != owner), None)
        if schema is None or owner is not None:
            out[name] = {"type": "object", "description": f"As {owner}'s result."} if owner else None
            continue
        defs = dict(schema.get("$defs", {}))
        for model_owner in owners:
            body = {key: value for key, value in (compacted[model_owner] or {}).items() if key != "$defs"}
            for def_name, sub in defs.items():
                if name != model_owner and sub == body:
                    defs[def_name] = {"type": "object", "description": f"As {model_owner}'s result."}
        out[name] = inline_single_use_defs(_drop_unused_defs({**schema, "$defs": defs} if defs else schema))
    return out
