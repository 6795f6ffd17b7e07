"""OAuth 2.1 end to end with the MCP Python SDK's own client-side OAuth (``OAuthClientProvider``) against a
real `serve --http`: discovery → registration → the merchant's consent page (approved with a one-time code
from `mcp-checkout oauth approve`) → token → tool calls → refresh → revoke, on SQLite and on PostgreSQL
with two worker processes (every OAuth state lives in the database)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from tests.e2e.oauth_flow import REDIRECT, hidden, mcp_status
from tests.e2e.servers import Server, cli, running, server_env
from tests.support import error_code, postgres_database, tool_data

pytestmark = pytest.mark.timeout(300)


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Merchant:
    """Plays the merchant at the consent page: follows the authorization URL, reads the page, posts the
    approval form with a fresh one-time code, and hands the redirect's code back to the client."""

    def __init__(self, env: dict[str, str], *, buyer_only: bool = False) -> None:
        self.env = env
        self.buyer_only = buyer_only
        self.result: AuthorizationCodeResult | None = None
        self.pages: list[str] = []

    def approve(self, authorization_url: str) -> AuthorizationCodeResult:
        with httpx.Client(follow_redirects=True, timeout=30) as browser:
            page = browser.get(authorization_url)
            assert page.status_code == 200, page.text[:2000]
            self.pages.append(page.text)
            code = cli(self.env, "oauth", "approve").stdout.strip()
            form = {
                "request": hidden(page.text, "request"),
                "csrf": hidden(page.text, "csrf"),
                "credential": code,
                "decision": "approve",
            }
            if self.buyer_only:
                form["buyer_only"] = "1"
            answer = browser.post(str(page.url.join("/oauth/consent")), data=form, follow_redirects=False)
        assert answer.status_code == 303, answer.text[:2000]
        location = answer.headers["location"]
        assert location.startswith(REDIRECT + "?")
        query = parse_qs(urlsplit(location).query)
        return AuthorizationCodeResult(code=query["code"][0], state=query["state"][0])

    async def redirect_handler(self, url: str) -> None:
        self.result = await anyio.to_thread.run_sync(self.approve, url)

    async def callback_handler(self) -> AuthorizationCodeResult:
        assert self.result is not None
        return self.result


def oauth_provider(server: Server, merchant: Merchant, storage: MemoryStorage) -> OAuthClientProvider:
    return OAuthClientProvider(
        server_url=f"{server.base}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="pytest python-sdk client",
            redirect_uris=[REDIRECT],  # type: ignore[list-item]
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=merchant.redirect_handler,
        callback_handler=merchant.callback_handler,
    )


def oauth_client(server: Server, provider: OAuthClientProvider) -> Client:
    http = httpx2.AsyncClient(auth=provider, timeout=60)
    return Client(streamable_http_client(f"{server.base}/mcp", http_client=http), mode="legacy")


@pytest.fixture(params=["sqlite", "postgresql-2-workers"])
def oauth_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, dict[str, str]]]:
    env = server_env({"MCP_CHECKOUT_DATA_DIR": str(tmp_path / "data")})
    if request.param == "sqlite":
        with running(env, tmp_path / "logs", 1) as servers:
            yield servers[0], env
        return
    with postgres_database("mcp_checkout_oauth") as url:
        env["MCP_CHECKOUT_DATABASE_URL"] = url
        with running(env, tmp_path / "logs", 1, "--workers", "2") as servers:
            yield servers[0], env


async def test_python_sdk_client_connects_with_oauth_refreshes_and_is_cut_off_by_revoke(
    oauth_server: tuple[Server, dict[str, str]],
) -> None:
    server, env = oauth_server
    merchant, storage = Merchant(env), MemoryStorage()
    provider = oauth_provider(server, merchant, storage)

    async with oauth_client(server, provider) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"search_catalog", "list_orders"} <= tools  # merchant scope: the merchant tools are listed
        tool_data(await client.call_tool("search_catalog", {"query": "mug"}))
        tool_data(await client.call_tool("list_orders", {}))
        page = merchant.pages[0]
        assert "pytest python-sdk client" in page and REDIRECT in page and "merchant" in page
        first = storage.tokens
        assert first is not None and first.refresh_token and first.access_token.startswith("mcpat_")
        assert first.scope == "buyer merchant" and first.expires_in == 3600

        provider.context.token_expiry_time = time.time() - 1  # the client believes its access token ran out
        tool_data(await client.call_tool("search_catalog", {"query": "mug"}))
        second = storage.tokens
        assert second is not None and second.refresh_token
        assert second.access_token != first.access_token and second.refresh_token != first.refresh_token
        assert len(merchant.pages) == 1  # refreshed, not authorized again

    assert storage.client is not None
    revoked = httpx.post(
        f"{server.base}/revoke",
        data={"token": second.access_token, "client_id": storage.client.client_id},
        timeout=30,
    )
    assert revoked.status_code == 200
    assert mcp_status(server, second.access_token) == 401
    refreshed = httpx.post(
        f"{server.base}/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": second.refresh_token,
            "client_id": storage.client.client_id,
        },
        timeout=30,
    )
    assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"  # the family went too


async def test_buyer_only_grant_cannot_call_merchant_tools(tmp_path: Path) -> None:
    env = server_env({"MCP_CHECKOUT_DATA_DIR": str(tmp_path / "data")})
    with running(env, tmp_path / "logs", 1) as servers:
        server = servers[0]
        merchant, storage = Merchant(env, buyer_only=True), MemoryStorage()
        async with oauth_client(server, oauth_provider(server, merchant, storage)) as client:
            tools = {tool.name for tool in (await client.list_tools()).tools}
            assert "search_catalog" in tools and "list_orders" not in tools
            refused = await client.call_tool("list_orders", {})
            assert error_code(refused) == "forbidden"
            tool_data(await client.call_tool("search_catalog", {"query": "mug"}))
        assert storage.tokens is not None and storage.tokens.scope == "buyer"
