"""A UCP client this project did not write, against the real HTTP app: spck-conformance (PyPI, MIT; an
unofficial, capability-adaptive UCP conformance runner that speaks 2026-04-08 over REST and MCP). It reads
/.well-known/ucp, then drives discovery → catalog → create checkout → update → complete (the offline
handler `offline_test` with the token `success_token`) → get, plus its negative checks.

It sends no API key and names its own platform profile (https://spck.dev/agent): it talks through the
loopback proxy that adds this store's key (tests/e2e/auth_proxy.py), and that profile is served from memory
(no internet here; tests/e2e/ucp_server.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from auth_proxy import auth_proxy
from conftest import SMALL_CATALOG, seed_catalog
from ucp_server import served

from mcp_checkout.config import Settings
from mcp_checkout.domain import CatalogRow
from mcp_checkout.service.container import Services
from tests.pricing_rows import add_shipping_rate
from tests.support import free_port
from tests.ucp_client import platform_profile

RUNNER = Path(sys.executable).with_name("spck-conformance")
RUNNER_PROFILE = "https://spck.dev/agent"
# The runner's checkouts name a destination by country alone. That prices shipping options (rates are per
# country), but placing an order that ships needs a street: the runner, which never sends one, is run twice.
# Its lifecycle (create → complete → paid) runs on an item that needs no shipping; its fulfillment checks run
# on one that ships.
GIFT_CARD = CatalogRow("Gift Card", "GIFT-25", 2500, "USD", 100, "A gift card, sent by email.", requires_shipping=False)
SHIPPED = "SOCK-M-GRY"


# Checks that drive the journey and must pass: discovery, catalog, create → update → get, complete with
# `success_token` (payment.no_credential_echo completes and reads the answer), complete without a
# credential → requires_escalation with continue_url (our checkout page), cancel, idempotency, MCP.
LIFECYCLE = (
    "discovery.version", "discovery.rest_endpoint", "checkout.create_valid", "checkout.update",
    "checkout.retrieve", "checkout.response_fields", "payment.no_credential_echo",
    "payment.escalation_continue_url", "checkout.escalation_continue_url", "checkout.escalation_buyer_message",
    "checkout.cancel", "idempotency.conflict_409", "checkout.idempotency_conflict",
    "signature.idempotency_replay_cached", "checkout.protocol_error_shape", "checkout.unavailable_all_error_envelope",
    "payment.handler_id_validated", "catalog.search_shape", "catalog.lookup_by_variant",
    "catalog.getproduct_not_found", "mcp.checkout_via_tools_call", "mcp.catalog_search", "mcp.error_conformance",
    "response.capabilities_relevant", "discovery.profile_cache_control",
)  # fmt: skip
# A country alone gets the shipping method, its destination and one group of priced options.
FULFILLMENT = ("fulfillment.method_shape", "fulfillment.option_shape", "fulfillment.single_group_default")
# What the runner reports as deviations in both runs, and why (README, "Universal Commerce Protocol").
KNOWN = {
    # It wants a 4xx body with `messages`/`detail`/`error`; the spec's protocol error is {code, content}
    # (overview.md, Error Handling), which is what we answer for a search without query or filters.
    "catalog.search_requires_input": "protocol error shape",
    # The test server is plain http on loopback; behind TLS continue_url is https.
    "checkout.escalation_continue_url_https": "http in the test",
}
# Only in the lifecycle run: an item that does not ship has no shipping options to show.
KNOWN_LIFECYCLE = {**KNOWN, "fulfillment.option_shape": "nothing ships"}
# Only in the fulfillment run: its checkouts stay `incomplete` (a street, city, postal code and name are
# missing), so it cannot complete them; the lifecycle run covers completion.
KNOWN_SHIPPED = {
    **KNOWN,
    **dict.fromkeys(
        ("checkout.complete_order", "checkout.completed_immutable", "checkout.escalation_buyer_message",
         "checkout.escalation_continue_url", "payment.escalation_continue_url", "payment.no_credential_echo",
         "checkout.requires_star_implies_escalation", "order.entity_shape", "order.line_item_shape",
         "mcp.get_order_tool"),
        "a country alone cannot be placed",
    ),
}  # fmt: skip


def _payment(token: str) -> dict[str, Any]:
    instrument = {"id": "instr_1", "handler_id": "offline_test", "type": "offline_test",
                  "credential": {"type": "token", "token": token}}  # fmt: skip
    return {"payment": {"instruments": [instrument]}}


def _run(settings: Settings, key: str, product: str, workdir: Path) -> dict[str, Any]:
    """The runner's JSON report for a run whose checkouts buy ``product``."""
    config = workdir / f"merchant-{product}.json"
    config.write_text(json.dumps({
        "product_id": product,
        "currency": "USD",
        "out_of_stock_id": "SOCK-L-GRY",
        "complete_payment": _payment("success_token"),
        "fail_payment": _payment("decline_token"),
        "catalog": {"variant_id": product},
        "fulfillment_option_id": "standard",
        "payment": {"escalation_payment": {"payment": {"instruments": []}}},  # no credential: the buyer pays on our page
    }))  # fmt: skip
    proxy_port = free_port()
    public = f"http://127.0.0.1:{proxy_port}"
    with (
        served(settings, {RUNNER_PROFILE: platform_profile()}, public_base_url=public) as base,
        auth_proxy(base, f"Bearer {key}", port=proxy_port),
    ):
        run = subprocess.run(
            [str(RUNNER), "--server", public, "--config", str(config), "--json"],
            capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip
    assert run.stdout, run.stderr[-3000:]
    (workdir / f"report-{product}.json").write_text(run.stdout)  # the whole report, for a failing run
    report: dict[str, Any] = json.loads(run.stdout)
    assert report["spec_version"] == "2026-04-08" and report["support"] == "supported", report["banner"]
    return report


def _check(report: dict[str, Any], must_pass: set[str], known: dict[str, str]) -> None:
    statuses = {check["id"]: check["status"] for check in report["checks"]}
    observed = {check["id"]: check["observed"] for check in report["checks"] if check["status"] == "deviation"}
    assert {c: statuses.get(c) for c in must_pass if statuses.get(c) != "clean-pass"} == {}, observed
    # Every deviation is one we know and explain; one that goes away must leave the list too.
    assert set(observed) == set(known), {c: observed.get(c) for c in set(observed) ^ set(known)}


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_an_independent_ucp_client_runs_the_checkout_lifecycle(
    settings: Settings, seeded: Services, tmp_path: Path
) -> None:
    key = (await seeded.access.create_key("platform", "buyer")).key
    await seeded.db.write(lambda conn: add_shipping_rate(conn, "standard", 500, ("US",), min_days=2, max_days=5))
    await seed_catalog(seeded, [*SMALL_CATALOG, GIFT_CARD])

    lifecycle = _run(settings, key, GIFT_CARD.sku, tmp_path)
    must_pass = set(LIFECYCLE)
    if "dev.ucp.shopping.order" in lifecycle["capabilities"]:  # the runner completes with an order only then
        must_pass |= {"checkout.complete_order", "checkout.completed_immutable"}
    _check(lifecycle, must_pass, KNOWN_LIFECYCLE)

    # Before the quote destination, a country alone kept no destination: no method, group or options.
    shipped = _run(settings, key, SHIPPED, tmp_path)
    _check(shipped, set(FULFILLMENT) | {"checkout.create_valid", "checkout.update", "checkout.retrieve"}, KNOWN_SHIPPED)
