"""Bearer credentials for the HTTP transport, through the SDK's TokenVerifier (standard 401 flow):
static API keys (``mcpk_…``) and OAuth access tokens this server issued, mapped to the same principals."""

from __future__ import annotations

from mcp.server.auth.provider import AccessToken, TokenVerifier

from mcp_checkout.errors import CheckoutError
from mcp_checkout.service.access import AccessService
from mcp_checkout.service.oauth import OAuthService


class ApiKeyVerifier(TokenVerifier):
    """One verifier for both kinds of bearer token: an API key, or (when ``oauth`` is given) an OAuth
    access token. Either way the token's scopes are ``[kind]`` and its subject the principal id."""

    def __init__(self, access: AccessService, oauth: OAuthService | None = None) -> None:
        self._access = access
        self._oauth = oauth

    async def verify_token(self, token: str) -> AccessToken | None:
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
