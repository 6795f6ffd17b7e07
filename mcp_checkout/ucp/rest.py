"""The REST binding and discovery route, mounted on the HTTP app beside the checkout page.

One wrapper (:func:`_guarded`) turns every failure into the spec's answer: protocol refusals as HTTP
status + ``{"code", "content"}``; native errors as protocol errors (401/403/409/429/503) or, for a
resource that does not exist, the UCP error envelope (``ucp.status: error`` with ``messages``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mcp_checkout.errors import CheckoutError, NotFound
from mcp_checkout.service.container import Services
from mcp_checkout.ucp import spec
from mcp_checkout.ucp.negotiation import UcpProblem
from mcp_checkout.ucp.profile import business_profile

log = logging.getLogger(__name__)

ServicesProvider = Callable[[], Services]
# What is declared in discovery follows what is implemented: each flag turns on with its tests.
CHECKOUT_IMPLEMENTED = False


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


def _guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except UcpProblem as problem:
            return _problem_response(problem)
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


def routes(get_services: ServicesProvider) -> list[BaseRoute]:
    """Discovery (and, as they land, the REST binding's operations)."""

    async def discovery(_request: Request) -> Response:
        services = get_services()
        profile = business_profile(
            services.settings.resolved_public_base_url(),
            offline=services.settings.payment_mode == "offline" and CHECKOUT_IMPLEMENTED,
            checkout=CHECKOUT_IMPLEMENTED,
        )
        return JSONResponse(profile, headers={"Cache-Control": f"public, max-age={spec.PROFILE_MAX_AGE}"})

    return [Route(spec.PROFILE_PATH, _guarded(discovery), methods=["GET"])]
