"""Bearer credentials for the HTTP transport, through the SDK's TokenVerifier (standard 401 flow):
static API keys (``mcpk_…``), OAuth access tokens this server issued, and (when configured) JWT access tokens
of an external identity provider (tools/jwt_tokens.py), mapped to the same principals."""

from __future__ import annotations

from mcp.server.auth.provider import AccessToken, TokenVerifier

from mcp_checkout.errors import CheckoutError
from mcp_checkout.service.access import AccessService
from mcp_checkout.service.oauth import OAuthService
from mcp_checkout.tools.jwt_tokens import ExternalTokens


class ApiKeyVerifier(TokenVerifier):
    """One verifier for every kind of bearer token: an API key, an OAuth access token of ours (when ``oauth``
    is given) or an external identity provider's JWT (when ``external`` is given). Either way the token's
    scopes are ``[kind]`` and its subject the principal id."""

    def __init__(
        self, access: AccessService, oauth: OAuthService | None = None, external: ExternalTokens | None = None
    ) -> None:
        self._access = access
        self._oauth = oauth
        self._external = external

    async def verify_token(self, token: str) -> AccessToken | None:
        if self._external is not None and self._external.looks_like_jwt(token):
            external = await self._external.verify(token)
            if external is None:
                return None
            return AccessToken(token=token, client_id=external.client_id, scopes=[external.kind],
                               subject=external.subject, expires_at=external.expires_at)  # fmt: skip
        try:
            if self._oauth is not None and not token.startswith("mcpk_"):
                grant = await self._oauth.authenticate(token)
                if grant is None:
                    return None
                who = grant.principal
                expires = int(grant.expires_at.timestamp())
                return AccessToken(token=token, client_id=grant.client_id, scopes=[who.kind], subject=who.id,
                                   expires_at=expires, resource=grant.resource)  # fmt: skip
            principal = await self._access.authenticate(token)
        except CheckoutError:  # the key store is unreachable: fail closed
            return None
        if principal is None:
            return None
        return AccessToken(token=token, client_id=principal.id, scopes=[principal.kind], subject=principal.id)
