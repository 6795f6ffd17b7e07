"""The UCP specification's JSON schemas at 2026-04-08, pinned in tests/fixtures/ucp/2026-04-08 (copied
from the Universal-Commerce-Protocol/ucp repository at tag v2026-04-08, Apache-2.0: LICENSE beside them),
and one validator over them: a response that does not conform fails the test."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

ROOT = Path(__file__).parent / "fixtures" / "ucp" / "2026-04-08" / "source"
SCHEMAS = ROOT / "schemas"


@cache
def _documents() -> dict[str, Any]:
    documents: dict[str, Any] = {}
    for path in sorted(ROOT.rglob("*.json")):
        document = json.loads(path.read_text())
        if isinstance(document, dict) and "$id" in document:
            documents[document["$id"]] = document
    return documents


def _retrieve(uri: str) -> Resource[Any]:
    # The discovery profile schema (at /schemas/discovery/) refers to ../schemas/ucp.json, which resolves to
    # /schemas/schemas/ucp.json; the published schema means /schemas/ucp.json.
    fixed = uri.replace("/schemas/schemas/", "/schemas/")
    document = _documents().get(fixed)
    if document is None:
        raise NoSuchResource(ref=uri)
    return Resource.from_contents(document)


@cache
def _registry() -> Registry[Any]:
    return Registry(retrieve=_retrieve).with_resources(  # type: ignore[call-arg]
        (uri, Resource.from_contents(document)) for uri, document in _documents().items()
    )


def validate(instance: Any, schema_id: str) -> None:
    """Validate ``instance`` against the pinned schema ``schema_id`` (e.g. ``https://ucp.dev/schemas/
    shopping/checkout.json`` or ``…/discovery/profile.json#/$defs/business_profile``); raise on any error."""
    validator = Draft202012Validator({"$ref": schema_id}, registry=_registry())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        raise AssertionError(
            "not valid against "
            + schema_id
            + ":\n"
            + "\n".join(f"  {list(e.absolute_path)}: {e.message}" for e in errors[:10])
        )


BUSINESS_PROFILE = "https://ucp.dev/schemas/discovery/profile.json#/$defs/business_profile"
CHECKOUT = "https://ucp.dev/schemas/shopping/checkout.json"
ERROR_RESPONSE = "https://ucp.dev/schemas/shopping/types/error_response.json"
