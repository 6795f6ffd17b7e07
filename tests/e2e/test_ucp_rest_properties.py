"""Property-based testing of the UCP REST binding from the spec's own OpenAPI document
(tests/fixtures/ucp/2026-04-08/source/services/shopping/rest.openapi.json, pinned with its license), with
schemathesis, against the real HTTP app over real HTTP (tests/e2e/ucp_server.py).

Every operation the document declares whose capability our discovery profile declares is exercised with
schema-conforming (positive) and schema-violating (negative) requests, a bounded number of each. For every
answer: no 5xx; a 2xx body conforms to the spec's response schema (schemathesis' own check) and to the
pinned schemas and the ucp-sdk models (tests/ucp_client.conforms); every refusal (4xx) is the spec's
protocol error ``{"code", "content"}`` or its error envelope. Requests carry this store's API key and a
valid ``UCP-Agent`` (else nearly all would stop at authentication); the path ``id`` is a real checkout
for half the examples and a generated string for the rest.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.errors import InvalidSchema
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance
from ucp_server import served

from mcp_checkout.config import Settings
from mcp_checkout.service.container import Services
from tests.ucp_client import PLATFORM_PROFILE, conforms, platform_profile

OPENAPI = (
    Path(__file__).parents[1]
    / "fixtures"
    / "ucp"
    / "2026-04-08"
    / "source"
    / "services"
    / "shopping"
    / "rest.openapi.json"
)
# Examples per operation and generation mode. A request body of the checkout operations is the spec's whole
# checkout schema, which takes hypothesis about a second per example on a loaded 2-core machine: fewer.
EXAMPLES = int(os.environ.get("UCP_PROPERTY_EXAMPLES", "15"))
CHECKOUT_BODY_EXAMPLES = int(os.environ.get("UCP_PROPERTY_CHECKOUT_BODY_EXAMPLES", "5"))
CHECKOUT_BODIES = {
    ("post", "/checkout-sessions"),
    ("put", "/checkout-sessions/{id}"),
    ("post", "/checkout-sessions/{id}/complete"),
}
# Which declared capability makes an operation ours to answer (the others: not declared, not tested here).
CAPABILITY_OF = {
    "/checkout-sessions": "dev.ucp.shopping.checkout",
    "/catalog/search": "dev.ucp.shopping.catalog.search",
    "/catalog/lookup": "dev.ucp.shopping.catalog.lookup",
    "/catalog/product": "dev.ucp.shopping.catalog.lookup",
    "/carts": "dev.ucp.shopping.cart",
    "/orders": "dev.ucp.shopping.order",
}


def _capability(path: str) -> str:
    return next(cap for prefix, cap in CAPABILITY_OF.items() if path.startswith(prefix))


@pytest.mark.timeout(600)  # ~50 s of CPU; wall time grows with the machine's load
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_every_declared_operation_answers_as_the_openapi_document_says(
    settings: Settings, seeded: Services
) -> None:
    key = (await seeded.access.create_key("platform", "buyer")).key
    with served(settings, {PLATFORM_PROFILE: platform_profile()}) as base:
        headers = {"X-API-Key": key, "UCP-Agent": f'profile="{PLATFORM_PROFILE}"'}
        async with httpx.AsyncClient(base_url=base, timeout=30) as web:
            profile = (await web.get("/.well-known/ucp")).json()["ucp"]
            [endpoint] = [s["endpoint"] for s in profile["services"]["dev.ucp.shopping"] if s["transport"] == "rest"]
            checkouts = []
            for sku in ("MUG-01", "SOCK-M-GRY", "MUG-02"):
                created = await web.post(
                    f"{endpoint}/checkout-sessions",
                    json={"line_items": [{"item": {"id": sku}, "quantity": 1}]},
                    headers={**headers, "Idempotency-Key": f"00000000-0000-4000-8000-00000000000{len(checkouts)}"},
                )
                checkouts.append(conforms(created)["id"])
        declared = set(profile["capabilities"])
        schema = schemathesis.openapi.from_path(OPENAPI)
        operations = [
            result.ok() for result in schema.get_all_operations() if _capability(result.ok().path) in declared
        ]
        assert {op.path for op in operations} >= {
            "/checkout-sessions", "/checkout-sessions/{id}", "/checkout-sessions/{id}/complete",
            "/checkout-sessions/{id}/cancel", "/catalog/search", "/catalog/lookup", "/catalog/product",
        }  # fmt: skip
        failures: list[str] = []
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                started = time.monotonic()
                failures += _exercise(operation, mode, endpoint, headers, checkouts)
                print(f"{operation.method.upper()} {operation.path} {mode.value}: {time.monotonic() - started:.1f}s")
        assert not failures, "\n\n".join(failures[:10])


def _exercise(
    operation: Any, mode: GenerationMode, endpoint: str, headers: dict[str, str], checkouts: list[str]
) -> list[str]:
    """Run ``EXAMPLES`` generated requests of one operation; the failures, each with its reproduction."""
    failures: list[str] = []
    counter = iter(range(10**9))
    statuses: Counter[int] = Counter()

    heavy = (operation.method.lower(), operation.path) in CHECKOUT_BODIES

    @settings(
        max_examples=CHECKOUT_BODY_EXAMPLES if heavy else EXAMPLES,
        phases=[Phase.generate],  # failures are collected, not raised: nothing to shrink
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        case.headers = {**(case.headers or {}), **headers}
        if "id" in (case.path_parameters or {}) and next(counter) % 2 == 0:
            case.path_parameters["id"] = checkouts[len(str(case.path_parameters["id"])) % len(checkouts)]
        try:
            response = case.call(base_url=endpoint, timeout=30)
            statuses[response.status_code] += 1
        except Exception as exc:  # a request the client cannot even send (e.g. a header it cannot encode)
            if "header" in str(exc).lower() or "encode" in str(exc).lower():
                return
            raise
        try:
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance, content_type_conformance]
            )
            _refusal_or_conforming(response)
        except Exception as exc:
            failures.append(
                f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}\n"
                f"  request: {case.path_parameters} {json.dumps(case.body, default=str)[:500]}\n"
                f"  answer: {response.status_code} {response.text[:500]}"
            )

    try:
        run()
    except InvalidSchema as exc:  # schemathesis could not make one more negative request of this schema
        if mode is GenerationMode.POSITIVE:
            raise
        print(f"{operation.method.upper()} {operation.path} ({mode.value}): generation stopped: {exc}")
    print(f"{operation.method.upper()} {operation.path} {mode.value}: statuses {dict(sorted(statuses.items()))}")
    return failures


def _refusal_or_conforming(response: Any) -> None:
    """The answer through the suite's own shape check: a checkout, the error envelope, or (4xx) a protocol
    error ``{"code", "content"}``; catalog answers are checked by schemathesis against the spec."""
    body = json.loads(response.content)
    status = response.status_code
    assert isinstance(body, dict), body
    if status >= 400 and "ucp" not in body:
        assert {"code", "content"} <= set(body) <= {"code", "content", "continue_url"}, body
        assert isinstance(body["code"], str) and isinstance(body["content"], str), body
        return
    if ("id" in body and "line_items" in body) or ("ucp" in body and body["ucp"].get("status") == "error"):
        conforms(httpx.Response(status, content=response.content, headers={"content-type": "application/json"}))
