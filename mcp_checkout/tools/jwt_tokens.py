"""Access tokens from an external identity provider (``MCP_CHECKOUT_OAUTH_JWT_ISSUER`` and
``MCP_CHECKOUT_OAUTH_JWT_JWKS_URL``): signed JWTs, verified with PyJWT against the issuer's published keys.

A token is accepted when its signature checks out with a key of the issuer's JWKS (asymmetric algorithms
only), ``iss`` is the configured issuer, ``aud`` names this resource (``<public base URL>/mcp``, RFC 8707 /
RFC 9068), it has not expired (``exp`` required), and its ``scope`` (or ``scp``) grants ``buyer`` or
``merchant``. The principal is ``idp:<sub>``, with the scope's kind (``merchant`` wins when both are given).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Final

import anyio
import httpx
import jwt

from mcp_checkout.domain import PrincipalKind

log = logging.getLogger(__name__)

ALGORITHMS: Final = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
REFETCH_SECONDS: Final = 60.0  # an unknown key id refetches the JWKS at most this often (keys rotate rarely)
MAX_SUBJECT: Final = 120


@dataclass(frozen=True)
class ExternalGrant:
    subject: str
    kind: PrincipalKind
    client_id: str
    expires_at: int


class ExternalTokens:
    """Verifies JWT access tokens of one issuer; the JWKS is fetched on first use and again when a token names
    a key id it does not hold (at most every REFETCH_SECONDS), so the issuer can rotate keys."""

    def __init__(self, issuer: str, jwks_url: str, audience: str, timeout_seconds: float = 5.0) -> None:
        self.issuer = issuer
        self._jwks_url = jwks_url
        self._audience = audience
        self._timeout = timeout_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = anyio.Lock()

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        return token.count(".") == 2  # header.payload.signature

    async def verify(self, token: str) -> ExternalGrant | None:
        """The grant of a valid token; None for anything else (bad signature, wrong issuer or audience,
        expired, no usable scope, or the JWKS unreachable: fail closed)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        key = await self._key(str(header.get("kid") or ""))
        if key is None:
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=ALGORITHMS,
                audience=self._audience,
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud", "sub"]},
                leeway=30,
            )
        except jwt.PyJWTError as exc:
            log.info("external access token refused: %s", type(exc).__name__)
            return None
        scopes = _scopes(claims)
        kind: PrincipalKind | None = "merchant" if "merchant" in scopes else "buyer" if "buyer" in scopes else None
        subject = str(claims.get("sub") or "")
        if kind is None or not subject or len(subject) > MAX_SUBJECT:
            log.info("external access token refused: no buyer or merchant scope, or an unusable subject")
            return None
        client = str(claims.get("client_id") or claims.get("azp") or self.issuer)[:200]
        return ExternalGrant(subject=f"idp:{subject}", kind=kind, client_id=client, expires_at=int(claims["exp"]))

    async def _key(self, kid: str) -> jwt.PyJWK | None:
        async with self._lock:
            if self._find(kid) is None and time.monotonic() - self._fetched_at >= REFETCH_SECONDS:
                await self._fetch()
            return self._find(kid)

    def _find(self, kid: str) -> jwt.PyJWK | None:
        if kid:
            return self._keys.get(kid)
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None  # no kid: only if unambiguous

    async def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as http:
                response = await http.get(self._jwks_url, headers={"Accept": "application/json"})
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(response.json()).keys
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            log.warning("the identity provider's JWKS (%s) could not be read: %s", self._jwks_url, type(exc).__name__)
            return
        usable = [key for key in keys if key.public_key_use in (None, "sig")]
        self._keys = {str(key.key_id or f"#{index}"): key for index, key in enumerate(usable)}


def _scopes(claims: dict[str, Any]) -> set[str]:
    raw = claims.get("scope", claims.get("scp", ""))
    if isinstance(raw, str):
        return set(raw.split())
    if isinstance(raw, list):
        return {str(item) for item in raw}
    return set()
