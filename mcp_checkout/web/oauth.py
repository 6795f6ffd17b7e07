"""OAuth 2.1 routes for remote MCP clients: the MCP SDK's authorization-server handlers (metadata,
/authorize, /token, /register, /revoke) over our store, protected-resource metadata, and the merchant's
consent page. The rules live in :mod:`mcp_checkout.service.oauth`; this module only translates.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from mcp.server.auth.handlers.metadata import ProtectedResourceMetadataHandler
from mcp.server.auth.middleware.client_auth import AuthenticationError, ClientAuthenticator
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    OAuthAuthorizationServerProvider,
    RefreshToken,
    RegistrationError,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.routes import cors_middleware, create_auth_routes
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken, ProtectedResourceMetadata
from pydantic import AnyHttpUrl, AnyUrl
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_checkout.config import Settings
from mcp_checkout.errors import (
    CheckoutError,
    CsrfRejected,
    OAuthApprovalRefused,
    OAuthInvalidClientMetadata,
    OAuthInvalidGrant,
    RateLimited,
)
from mcp_checkout.service.container import Services
from mcp_checkout.service.oauth import SCOPES, AuthorizationRequest, OAuthService, Redirect, TokenGrant

log = logging.getLogger(__name__)
CSRF_COOKIE = "mcpco_oauth_csrf"
MAX_FORM_BYTES = 8_192
CONSENT_PATH = "/oauth/consent"
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)


def _access_token(grant: TokenGrant) -> AccessToken:
    return AccessToken(
        token=grant.token,
        client_id=grant.client_id,
        scopes=grant.scopes,
        expires_at=int(grant.expires_at.timestamp()),
        resource=grant.resource,
        subject=grant.principal.id,
    )


def _oauth_token(issued: Any) -> OAuthToken:
    return OAuthToken(
        access_token=issued.access_token,
        token_type="Bearer",  # noqa: S106 - the token type, not a secret
        expires_in=issued.expires_in,
        scope=" ".join(issued.scopes),
        refresh_token=issued.refresh_token,
    )


class CheckoutOAuthProvider(OAuthAuthorizationServerProvider[AuthorizationCode, RefreshToken, AccessToken]):
    """The SDK's ``OAuthAuthorizationServerProvider`` over :class:`OAuthService`."""

    def __init__(self, get_oauth: Callable[[], OAuthService], base_url: str) -> None:
        self._oauth = get_oauth
        self._base = base_url.rstrip("/")

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        client = await self._oauth().get_client(client_id)
        if client is None:
            return None
        return OAuthClientInformationFull.model_validate({**client.registration, "client_secret": client.secret})

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        registration = client_info.model_dump(mode="json", exclude={"client_secret"}, exclude_none=True)
        try:
            await self._oauth().register_client(client_info.client_id or "", registration, client_info.client_secret)
        except OAuthInvalidClientMetadata as exc:
            if "redirect URI" in exc.message:
                raise RegistrationError("invalid_redirect_uri", exc.message) from None
            raise RegistrationError("invalid_client_metadata", exc.message) from None

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        oauth = self._oauth()
        if not oauth.resource_matches(params.resource):
            raise AuthorizeError("invalid_target", f"This server only issues tokens for {oauth.resource_url}.")
        scopes: list[str] = [scope for scope in SCOPES if scope in (params.scopes or ["buyer"])]
        if not scopes:
            raise AuthorizeError("invalid_scope", "Ask for the scope 'buyer' or 'merchant'.")
        outcome = await oauth.begin(
            AuthorizationRequest(
                client_id=client.client_id or "",
                redirect_uri=str(params.redirect_uri),
                redirect_uri_explicit=params.redirect_uri_provided_explicitly,
                scopes=scopes,
                state=params.state,
                code_challenge=params.code_challenge,
                resource=params.resource,
            )
        )
        if isinstance(outcome, Redirect):
            return construct_redirect_uri(outcome.uri, **outcome.params)
        return f"{self._base}{CONSENT_PATH}?request={outcome}"

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        grant = await self._oauth().load_code(client.client_id or "", authorization_code)
        if grant is None:
            return None
        return AuthorizationCode(
            code=grant.code,
            scopes=grant.scopes,
            expires_at=grant.expires_at.timestamp(),
            client_id=grant.client_id,
            code_challenge=grant.code_challenge,
            redirect_uri=AnyUrl(grant.redirect_uri),
            redirect_uri_provided_explicitly=grant.redirect_uri_explicit,
            resource=grant.resource,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        grant = await self._oauth().load_code(client.client_id or "", authorization_code.code)
        if grant is None:
            raise TokenError("invalid_grant", "This authorization code was already used or has expired.")
        try:
            return _oauth_token(await self._oauth().exchange_code(grant))
        except OAuthInvalidGrant as exc:
            raise TokenError("invalid_grant", exc.message) from None

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        grant = await self._oauth().load_refresh(client.client_id or "", refresh_token)
        if grant is None:
            return None
        return RefreshToken(
            token=grant.token,
            client_id=grant.client_id,
            scopes=grant.scopes,
            expires_at=int(grant.expires_at.timestamp()),
            resource=grant.resource,
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        grant = await self._oauth().load_refresh(client.client_id or "", refresh_token.token)
        if grant is None:
            raise TokenError("invalid_grant", "This refresh token was already used or revoked. Authorize again.")
        try:
            return _oauth_token(await self._oauth().exchange_refresh(grant, scopes))
        except OAuthInvalidGrant as exc:
            raise TokenError("invalid_grant", exc.message) from None

    async def load_access_token(self, token: str) -> AccessToken | None:
        """Only the revocation endpoint calls this (requests to /mcp go through the bearer verifier):
        any live token of either kind, so revoking a refresh token needs no hint."""
        grant = await self._oauth().load_any(token)
        return _access_token(grant) if grant is not None else None

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        await self._oauth().revoke(token.token)


class _RegistrationCap:
    """/register answers 429 (not the SDK's 400) when the hourly registration cap is reached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except RateLimited as exc:
            body = {"error": "temporarily_unavailable", "error_description": exc.message}
            retry = str(int(exc.retry_after_seconds or 600))
            await JSONResponse(body, status_code=429, headers={"Retry-After": retry})(scope, receive, send)


def _revocation(
    provider: CheckoutOAuthProvider, get_oauth: Callable[[], OAuthService]
) -> Callable[[Request], Awaitable[Response]]:
    """RFC 7009 revocation. The SDK's handler requires a ``client_secret`` field even from public clients,
    which RFC 7009 clients omit; this one authenticates the client with the SDK's ClientAuthenticator."""
    authenticator = ClientAuthenticator(provider)
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}

    async def revoke(request: Request) -> Response:
        try:
            client = await authenticator.authenticate_request(request)
        except AuthenticationError as exc:
            return JSONResponse({"error": "invalid_client", "error_description": exc.message}, 401, headers)
        token = (await request.form()).get("token")
        if not isinstance(token, str) or not token:
            return JSONResponse({"error": "invalid_request", "error_description": "token is required"}, 400, headers)
        grant = await get_oauth().load_any(token[:200])
        if grant is not None and grant.client_id == client.client_id:
            await get_oauth().revoke(token[:200])
        return Response(status_code=200, headers=headers)  # unknown tokens too (RFC 7009 §2.2)

    return revoke


def _render(name: str, status: int, form_targets: list[str], **context: Any) -> HTMLResponse:
    html = _templates.get_template(name).render(**context)
    response = HTMLResponse(html, status_code=status)
    targets = " ".join(["'self'", *form_targets])
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'unsafe-inline'; form-action {targets}; base-uri 'none'; frame-ancestors 'none'"
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


def _origin(url: str) -> list[str]:
    parts = urlsplit(url)
    return [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []


def _redirect(outcome: Redirect) -> Response:
    response = RedirectResponse(construct_redirect_uri(outcome.uri, **outcome.params), status_code=303)
    response.headers["Cache-Control"] = "no-store"
    return response


def _problem(error: CheckoutError) -> HTMLResponse:
    return _render("message.html", error.http_status, [], title="Connection not approved", error=error)


def routes(get_services: Callable[[], Services], settings: Settings) -> list[BaseRoute]:
    """Authorization server + protected-resource metadata + consent page, mounted before /mcp. An external
    identity provider (``oauth_jwt_issuer``) is listed in the metadata too, alone when OAuth here is off."""
    base = settings.resolved_public_base_url()
    if not settings.oauth_enabled:
        return _resource_metadata_routes(settings, []) if settings.oauth_jwt_issuer else []
    provider = CheckoutOAuthProvider(lambda: get_services().oauth, base)
    try:
        sdk_routes = create_auth_routes(
            provider,
            issuer_url=AnyHttpUrl(base),
            client_registration_options=ClientRegistrationOptions(
                enabled=True, valid_scopes=list(SCOPES), default_scopes=list(SCOPES)
            ),
            revocation_options=RevocationOptions(enabled=True),
        )
    except ValueError:  # RFC 8414: an issuer is https (plain http only on loopback)
        log.warning(
            "OAuth is off: %s is not https; set MCP_CHECKOUT_PUBLIC_BASE_URL to the server's https address "
            "(API keys keep working)",
            base,
        )
        return []
    replaced: dict[str, ASGIApp] = {
        "/register": _RegistrationCap(next(r.app for r in sdk_routes if r.path == "/register")),
        "/revoke": cors_middleware(_revocation(provider, lambda: get_services().oauth), ["POST", "OPTIONS"]),
    }
    auth_routes: list[BaseRoute] = [
        Route(r.path, endpoint=replaced[r.path], methods=["POST", "OPTIONS"]) if r.path in replaced else r
        for r in sdk_routes
    ]

    def csrf_of(request: Request) -> str:
        return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)

    def page(request: Request, token: str, view: Any, csrf: str, error: str | None = None) -> HTMLResponse:
        response = _render(
            "oauth_consent.html",
            403 if error else 200,
            _origin(view.redirect_uri),
            view=view,
            request_token=token,
            csrf=csrf,
            error=error,
            merchant=get_services().settings.merchant_name,
        )
        secure = request.url.scheme == "https"
        response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=secure, path="/oauth")
        return response

    async def consent_page(request: Request) -> Response:
        token = request.query_params.get("request", "")[:200]
        try:
            view = await get_services().oauth.consent(token)
        except CheckoutError as error:
            return _problem(error)
        return page(request, token, view, csrf_of(request))

    async def consent_answer(request: Request) -> Response:
        try:
            form = await _form(request)
            token = form.get("request", "")[:200]
            oauth = get_services().oauth
            if form.get("decision") == "deny":
                return _redirect(await oauth.deny(token))
            try:
                outcome = await oauth.approve(
                    token, form.get("credential", "")[:300], grant_merchant=form.get("buyer_only") != "1"
                )
            except OAuthApprovalRefused as refused:
                return page(request, token, await oauth.consent(token), csrf_of(request), refused.message)
            return _redirect(outcome)
        except CheckoutError as error:
            return _problem(error)

    return [
        *_resource_metadata_routes(settings, [base]),
        *auth_routes,
        Route(CONSENT_PATH, consent_page, methods=["GET"]),
        Route(CONSENT_PATH, consent_answer, methods=["POST"]),
    ]


def _resource_metadata_routes(settings: Settings, servers: list[str]) -> list[BaseRoute]:
    """RFC 9728 protected-resource metadata for /mcp: ``servers`` plus the external identity provider, if any."""
    base = settings.resolved_public_base_url()
    issuers = [*servers, *([settings.oauth_jwt_issuer] if settings.oauth_jwt_issuer else [])]
    resource = ProtectedResourceMetadataHandler(
        ProtectedResourceMetadata(
            resource=AnyHttpUrl(f"{base}/mcp"),
            authorization_servers=[AnyHttpUrl(issuer) for issuer in issuers],
            scopes_supported=list(SCOPES),
            resource_name=settings.merchant_name,
        )
    )
    endpoint = cors_middleware(resource.handle, ["GET", "OPTIONS"])
    return [
        Route("/.well-known/oauth-protected-resource", endpoint=endpoint, methods=["GET", "OPTIONS"]),
        Route("/.well-known/oauth-protected-resource/mcp", endpoint=endpoint, methods=["GET", "OPTIONS"]),
    ]


async def _form(request: Request) -> dict[str, str]:
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        raise CsrfRejected("The form was too large. Reload the approval page and try again.")
    form = await request.form(max_files=0, max_fields=10)
    values = {key: value for key, value in form.items() if isinstance(value, str)}
    sent, cookie = values.get("csrf", ""), request.cookies.get(CSRF_COOKIE, "")
    if not sent or not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        raise CsrfRejected("This form expired. Reload the approval page and try again.")
    return values
