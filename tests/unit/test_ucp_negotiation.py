"""UCP negotiation: the UCP-Agent header names the platform's profile; the profile's protocol version
must be one this server speaks; each failure is the spec's code and HTTP status."""

from __future__ import annotations

import json

import httpx
import pytest

from mcp_checkout.ucp import spec
from mcp_checkout.ucp.negotiation import (
    Incompatible,
    ProfileResolver,
    UcpProblem,
    agent_profile_url,
    check_version,
    intersect,
    require_capability,
)

PROFILE = "https://agent.example/.well-known/ucp"


@pytest.mark.parametrize(
    "header",
    [None, "", "profile=https://agent.example/p", 'profile="ftp://agent.example/p"', 'profile="/relative"', "{{{"],
)
def test_a_missing_or_malformed_ucp_agent_header_is_invalid_profile_url(header: str | None) -> None:
    with pytest.raises(UcpProblem) as refused:
        agent_profile_url(header, allow_http=False)
    assert (refused.value.status, refused.value.code) == (400, "invalid_profile_url")


def test_the_profile_url_is_read_from_an_rfc8941_dictionary() -> None:
    assert agent_profile_url(f'profile="{PROFILE}", other=1', allow_http=False) == PROFILE


def test_plain_http_profiles_are_refused_unless_allowed() -> None:
    with pytest.raises(UcpProblem):
        agent_profile_url('profile="http://127.0.0.1:9/ucp"', allow_http=False)
    assert agent_profile_url('profile="http://127.0.0.1:9/ucp"', allow_http=True) == "http://127.0.0.1:9/ucp"


def _resolver(handler: httpx.MockTransport) -> ProfileResolver:
    return ProfileResolver(transport=handler, max_bytes=10_000)


async def test_the_platform_version_comes_from_its_profile_and_is_cached() -> None:
    fetched: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return httpx.Response(200, json={"ucp": {"version": "2026-04-08", "services": {}}})

    resolver = _resolver(httpx.MockTransport(answer))
    assert await resolver.version(PROFILE) == "2026-04-08"
    assert await resolver.version(PROFILE) == "2026-04-08"
    assert fetched == [PROFILE]


@pytest.mark.parametrize(
    ("response", "status", "code"),
    [
        (httpx.Response(404), 424, "profile_unreachable"),
        (httpx.Response(302, headers={"Location": "https://elsewhere.example/ucp"}), 424, "profile_unreachable"),
        (httpx.Response(200, content=b"not json"), 422, "profile_malformed"),
        (httpx.Response(200, json={"ucp": {"version": "latest"}}), 422, "profile_malformed"),
        (httpx.Response(200, json={"no": "ucp"}), 422, "profile_malformed"),
        (httpx.Response(200, content=json.dumps({"ucp": {"version": "2026-04-08"}, "pad": "x" * 20_000}).encode()),
         422, "profile_malformed"),
    ],
)  # fmt: skip
async def test_profile_failures_are_the_specs_discovery_errors(
    response: httpx.Response, status: int, code: str
) -> None:
    resolver = _resolver(httpx.MockTransport(lambda _request: response))
    with pytest.raises(UcpProblem) as refused:
        await resolver.version(PROFILE)
    assert (refused.value.status, refused.value.code) == (status, code)


async def test_an_unreachable_profile_host_is_profile_unreachable() -> None:
    resolver = ProfileResolver(timeout_seconds=2)
    with pytest.raises(UcpProblem) as refused:
        await resolver.version("http://127.0.0.1:9/.well-known/ucp")  # discard port: nothing listens
    assert (refused.value.status, refused.value.code) == (424, "profile_unreachable")


def test_only_the_served_version_is_accepted() -> None:
    check_version(spec.VERSION)
    with pytest.raises(UcpProblem) as refused:
        check_version("2026-01-11")
    assert (refused.value.status, refused.value.code) == (422, "version_unsupported")
    assert "2026-04-08" in refused.value.content


# ---------------------------------------------------------------- the spec's intersection algorithm
CHECKOUT, FULFILLMENT, DISCOUNT = (
    "dev.ucp.shopping.checkout",
    "dev.ucp.shopping.fulfillment",
    "dev.ucp.shopping.discount",
)


def test_the_intersection_keeps_shared_capabilities_at_the_highest_shared_version() -> None:
    business = {
        CHECKOUT: [{"version": "2026-01-11"}, {"version": "2026-04-08"}],
        "dev.ucp.shopping.order": [{"version": "2026-04-08"}],
        "dev.ucp.shopping.catalog.search": [{"version": "2026-04-08"}],
    }
    platform = {
        CHECKOUT: [{"version": "2026-01-11"}, {"version": "2026-04-08"}, {"version": "2026-08-25"}],
        "dev.ucp.shopping.order": [{"version": "2026-01-11"}],  # no version in common: left out
        "com.example.loyalty": [{"version": "2026-04-08"}],  # not ours: left out
    }
    assert intersect(business, platform) == {CHECKOUT: {"version": "2026-04-08"}}


def test_extensions_whose_parents_are_gone_are_pruned_until_nothing_changes() -> None:
    business = {
        CHECKOUT: [{"version": "2026-04-08"}],
        "dev.ucp.shopping.cart": [{"version": "2026-04-08"}],
        FULFILLMENT: [{"version": "2026-04-08", "extends": CHECKOUT}],
        DISCOUNT: [{"version": "2026-04-08", "extends": [CHECKOUT, "dev.ucp.shopping.cart"]}],
        "com.example.gift_wrap": [{"version": "2026-04-08", "extends": FULFILLMENT}],  # transitive
    }
    everything = {name: [{"version": "2026-04-08"}] for name in business}
    assert set(intersect(business, everything)) == set(business)
    without_checkout = {k: v for k, v in everything.items() if k != CHECKOUT}
    # fulfillment goes with checkout, gift wrap with fulfillment; discount keeps its other parent (cart)
    assert intersect(business, without_checkout) == {
        "dev.ucp.shopping.cart": {"version": "2026-04-08"},
        DISCOUNT: {"version": "2026-04-08", "extends": [CHECKOUT, "dev.ucp.shopping.cart"]},
    }
    assert intersect(business, {}) == {}


def test_an_operation_whose_capability_was_not_negotiated_is_capabilities_incompatible() -> None:
    require_capability({CHECKOUT: {"version": "2026-04-08"}}, CHECKOUT)
    with pytest.raises(Incompatible) as failed:
        require_capability({}, CHECKOUT, "https://shop.test")
    assert CHECKOUT in failed.value.content and failed.value.continue_url == "https://shop.test"
