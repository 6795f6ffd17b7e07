"""Raw OAuth steps against a real `serve --http` (for the negative tests and the merchant's side of the
consent page): register, authorize, approve, exchange. Plain httpx, so every status code is visible."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.e2e.servers import Server, cli

REDIRECT = "http://127.0.0.1:33418/callback"


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no {name} field on the consent page:\n{html[:2000]}"
    return match.group(1)


def query_of(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def mcp_status(server: Server, token: str) -> int:
    """The HTTP status /mcp answers an initialize request carrying ``token``."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "probe", "version": "1"}},
    }  # fmt: skip
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}
    return httpx.post(f"{server.base}/mcp", json=body, headers=headers, timeout=30).status_code


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


@dataclass
class Flow:
    """One client's walk through the flow, step by step."""

    server: Server
    env: dict[str, str]
    client_id: str = ""
    verifier: str = ""
    state: str = ""

    def register(self, redirect_uris: list[str] | None = None, name: str = "negative-test client") -> httpx.Response:
        body = {
            "client_name": name,
            "redirect_uris": redirect_uris or [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
        answer = httpx.post(f"{self.server.base}/register", json=body, timeout=30)
        if answer.status_code == 201:
            self.client_id = answer.json()["client_id"]
        return answer

    def authorize(self, scope: str = "buyer merchant", **override: str) -> httpx.Response:
        self.verifier, challenge = pkce()
        self.state = secrets.token_urlsafe(16)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT,
            "state": self.state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "scope": scope,
            "resource": f"{self.server.base}/mcp",
        } | override
        return httpx.get(f"{self.server.base}/authorize", params=params, timeout=30)

    def consent_page(self, browser: httpx.Client, scope: str = "buyer merchant") -> httpx.Response:
        started = self.authorize(scope)
        assert started.status_code == 302, started.text
        page = browser.get(started.headers["location"])
        assert page.status_code == 200, page.text[:2000]
        return page

    def answer(self, browser: httpx.Client, page: httpx.Response, **form: str) -> httpx.Response:
        data = {"request": hidden(page.text, "request"), "csrf": hidden(page.text, "csrf")} | form
        return browser.post(f"{self.server.base}/oauth/consent", data=data)

    def code(self, scope: str = "buyer merchant") -> str:
        """Authorize and approve with a one-time code from the CLI; the code from the redirect."""
        with httpx.Client(timeout=30) as browser:
            page = self.consent_page(browser, scope)
            one_time = cli(self.env, "oauth", "approve").stdout.strip()
            approved = self.answer(browser, page, credential=one_time, decision="approve")
        assert approved.status_code == 303, approved.text[:2000]
        query = query_of(approved.headers["location"])
        assert query["state"] == self.state
        return query["code"]

    def token(self, **form: str) -> httpx.Response:
        return httpx.post(f"{self.server.base}/token", data={"client_id": self.client_id} | form, timeout=30)

    def exchange(self, code: str, **override: str) -> httpx.Response:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": self.verifier,
        }
        return self.token(**(form | override))

    def refresh(self, refresh_token: str) -> httpx.Response:
        return self.token(grant_type="refresh_token", refresh_token=refresh_token)

    def tokens(self) -> dict[str, Any]:
        answer = self.exchange(self.code())
        assert answer.status_code == 200, answer.text
        return dict(answer.json())
