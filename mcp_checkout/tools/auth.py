"""Bearer API keys for the HTTP transport, through the SDK's TokenVerifier (standard 401 flow)."""

from __future__ import annotations

from mcp.server.auth.provider import AccessToken, TokenVerifier

from mcp_checkout.errors import CheckoutError
from mcp_checkout.service.access import AccessService


class ApiKeyVerifier(TokenVerifier):
    def __init__(self, access: AccessService) -> None:
        self._access = access

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            principal = await self._access.authenticate(token)
        except CheckoutError:  # the key store is unreachable: fail closed
            return None
        if principal is None:
            return None
        return AccessToken(token=token, client_id=principal.id, scopes=[principal.kind], subject=principal.id)
