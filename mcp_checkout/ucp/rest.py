"""The REST binding and discovery route, mounted on the HTTP app beside the checkout page.

One wrapper (:func:`_guarded`) turns every failure into the spec's answer: protocol refusals as HTTP
status + ``{"code", "content"}``; native errors as protocol errors (401/403/409/429/503) or, for a
resource that does not exist, the UCP error envelope (``ucp.status: error`` with ``messages``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mcp_checkout.domain import Principal
from mcp_checkout.errors import CheckoutError, NotFound
from mcp_checkout.service.container import Services
from mcp_checkout.ucp import catalog, order, spec
from mcp_checkout.ucp.checkout import CheckoutAdapter
from mcp_checkout.ucp.negotiation import (
    Incompatible,
    PlatformProfile,
    ProfileResolver,
    UcpProblem,
    agent_profile_url,
    check_version,
    intersect,
    require_capability,
)
from mcp_checkout.ucp.profile import business_profile, capabilities

log = logging.getLogger(__name__)

ServicesProvider = Callable[[], Services]
# What is declared in discovery follows what is implemented: each flag turns on with its tests.
CHECKOUT_IMPLEMENTED = True
ORDER_IMPLEMENTED = True  # get_order (REST, MCP) and signed order webhooks; the profile publishes the keys
MAX_IDEMPOTENCY_KEY = 255


# The one principal of keyless platforms in guest mode (MCP_CHECKOUT_UCP_PUBLIC): a buyer, so merchant-only
# things stay out of reach; its checkouts are found by their unguessable ids, like checkout links.
GUEST = Principal(id="ucp:guest", kind="buyer", client="ucp")


def credential(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _address_id(request: Request) -> str:
    """The client address as a rate-limit window id (hashed: no address is stored; 23 characters)."""
    address = request.client.host if request.client is not None else "unknown"
    return "ip:" + hashlib.sha256(address.encode()).hexdigest()[:20]


async def platform_principal(services: Services, request: Request) -> Principal | None:
    """Who calls the UCP surface, after spending one call of its per-minute budget (``RateLimited``): the API
    key's principal (X-API-Key or Bearer); without a key, in guest mode, :data:`GUEST`, counted per client
    address. None (answer 401): an unknown key, or no key outside guest mode."""
    token = credential(request)
    if token:
        principal = await services.access.authenticate(token)
        if principal is not None:
            await services.access.count_call(principal)
        return principal
    settings = services.settings
    if not settings.ucp_public:
        return None
    guest = Principal(id=_address_id(request), kind="buyer", client="ucp")
    await services.access.count_call(guest, per_minute=settings.ucp_public_rate_limit_per_minute, who="This address")
    return GUEST


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError as exc:
        raise UcpProblem(400, "invalid_request", "The request body must be a JSON object.") from exc


def _idempotency_key(request: Request) -> str:
    key = request.headers.get("idempotency-key", "").strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise UcpProblem(
            400, "invalid_request", "Send an Idempotency-Key header (a UUID); reuse it when you retry this call."
        )
    return key


def error_envelope(code: str, content: str, *, continue_url: str | None = None) -> dict[str, Any]:
    """The spec's error response (no resource could be established)."""
    body: dict[str, Any] = {
        "ucp": {"version": spec.VERSION, "status": "error"},
        "messages": [{"type": "error", "code": code, "content": content, "severity": "unrecoverable"}],
    }
    if continue_url:
        body["continue_url"] = continue_url
    return body


def _problem_response(problem: UcpProblem) -> Response:
    return JSONResponse(
        problem.body(), status_code=problem.status, headers={"Cache-Control": "no-store", **problem.headers}
    )


def _native_error(error: CheckoutError) -> Response:
    if isinstance(error, NotFound):
        return JSONResponse(error_envelope("not_found", error.message), status_code=404)
    headers = {"Cache-Control": "no-store"}
    if error.retry_after_seconds is not None:
        headers["Retry-After"] = str(max(1, round(error.retry_after_seconds)))
    return JSONResponse({"code": error.code, "content": error.message}, status_code=error.http_status, headers=headers)


def negotiate(platform: PlatformProfile, root: str, continue_url: str) -> set[str]:
    """The capabilities active with this platform (the spec's intersection); ``capabilities_incompatible``
    unless ``root`` (the operation's capability) is among them."""
    active = intersect(capabilities(CHECKOUT_IMPLEMENTED, order=ORDER_IMPLEMENTED), platform.capabilities)
    require_capability(active, root, continue_url)
    return set(active)


def _guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except UcpProblem as problem:
            return _problem_response(problem)
        except Incompatible as failed:  # a business outcome: 200 with the error envelope
            body = error_envelope("capabilities_incompatible", failed.content, continue_url=failed.continue_url)
            return JSONResponse(body, headers={"Cache-Control": "no-store"})
        except CheckoutError as error:
            return _native_error(error)
        except Exception:
            reference = uuid.uuid4().hex[:12]
            log.exception("UCP internal error on %s [reference %s]", request.method, reference)
            return JSONResponse(
                {"code": "internal_error", "content": f"Something went wrong (reference {reference}); retry."},
                status_code=500,
            )

    return endpoint


def routes(
    get_services: ServicesProvider,
    *,
    resolver: ProfileResolver | None = None,
    allow_http_profiles: bool = False,
    mcp: bool = False,
) -> list[BaseRoute]:
    """Discovery and the REST binding of the checkout capability under ``/ucp/v1``.
    ``allow_http_profiles``: accept http:// platform profile URLs (local development and tests only)."""
    profiles = resolver or ProfileResolver()

    async def authorize(request: Request, root: str = spec.CHECKOUT) -> Principal:
        """API key (X-API-Key or Bearer) or guest mode, rate limit, then the platform's profile and version,
        and the capabilities negotiated with it, which must hold the operation's ``root`` capability."""
        principal = await platform_principal(get_services(), request)
        if principal is None:
            raise UcpProblem(
                401, "unauthorized", "Send this store's API key in X-API-Key (or Authorization: Bearer).",
                headers={"WWW-Authenticate": 'Bearer realm="ucp"'},
            )  # fmt: skip
        url = agent_profile_url(request.headers.get("ucp-agent"), allow_http=allow_http_profiles)
        platform = await profiles.profile(url)
        check_version(platform.version)
        request.state.ucp_profile = url
        request.state.ucp_capabilities = negotiate(platform, root, get_services().settings.resolved_public_base_url())
        return dataclasses.replace(principal, client="ucp")

    def checkouts(request: Request) -> CheckoutAdapter:
        """The checkout operations, answering with the capabilities negotiated in ``authorize``."""
        return CheckoutAdapter(get_services(), request.state.ucp_capabilities)

    def answer(request: Request, body: dict[str, Any], status: int = 200) -> Response:
        headers = {"Cache-Control": "no-store"}
        if request_id := request.headers.get("request-id"):
            headers["Request-Id"] = request_id[:200]
        return JSONResponse(body, status_code=status, headers=headers)

    async def create_checkout(request: Request) -> Response:
        principal = await authorize(request)
        key = _idempotency_key(request) if "idempotency-key" in request.headers else None
        body = await checkouts(request).create(principal, await _json_body(request), key)
        return answer(request, body, 201 if "id" in body else 200)

    async def get_checkout(request: Request) -> Response:
        principal = await authorize(request)
        return answer(request, await checkouts(request).get(principal, request.path_params["id"]))

    async def update_checkout(request: Request) -> Response:
        principal = await authorize(request)
        body = await _json_body(request)
        return answer(request, await checkouts(request).update(principal, request.path_params["id"], body))

    async def complete_checkout(request: Request) -> Response:
        principal = await authorize(request)
        key = _idempotency_key(request)
        body = await _json_body(request)
        adapter = checkouts(request)
        completed = await adapter.complete(principal, request.path_params["id"], body, key)
        if ORDER_IMPLEMENTED:
            hook = await profiles.order_webhook_url(request.state.ucp_profile)
            await order.follow(get_services(), principal, request.path_params["id"], hook)
        return answer(request, completed)

    async def get_order(request: Request) -> Response:
        principal = await authorize(request, spec.ORDER)
        return answer(request, await order.get_order(get_services(), principal, request.path_params["id"]))

    async def search_catalog(request: Request) -> Response:
        await authorize(request, spec.CATALOG_SEARCH)
        return answer(request, await catalog.search(get_services(), await _json_body(request)))

    async def lookup_catalog(request: Request) -> Response:
        await authorize(request, spec.CATALOG_LOOKUP)
        return answer(request, await catalog.lookup(get_services(), await _json_body(request)))

    async def get_product(request: Request) -> Response:
        await authorize(request, spec.CATALOG_LOOKUP)
        return answer(request, await catalog.get_product(get_services(), await _json_body(request)))

    async def cancel_checkout(request: Request) -> Response:
        principal = await authorize(request)
        key = _idempotency_key(request)  # required, as for complete (the spec's OpenAPI and MCP binding)
        adapter = checkouts(request)
        return answer(request, await adapter.cancel(principal, request.path_params["id"], key))

    async def discovery(_request: Request) -> Response:
        services = get_services()
        profile = business_profile(
            services.settings.resolved_public_base_url(),
            payment_mode=services.settings.payment_mode,
            publishable_key=services.settings.stripe_publishable_key,
            checkout=CHECKOUT_IMPLEMENTED,
            mcp=mcp,
            signing_keys=await services.signing_keys.published() if ORDER_IMPLEMENTED else None,
        )
        return JSONResponse(profile, headers={"Cache-Control": f"public, max-age={spec.PROFILE_MAX_AGE}"})

    base = spec.REST_BASE_PATH
    return [
        Route(spec.PROFILE_PATH, _guarded(discovery), methods=["GET"]),
        Route(f"{base}/checkout-sessions", _guarded(create_checkout), methods=["POST"]),
        Route(f"{base}/checkout-sessions/{{id}}", _guarded(get_checkout), methods=["GET"]),
        Route(f"{base}/checkout-sessions/{{id}}", _guarded(update_checkout), methods=["PUT"]),
        Route(f"{base}/checkout-sessions/{{id}}/complete", _guarded(complete_checkout), methods=["POST"]),
        Route(f"{base}/checkout-sessions/{{id}}/cancel", _guarded(cancel_checkout), methods=["POST"]),
        Route(f"{base}/orders/{{id}}", _guarded(get_order), methods=["GET"]),
        Route(f"{base}/catalog/search", _guarded(search_catalog), methods=["POST"]),
        Route(f"{base}/catalog/lookup", _guarded(lookup_catalog), methods=["POST"]),
        Route(f"{base}/catalog/product", _guarded(get_product), methods=["POST"]),
    ]
