"""An external identity provider's JWT access tokens on /mcp (MCP_CHECKOUT_OAUTH_JWT_ISSUER / _JWKS_URL).

The provider is played by this test: an RSA key pair, tokens signed with PyJWT, and its JWKS served over real
HTTP on a local port (the server fetches it like any JWKS). A real MCP client calls tools with the tokens
through the HTTP app `serve --http` runs (hosting.build_http_app), driven in process through an ASGI transport.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
import jwt
import pytest
from conftest import seed_catalog
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette

from mcp_checkout.config import Settings
from mcp_checkout.hosting import build_http_app
from mcp_checkout.service.container import build_services
from mcp_checkout.tools import jwt_tokens
from tests.support import error_body, json_server, tool_data

ISSUER = "https://idp.example.test/"
HOST = "127.0.0.1:8000"  # the app is built for it; the transport is in-process
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@dataclass
class Provider:
    """The identity provider: signing keys by kid, and the JWKS it publishes (what ``published`` names)."""

    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    fetches: int = 0
    url: str = ""

    def add_key(self, kid: str, *, publish: bool = True) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if publish:
            self.published.append(kid)

    def jwks(self) -> dict[str, Any]:
        documents = []
        for kid in self.published:
            document = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key()))
            documents.append({**document, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": documents}

    def token(self, audience: str, *, kid: str = "k1", **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": audience, "sub": "user-42", "iat": now, "exp": now + 300, "scope": "buyer"}
        return jwt.encode({**body, **claims}, self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture
def provider() -> Iterator[Provider]:
    idp = Provider()
    idp.add_key("k1")

    def keys(path: str) -> object:
        idp.fetches += 1
        return idp.jwks()

    with json_server(keys) as base:
        idp.url = f"{base}/.well-known/jwks.json"
        yield idp


@asynccontextmanager
async def shop(settings: Settings, provider: Provider) -> AsyncIterator[tuple[Starlette, str]]:
    configured = settings.model_copy(update={"oauth_jwt_issuer": ISSUER, "oauth_jwt_jwks_url": provider.url})
    services = build_services(configured)
    try:
        await seed_catalog(services)
    finally:
        await services.close()
    app = build_http_app(configured, "127.0.0.1", 8000)
    async with app.router.lifespan_context(app):
        yield app, f"{configured.resolved_public_base_url()}/mcp"


def client(app: Starlette, token: str) -> Any:
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app), headers={"Authorization": f"Bearer {token}"})
    return Client(streamable_http_client(f"http://{HOST}/mcp", http_client=http), mode="legacy")


async def status_of(app: Starlette, token: str) -> int:
    """The HTTP status /mcp answers an initialize request carrying ``token``."""
    initialize = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }  # fmt: skip
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app)) as http:
        response = await http.post(
            f"http://{HOST}/mcp",
            json=initialize,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"},
        )
    return response.status_code


def hs256(claims: dict[str, Any], secret: bytes) -> str:
    """An HS256 token signed with ``secret`` (built by hand: PyJWT rightly refuses a public key as HMAC secret)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing = (
        part(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode()) + "." + part(json.dumps(claims).encode())
    )
    return signing + "." + part(hmac.new(secret, signing.encode(), hashlib.sha256).digest())


@SQLITE_ONLY
async def test_a_client_with_the_providers_token_calls_tools_as_the_scope_allows(
    settings: Settings, provider: Provider
) -> None:
    async with shop(settings, provider) as (app, audience):
        async with client(app, provider.token(audience)) as buyer:
            hits = tool_data(await buyer.call_tool("search_catalog", {"query": "mug"}))
            assert hits["items"]
            refused = await buyer.call_tool("list_orders", {})
            assert refused.is_error and error_body(refused)["code"] == "forbidden"
            order = tool_data(
                await buyer.call_tool(
                    "create_order", {"idempotency_key": "idp-1", "items": [{"sku": "MUG-01", "quantity": 1}]}
                )
            )
        async with client(app, provider.token(audience, sub="ops-1", scope="openid merchant")) as merchant:
            listed = tool_data(await merchant.call_tool("list_orders", {}))
        assert order["order_id"] in {row["order_id"] for row in listed["orders"]}
        assert order["created_by"]["principal_id"] == "idp:user-42"


@SQLITE_ONLY
async def test_tokens_the_provider_did_not_issue_for_this_server_are_refused(
    settings: Settings, provider: Provider
) -> None:
    provider.add_key("stranger", publish=False)
    async with shop(settings, provider) as (app, audience):
        now = int(time.time())
        public_pem = provider.keys["k1"].public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        refused = {
            "another audience": provider.token("https://other.example.test/mcp"),
            "another issuer": provider.token(audience, iss="https://evil.example.test/"),
            "expired": provider.token(audience, exp=now - 120, iat=now - 600),
            "no usable scope": provider.token(audience, scope="openid profile"),
            "a key it does not publish": provider.token(audience, kid="stranger"),
            "the public key as an HMAC secret": hs256(
                {"iss": ISSUER, "aud": audience, "sub": "x", "exp": now + 300, "scope": "merchant"}, public_pem
            ),
            "garbage": "a.b.c",
        }
        assert {reason: await status_of(app, token) for reason, token in refused.items()} == dict.fromkeys(refused, 401)
        assert await status_of(app, provider.token(audience)) == 200


@SQLITE_ONLY
async def test_a_rotated_signing_key_is_fetched_when_a_token_names_it(
    settings: Settings, provider: Provider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jwt_tokens, "REFETCH_SECONDS", 0.0)
    async with shop(settings, provider) as (app, audience):
        assert await status_of(app, provider.token(audience)) == 200
        provider.add_key("k2")
        fetches = provider.fetches
        assert await status_of(app, provider.token(audience, kid="k2")) == 200
        assert provider.fetches == fetches + 1
        assert await status_of(app, provider.token(audience)) == 200  # k1 still published, no new fetch
        assert provider.fetches == fetches + 1


@SQLITE_ONLY
async def test_the_protected_resource_metadata_names_the_provider(settings: Settings, provider: Provider) -> None:
    async with (
        shop(settings, provider) as (app, audience),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app)) as http,
    ):
        metadata = (await http.get(f"http://{HOST}/.well-known/oauth-protected-resource/mcp")).json()
    assert metadata["resource"] == audience
    assert ISSUER in metadata["authorization_servers"]


def test_the_issuer_needs_its_keys(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="go together"):
        Settings(data_dir=tmp_path, oauth_jwt_issuer=ISSUER)
