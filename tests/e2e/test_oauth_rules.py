"""OAuth 2.1 rules at the HTTP surface of a real `serve --http`: discovery documents that lead somewhere,
bounded registration, PKCE S256 only, no redirects to unregistered URIs, single-use codes, rotating refresh
tokens whose reuse revokes the family, a CSRF-protected consent page the merchant must sign in to, and
static API keys beside OAuth tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from tests.e2e.oauth_flow import REDIRECT, Flow, hidden, mcp_status, query_of
from tests.e2e.servers import Server, create_keys, running, server_env
from tests.support import tool_data

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str], str, str]]:
    root = tmp_path_factory.mktemp("oauth")
    env = server_env({"MCP_CHECKOUT_DATA_DIR": str(root / "data")})
    buyer, merchant = create_keys(env, ("agent", "buyer"), ("ops", "merchant"))
    with running(env, root / "logs", 1) as servers:
        yield servers[0], env, buyer, merchant


@pytest.fixture
def flow(served: tuple[Server, dict[str, str], str, str]) -> Flow:
    server, env, _buyer, _merchant = served
    flow = Flow(server, env)
    assert flow.register().status_code == 201
    return flow


def test_the_401_challenge_leads_to_metadata_and_a_working_authorization_server(served: tuple[Server, ...]) -> None:
    server = served[0]
    challenge = httpx.post(f"{server.base}/mcp", json={}, timeout=30)
    assert challenge.status_code == 401
    metadata_url = challenge.headers["www-authenticate"].split('resource_metadata="')[1].split('"')[0]
    for url in (metadata_url, f"{server.base}/.well-known/oauth-protected-resource"):
        resource = httpx.get(url, timeout=30).json()
        assert resource["resource"] == f"{server.base}/mcp"
        assert resource["scopes_supported"] == ["buyer", "merchant"]
    issuer = resource["authorization_servers"][0].rstrip("/")
    authorization = httpx.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=30)
    assert authorization.status_code == 200  # it answered 404 before this server had an authorization server
    document = authorization.json()
    assert document["code_challenge_methods_supported"] == ["S256"]
    for endpoint in ("authorization_endpoint", "token_endpoint", "registration_endpoint", "revocation_endpoint"):
        assert document[endpoint].startswith(server.base + "/")


def test_registration_accepts_https_and_loopback_only(served: tuple[Server, dict[str, str], str, str]) -> None:
    server, env = served[0], served[1]
    flow = Flow(server, env)
    for refused in ("http://shop.example/cb", "javascript:alert(1)", "http://10.0.0.5/cb", "https://a.example/cb#x"):
        answer = flow.register([refused])
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_redirect_uri", refused
    for accepted in ("https://claude.ai/api/mcp/auth_callback", "http://localhost:6274/cb", "http://[::1]:9/cb"):
        assert flow.register([accepted]).status_code == 201, accepted


def test_plain_pkce_is_refused_with_an_error_redirect(flow: Flow) -> None:
    answer = flow.authorize(code_challenge_method="plain", code_challenge="x" * 43)
    assert answer.status_code == 302
    assert answer.headers["location"].startswith(REDIRECT + "?")
    error = query_of(answer.headers["location"])
    assert error["error"] == "invalid_request" and error["state"] == flow.state and "code" not in error


def test_an_unregistered_redirect_uri_gets_an_error_page_not_a_redirect(flow: Flow) -> None:
    answer = flow.authorize(redirect_uri="https://attacker.example/steal")
    assert answer.status_code == 400 and "location" not in answer.headers
    assert answer.json()["error"] == "invalid_request"


def test_pkce_mismatch_wrong_redirect_and_a_reused_code_are_refused(flow: Flow) -> None:
    code = flow.code()
    wrong_verifier = flow.exchange(code, code_verifier="a" * 64)
    assert wrong_verifier.status_code == 400 and wrong_verifier.json()["error"] == "invalid_grant"
    wrong_redirect = flow.exchange(code, redirect_uri="http://127.0.0.1:33418/other")
    assert wrong_redirect.status_code == 400 and wrong_redirect.json()["error"] == "invalid_request"
    first = flow.exchange(code)
    assert first.status_code == 200, first.text
    access = first.json()["access_token"]
    assert mcp_status(flow.server, access) == 200
    again = flow.exchange(code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert mcp_status(flow.server, access) == 401  # a replayed code revokes what it was exchanged for


def test_a_reused_refresh_token_revokes_the_whole_family(flow: Flow) -> None:
    tokens = flow.tokens()
    rotated = flow.refresh(tokens["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    fresh = rotated.json()
    assert fresh["refresh_token"] != tokens["refresh_token"] and mcp_status(flow.server, fresh["access_token"]) == 200
    replayed = flow.refresh(tokens["refresh_token"])
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    assert mcp_status(flow.server, fresh["access_token"]) == 401
    assert flow.refresh(fresh["refresh_token"]).json()["error"] == "invalid_grant"


def test_revoking_a_refresh_token_cuts_off_its_access_token(flow: Flow) -> None:
    tokens = flow.tokens()
    revoked = httpx.post(
        f"{flow.server.base}/revoke", data={"client_id": flow.client_id, "token": tokens["refresh_token"]}, timeout=30
    )
    assert revoked.status_code == 200
    assert mcp_status(flow.server, tokens["access_token"]) == 401


def test_the_consent_page_needs_the_merchant_and_its_own_form(
    flow: Flow, served: tuple[Server, dict[str, str], str, str]
) -> None:
    _server, _env, buyer_key, merchant_key = served
    with httpx.Client(timeout=30) as browser:
        page = flow.consent_page(browser)
        assert "negative-test client" in page.text and REDIRECT in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        for wrong in ("not-a-code", buyer_key, "mcpap_" + "A" * 43):
            refused = flow.answer(browser, page, credential=wrong, decision="approve")
            assert refused.status_code == 403 and "location" not in refused.headers
            assert 'data-testid="error"' in refused.text
        forged = browser.post(
            f"{flow.server.base}/oauth/consent",
            data={"request": hidden(page.text, "request"), "csrf": "forged", "credential": merchant_key},
        )
        assert forged.status_code == 403 and "location" not in forged.headers
        approved = flow.answer(browser, page, credential=merchant_key, decision="approve")
        assert approved.status_code == 303 and "code" in query_of(approved.headers["location"])
        twice = flow.answer(browser, page, credential=merchant_key, decision="approve")
        assert twice.status_code == 404 and "location" not in twice.headers


def test_declining_sends_access_denied_to_the_registered_redirect(flow: Flow) -> None:
    with httpx.Client(timeout=30) as browser:
        page = flow.consent_page(browser)
        declined = flow.answer(browser, page, decision="deny")
    assert declined.status_code == 303 and declined.headers["location"].startswith(REDIRECT + "?")
    assert query_of(declined.headers["location"]) == {
        "error": "access_denied",
        "error_description": "The merchant declined this connection.",
        "state": flow.state,
    }


async def test_static_api_keys_keep_working_beside_oauth_and_approvals_are_audited(
    served: tuple[Server, dict[str, str], str, str], flow: Flow
) -> None:
    server, _env, buyer_key, merchant_key = served
    await anyio.to_thread.run_sync(flow.code)  # approved with a one-time code from the CLI
    async with server.client(merchant_key) as client:
        tool_data(await client.call_tool("list_orders", {}))
        audited = tool_data(await client.call_tool("list_audit_events", {"action": "oauth_client.approve"}))
        mine = [event for event in audited["events"] if event["target"] == flow.client_id]
        assert mine and mine[0]["actor"] == "operator" and mine[0]["after"]["scope"] == "buyer merchant"
    async with server.client(buyer_key) as client:
        tool_data(await client.call_tool("search_catalog", {"query": "mug"}))


def test_auto_approval_of_buyer_clients_and_the_registration_cap(tmp_path: Path) -> None:
    env = server_env(
        {
            "MCP_CHECKOUT_DATA_DIR": str(tmp_path / "data"),
            "MCP_CHECKOUT_OAUTH_AUTO_APPROVE_BUYER": "true",
            "MCP_CHECKOUT_OAUTH_REGISTRATIONS_PER_HOUR": "2",
        }
    )
    with running(env, tmp_path / "logs", 1) as servers:
        flow = Flow(servers[0], env)
        assert flow.register().status_code == 201
        buyer = flow.authorize("buyer")
        assert buyer.status_code == 302 and buyer.headers["location"].startswith(REDIRECT + "?code=")
        token = flow.exchange(query_of(buyer.headers["location"])["code"])
        assert token.status_code == 200 and token.json()["scope"] == "buyer"
        merchant = flow.authorize("buyer merchant")
        assert merchant.status_code == 302 and "/oauth/consent?request=" in merchant.headers["location"]
        assert Flow(servers[0], env).register().status_code == 201
        capped = Flow(servers[0], env).register()
        assert capped.status_code == 429 and capped.headers["retry-after"]
