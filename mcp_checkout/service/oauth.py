"""OAuth 2.1 for remote MCP clients: the rules of this server's own authorization server.

A client registers itself (RFC 7591), sends the merchant to the consent page with a PKCE S256 challenge,
and swaps the code it gets back for a short-lived access token and a refresh token. The merchant
approves on that page with a merchant API key or a one-time code from ``mcp-checkout oauth approve``;
clients asking only for ``buyer`` may be approved without the page when the merchant turns that on.

Every code and token is ``secrets.token_urlsafe(32)`` behind a short prefix; only its SHA-256 is stored
and it is compared in constant time. A refresh token is used once: the exchange retires it and issues a
new pair in the same *family*. Presenting a retired refresh token (or an authorization code a second
time) revokes the whole family, as RFC 9700 asks. Revoking any token of a family revokes all of it.
A token's scope maps to the same principals API keys have: ``merchant`` in the scope gives a merchant
principal, otherwise a buyer principal of that client.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, RowMapping

from mcp_checkout.domain import Clock, Principal, PrincipalKind
from mcp_checkout.errors import (
    NotFound,
    OAuthApprovalRefused,
    OAuthConsentNotFound,
    OAuthInvalidClientMetadata,
    OAuthInvalidGrant,
    RateLimited,
)
from mcp_checkout.service import audit
from mcp_checkout.service.access import AccessService
from mcp_checkout.service.secretbox import SecretBox
from mcp_checkout.store import oauth as oauth_store
from mcp_checkout.store.db import Database

log = logging.getLogger(__name__)

SCOPES: tuple[PrincipalKind, ...] = ("buyer", "merchant")
ACCESS_PREFIX = "mcpat_"
REFRESH_PREFIX = "mcprt_"
CODE_PREFIX = "mcpac_"
CONSENT_PREFIX = "mcpcr_"
APPROVAL_PREFIX = "mcpap_"
CODE_TTL = timedelta(minutes=5)
CONSENT_TTL = timedelta(minutes=15)
APPROVAL_TTL = timedelta(minutes=10)
MAX_REDIRECT_URIS = 5
_LOOPBACK_NAMES = {"localhost"}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def _same_hash(row: RowMapping | None, column: str, token: str) -> bool:
    """The row found by a token's hash really has that hash (a constant-time comparison)."""
    return row is not None and hmac.compare_digest(str(row[column]).encode(), _hash(token).encode())


def principal_for(client_id: str, scopes: Sequence[str]) -> Principal:
    """The principal a token of ``client_id`` with ``scopes`` acts as (ids fit the 24-char key columns)."""
    kind: PrincipalKind = "merchant" if "merchant" in scopes else "buyer"
    return Principal(id=f"oauth:{client_id.replace('-', '')[:18]}", kind=kind)


def check_redirect_uri(uri: str) -> None:
    """https anywhere; http only to this machine (loopback), as OAuth 2.1 §8.4.2 allows native apps."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
    except ValueError:
        raise OAuthInvalidClientMetadata(f"redirect URI {uri[:200]!r} is not a URL. Register an https URL.") from None
    if parts.fragment or not host or parts.username or parts.password:
        raise OAuthInvalidClientMetadata(
            f"redirect URI {uri[:200]!r} must be an absolute URL without fragment or credentials. Register another."
        )
    if parts.scheme == "https":
        return
    loopback = host in _LOOPBACK_NAMES
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if parts.scheme == "http" and loopback:
        return
    raise OAuthInvalidClientMetadata(
        f"redirect URI {uri[:200]!r} is refused: use https, or http only on 127.0.0.1 / [::1] / localhost."
    )


@dataclass(frozen=True)
class OAuthClient:
    client_id: str
    client_name: str
    registration: dict[str, Any]
    secret: str | None
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    redirect_uri_explicit: bool
    scopes: list[str]
    state: str | None
    code_challenge: str
    resource: str | None


@dataclass(frozen=True)
class Redirect:
    """Send the user agent to ``uri`` (a registered redirect URI) with these query parameters."""

    uri: str
    params: dict[str, str]


@dataclass(frozen=True)
class ConsentView:
    client_id: str
    client_name: str
    redirect_uri: str
    scopes: list[str]
    expires_at: datetime


@dataclass(frozen=True)
class CodeGrant:
    code: str
    client_id: str
    scopes: list[str]
    redirect_uri: str
    redirect_uri_explicit: bool
    code_challenge: str
    resource: str | None
    expires_at: datetime


@dataclass(frozen=True)
class TokenGrant:
    token: str
    kind: str
    client_id: str
    scopes: list[str]
    resource: str | None
    expires_at: datetime

    @property
    def principal(self) -> Principal:
        return principal_for(self.client_id, self.scopes)


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int
    scopes: list[str]


class OAuthService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        access: AccessService,
        secrets_box: SecretBox,
        resource_url: str,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
        auto_approve_buyer: bool,
        registrations_per_hour: int,
    ) -> None:
        self._db = db
        self._clock = clock
        self._access = access
        self._box = secrets_box
        self.resource_url = resource_url.rstrip("/")
        self._access_ttl = access_ttl
        self._refresh_ttl = refresh_ttl
        self._auto_approve_buyer = auto_approve_buyer
        self._per_hour = registrations_per_hour

    # ------------------------------------------------------------------ clients (RFC 7591)
    async def register_client(
        self, client_id: str, registration: dict[str, Any], client_secret: str | None
    ) -> OAuthClient:
        uris = [str(uri) for uri in registration.get("redirect_uris") or []]
        if not 1 <= len(uris) <= MAX_REDIRECT_URIS:
            raise OAuthInvalidClientMetadata(f"Register 1 to {MAX_REDIRECT_URIS} redirect URIs.")
        for uri in uris:
            check_redirect_uri(uri)
        for scope in str(registration.get("scope") or "").split():
            if scope not in SCOPES:
                raise OAuthInvalidClientMetadata(f"Unknown scope {scope[:40]!r}: ask for 'buyer' and/or 'merchant'.")
        name = str(registration.get("client_name") or "").strip()[:200] or "Unnamed MCP client"
        now = self._clock()
        sealed = self._box.seal(client_secret) if client_secret else None
        values = {
            "client_id": client_id,
            "client_name": name,
            "registration": registration,
            "secret_sealed": sealed,
            "created_at": now,
        }

        def run(conn: Connection) -> bool:
            if oauth_store.count_clients_since(conn, now - timedelta(hours=1)) >= self._per_hour:
                return False
            oauth_store.insert_client(conn, values)
            return True

        if not await self._db.write(run):
            raise RateLimited(
                f"This server accepts {self._per_hour} client registrations per hour and that many arrived. "
                "Try again later, or ask the merchant to raise MCP_CHECKOUT_OAUTH_REGISTRATIONS_PER_HOUR.",
                retry_after_seconds=600,
            )
        log.info("oauth client registered: %s (%r)", client_id, name)
        return OAuthClient(client_id, name, registration, client_secret, now, None)

    async def get_client(self, client_id: str) -> OAuthClient | None:
        row = await self._db.read(
            lambda conn: oauth_store.get_client(conn, client_id[:64]), quick=True, one_statement=True
        )
        if row is None or row["revoked_at"] is not None:
            return None
        secret = self._box.open(row["secret_sealed"]) if row["secret_sealed"] else None
        return OAuthClient(
            row["client_id"], row["client_name"], dict(row["registration"]), secret, row["created_at"], None
        )

    async def list_clients(self) -> list[OAuthClient]:
        rows = await self._db.read(oauth_store.list_clients)
        return [
            OAuthClient(r["client_id"], r["client_name"], dict(r["registration"]), None, r["created_at"],
                        r["revoked_at"])
            for r in rows
        ]  # fmt: skip

    async def revoke_client(self, client_id: str) -> None:
        """Revoke a client and every token it holds (the merchant's off switch)."""

        def run(conn: Connection) -> bool:
            if oauth_store.get_client(conn, client_id) is None:
                return False
            now = self._clock()
            oauth_store.revoke_client(conn, client_id, now)
            audit.record(conn, audit.OPERATOR, "oauth_client.revoke", client_id, at=now)
            return True

        if not await self._db.write(run):
            raise NotFound(f"No OAuth client {client_id[:64]!r}. `mcp-checkout oauth clients` lists them.")
        log.info("oauth client revoked: %s", client_id)

    # ------------------------------------------------------------------ authorization + consent
    def resource_matches(self, resource: str | None) -> bool:
        """RFC 8707: a client naming a resource must name this one (the /mcp endpoint)."""
        return resource is None or resource.rstrip("/") == self.resource_url

    async def begin(self, request: AuthorizationRequest) -> Redirect | str:
        """Start an authorization: a redirect with a code at once (auto-approved buyer clients), or the
        token of a pending consent the merchant answers on the consent page."""
        if self._auto_approve_buyer and request.scopes == ["buyer"]:
            code = await self._db.write(lambda conn: self._issue_code(conn, request, approver=None))
            log.info("oauth: buyer access auto-approved for client %s", request.client_id)
            return self._with_code(request, code)
        token = _new(CONSENT_PREFIX)
        values = {
            "request_hash": _hash(token),
            "client_id": request.client_id,
            "redirect_uri": request.redirect_uri,
            "redirect_uri_explicit": int(request.redirect_uri_explicit),
            "scope": " ".join(request.scopes),
            "state": request.state,
            "code_challenge": request.code_challenge,
            "resource": request.resource,
            "expires_at": self._clock() + CONSENT_TTL,
        }
        await self._db.write(lambda conn: oauth_store.insert_consent(conn, values))
        return token

    async def consent(self, request_token: str) -> ConsentView:
        request, row = await self._pending(request_token)
        client = await self.get_client(request.client_id)
        if client is None:
            raise OAuthConsentNotFound("This client was revoked. Start the connection again from your MCP client.")
        expires = row["expires_at"]
        return ConsentView(client.client_id, client.client_name, request.redirect_uri, request.scopes, expires)

    async def approve(self, request_token: str, credential: str, *, grant_merchant: bool = True) -> Redirect:
        """The merchant approves with a merchant API key or a one-time approval code."""
        request, _row = await self._pending(request_token)
        credential = credential.strip()
        by_key = credential.startswith("mcpk_")
        approver = audit.OPERATOR  # a one-time code comes from `mcp-checkout oauth approve`
        if by_key:
            principal = await self._access.authenticate(credential)
            approver = principal or approver
            if principal is None or principal.kind != "merchant":
                raise OAuthApprovalRefused(
                    "That is not a valid merchant API key. Paste a merchant key, or a one-time code from "
                    "`mcp-checkout oauth approve`."
                )
        scopes = request.scopes if grant_merchant else [s for s in request.scopes if s != "merchant"] or ["buyer"]
        granted = replace(request, scopes=scopes)
        now = self._clock()

        def run(conn: Connection) -> str | None:
            if not by_key and not oauth_store.use_approval_code(conn, _hash(credential), now):
                return None
            if not oauth_store.use_consent(conn, _hash(request_token), now):
                raise OAuthConsentNotFound(
                    "This approval request was already answered or has expired. Start again from your MCP client."
                )
            return self._issue_code(conn, granted, approver=approver)

        code = await self._db.write(run)
        if code is None:
            raise OAuthApprovalRefused(
                "That one-time code is unknown, used or expired. Run `mcp-checkout oauth approve` for a new one."
            )
        log.info("oauth: client %s approved for %s", request.client_id, " ".join(scopes))
        return self._with_code(granted, code)

    async def deny(self, request_token: str) -> Redirect:
        request, _row = await self._pending(request_token)
        await self._db.write(lambda conn: oauth_store.use_consent(conn, _hash(request_token), self._clock()))
        params = {"error": "access_denied", "error_description": "The merchant declined this connection."}
        if request.state is not None:
            params["state"] = request.state
        return Redirect(request.redirect_uri, params)

    async def create_approval_code(self) -> tuple[str, datetime]:
        """A one-time code that approves one consent page (for `mcp-checkout oauth approve`)."""
        code = _new(APPROVAL_PREFIX)
        now = self._clock()
        values = {"code_hash": _hash(code), "created_at": now, "expires_at": now + APPROVAL_TTL}
        await self._db.write(lambda conn: oauth_store.insert_approval_code(conn, values))
        return code, now + APPROVAL_TTL

    async def _pending(self, request_token: str) -> tuple[AuthorizationRequest, RowMapping]:
        row = await self._db.read(
            lambda conn: oauth_store.get_consent(conn, _hash(request_token)), quick=True, one_statement=True
        )
        if not _same_hash(row, "request_hash", request_token) or row is None:
            raise OAuthConsentNotFound("This approval page is unknown. Start the connection again from the client.")
        if row["used_at"] is not None or row["expires_at"] <= self._clock():
            raise OAuthConsentNotFound(
                "This approval request was already answered or has expired. Start again from your MCP client."
            )
        request = AuthorizationRequest(
            client_id=row["client_id"],
            redirect_uri=row["redirect_uri"],
            redirect_uri_explicit=bool(row["redirect_uri_explicit"]),
            scopes=str(row["scope"]).split(),
            state=row["state"],
            code_challenge=row["code_challenge"],
            resource=row["resource"],
        )
        return request, row

    def _issue_code(self, conn: Connection, request: AuthorizationRequest, *, approver: Principal | None) -> str:
        """A code for an approved request, and the approval in the audit log (``None``: auto-approved)."""
        code = _new(CODE_PREFIX)
        after = {"scope": " ".join(request.scopes), "redirect_uri": request.redirect_uri}
        audit.record(conn, approver, "oauth_client.approve", request.client_id, after=after, at=self._clock())
        oauth_store.insert_code(
            conn,
            {
                "code_hash": _hash(code),
                "client_id": request.client_id,
                "family_id": secrets.token_hex(16),
                "scope": " ".join(request.scopes),
                "redirect_uri": request.redirect_uri,
                "redirect_uri_explicit": int(request.redirect_uri_explicit),
                "code_challenge": request.code_challenge,
                "resource": request.resource,
                "expires_at": self._clock() + CODE_TTL,
            },
        )
        return code

    @staticmethod
    def _with_code(request: AuthorizationRequest, code: str) -> Redirect:
        params = {"code": code}
        if request.state is not None:
            params["state"] = request.state
        return Redirect(request.redirect_uri, params)

    # ------------------------------------------------------------------ codes and tokens
    async def load_code(self, client_id: str, code: str) -> CodeGrant | None:
        """A usable code of this client; a code presented again revokes what it was exchanged for."""
        row = await self._db.read(lambda conn: oauth_store.get_code(conn, _hash(code)), quick=True, one_statement=True)
        if not _same_hash(row, "code_hash", code) or row is None or row["client_id"] != client_id:
            return None
        now = self._clock()
        if row["used_at"] is not None:
            await self._db.write(lambda conn: oauth_store.revoke_family(conn, row["family_id"], now))
            log.warning("oauth: authorization code of client %s presented twice; its tokens are revoked", client_id)
            return None
        if row["expires_at"] <= now:
            return None
        return CodeGrant(
            code=code,
            client_id=row["client_id"],
            scopes=str(row["scope"]).split(),
            redirect_uri=row["redirect_uri"],
            redirect_uri_explicit=bool(row["redirect_uri_explicit"]),
            code_challenge=row["code_challenge"],
            resource=row["resource"],
            expires_at=row["expires_at"],
        )

    async def exchange_code(self, grant: CodeGrant) -> IssuedTokens:
        """Spend the code (once, whichever process gets there first) for an access and a refresh token."""
        now = self._clock()

        def run(conn: Connection) -> IssuedTokens | None:
            row = oauth_store.get_code(conn, _hash(grant.code))
            if row is None:
                return None
            if not oauth_store.use_code(conn, _hash(grant.code), now):
                oauth_store.revoke_family(conn, row["family_id"], now)
                return None
            return self._issue_tokens(conn, grant.client_id, row["family_id"], grant.scopes, grant.resource, now)

        issued = await self._db.write(run)
        if issued is None:
            raise OAuthInvalidGrant("This authorization code was already used or has expired. Authorize again.")
        return issued

    async def load_refresh(self, client_id: str, token: str) -> TokenGrant | None:
        """A live refresh token of this client. A retired one (already exchanged) revokes its family."""
        row = await self._db.read(
            lambda conn: oauth_store.get_token(conn, _hash(token)), quick=True, one_statement=True
        )
        if not _same_hash(row, "token_hash", token) or row is None:
            return None
        if row["kind"] != "refresh" or row["client_id"] != client_id or row["revoked_at"] is not None:
            return None
        now = self._clock()
        if row["rotated_at"] is not None:
            await self._db.write(lambda conn: oauth_store.revoke_family(conn, row["family_id"], now))
            log.warning("oauth: a used refresh token of client %s came back; its token family is revoked", client_id)
            return None
        if row["expires_at"] <= now:
            return None
        return self._grant(row, token)

    async def exchange_refresh(self, grant: TokenGrant, scopes: list[str]) -> IssuedTokens:
        now = self._clock()

        def run(conn: Connection) -> IssuedTokens | None:
            row = oauth_store.get_token(conn, _hash(grant.token))
            if row is None:
                return None
            if not oauth_store.rotate_refresh(conn, _hash(grant.token), now):
                oauth_store.revoke_family(conn, row["family_id"], now)  # two exchanges of one token: a replay
                return None
            return self._issue_tokens(conn, grant.client_id, row["family_id"], scopes, grant.resource, now)

        issued = await self._db.write(run)
        if issued is None:
            raise OAuthInvalidGrant("This refresh token was already used or revoked. Authorize again.")
        return issued

    async def authenticate(self, token: str) -> TokenGrant | None:
        """The grant behind a live access token, or None (unknown, expired, revoked)."""
        if not token.startswith(ACCESS_PREFIX):
            return None
        row = await self._db.read(
            lambda conn: oauth_store.get_token(conn, _hash(token)), quick=True, one_statement=True
        )
        if not _same_hash(row, "token_hash", token) or row is None or row["kind"] != "access":
            return None
        if row["revoked_at"] is not None or row["expires_at"] <= self._clock():
            return None
        return self._grant(row, token)

    async def load_any(self, token: str) -> TokenGrant | None:
        """A token of either kind that can still be revoked (RFC 7009 looks tokens up without a hint)."""
        row = await self._db.read(
            lambda conn: oauth_store.get_token(conn, _hash(token)), quick=True, one_statement=True
        )
        if not _same_hash(row, "token_hash", token) or row is None or row["revoked_at"] is not None:
            return None
        return self._grant(row, token)

    async def revoke(self, token: str) -> None:
        """Revoke the token's whole family (the access and refresh tokens of one authorization)."""
        now = self._clock()

        def run(conn: Connection) -> None:
            row = oauth_store.get_token(conn, _hash(token))
            if row is not None:
                oauth_store.revoke_family(conn, row["family_id"], now)
                audit.record(conn, None, "oauth_token.revoke", row["client_id"], at=now)

        await self._db.write(run)
        log.info("oauth: a token family was revoked")

    async def purge_expired(self) -> None:
        await self._db.write(lambda conn: oauth_store.purge_expired(conn, self._clock()))

    def _issue_tokens(
        self, conn: Connection, client_id: str, family_id: str, scopes: list[str], resource: str | None, now: datetime
    ) -> IssuedTokens:
        access, refresh = _new(ACCESS_PREFIX), _new(REFRESH_PREFIX)
        common = {"client_id": client_id, "family_id": family_id, "scope": " ".join(scopes), "resource": resource}
        oauth_store.insert_tokens(
            conn,
            [
                {**common, "token_hash": _hash(access), "kind": "access", "created_at": now,
                 "expires_at": now + self._access_ttl},
                {**common, "token_hash": _hash(refresh), "kind": "refresh", "created_at": now,
                 "expires_at": now + self._refresh_ttl},
            ],
        )  # fmt: skip
        return IssuedTokens(access, refresh, int(self._access_ttl.total_seconds()), scopes)

    @staticmethod
    def _grant(row: RowMapping, token: str) -> TokenGrant:
        return TokenGrant(
            token=token,
            kind=row["kind"],
            client_id=row["client_id"],
            scopes=str(row["scope"]).split(),
            resource=row["resource"],
            expires_at=row["expires_at"],
        )
