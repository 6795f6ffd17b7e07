"""The buyer-facing web app: checkout page, Stripe return and webhook, health.

Routes are thin: read the request, call a service, render. ``CheckoutError`` becomes a status code
and a page (or JSON when the client asks for it) in one place: :func:`_error_response`.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mcp_checkout.domain import redirect_origin
from mcp_checkout.domain.address import countries, country_name
from mcp_checkout.errors import CheckoutError, CsrfRejected, InternalError, InvalidInput
from mcp_checkout.service.checkout import ADDRESS_FORM
from mcp_checkout.service.container import Services
from mcp_checkout.service.maintenance import readiness
from mcp_checkout.service.views import CheckoutPage, FulfillmentOptionOut
from mcp_checkout.web.limits import BoundedBody

log = logging.getLogger(__name__)

CSRF_COOKIE = "mcpco_csrf"
EMAIL_PROOF_COOKIE = "mcpco_email_proof"  # one per link: its path is the link's /checkout/<token>
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)


def _delivery_time(option: FulfillmentOptionOut) -> str:
    """How long an option takes, as buyers read it: "3 to 5 days", "2 days" or "up to 4 days"."""
    low, high = option.min_days, option.max_days
    if low is None and high is None:
        return ""
    if low is None or high is None or low == high:
        days = high if high is not None else low
        word = "day" if days == 1 else "days"
        return f"up to {days} {word}" if low is None else f"{days} {word}"
    return f"{low} to {high} days"


_templates.globals.update(country_name=country_name, delivery_time=_delivery_time)

ServicesProvider = Callable[[], Services]


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _security_headers(response: Response, nonce: str, redirect_origins: list[str]) -> Response:
    form_targets = " ".join(["'self'", *redirect_origins])
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce}' https://js.stripe.com; "
        "frame-src https://js.stripe.com https://hooks.stripe.com; "
        "connect-src 'self' https://api.stripe.com; "
        "img-src 'self' data: https:; "  # the store's logo and product pictures live on its own sites
        "style-src 'self' 'unsafe-inline'; "
        f"form-action {form_targets}; base-uri 'none'; frame-ancestors 'none'"
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


def _origin(url: str | None) -> list[str]:
    """The redirect URL's origin for the CSP, rebuilt from its parsed parts; nothing for a URL that does not
    parse strictly (a link stored before URLs were checked this way)."""
    if not url:
        return []
    try:
        return [redirect_origin("url", url)]
    except InvalidInput:
        return []


def _render(name: str, status: int = 200, redirect_origins: list[str] | None = None, **context: Any) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    html = _templates.get_template(name).render(nonce=nonce, **context)
    return _security_headers(HTMLResponse(html, status_code=status), nonce, redirect_origins or [])  # type: ignore[return-value]


def _error_response(request: Request, error: CheckoutError) -> Response:
    if _wants_json(request):
        body = {"error": error.code, "message": error.message, "details": error.details}
        response: Response = JSONResponse(body, status_code=error.http_status, headers={"Cache-Control": "no-store"})
    else:
        title, text = _for_buyers(error)
        response = _render("message.html", status=error.http_status, title=title, text=text, error=error)
    if error.retry_after_seconds is not None:
        response.headers["Retry-After"] = str(max(1, round(error.retry_after_seconds)))
    return response


# What a buyer reads for each error (an error's own message is written for the agent that called a tool):
# the headline, and the text below it; None keeps the error's message, already written for buyers.
_FOR_BUYERS: dict[str, tuple[str, str | None]] = {
    "link_consumed": ("Already paid", "This order is already paid. There is nothing more to do here."),
    "link_expired": (
        "This link has expired",
        "This checkout link can no longer be used. Ask the store, or whoever sent you the link, for a new one.",
    ),
    "link_revoked": ("This link was replaced", "A newer link was sent for this order. Use the latest link you got."),
    "link_not_found": (
        "Checkout not found",
        "We could not find this checkout. Check that the whole link was copied, or ask for a new one.",
    ),
    "email_mismatch": ("Email does not match", None),
    "csrf_rejected": ("Please reload the page", None),
    "rate_limited": ("Too many attempts", None),  # the email check says how long to wait, in words for buyers
    "internal_error": ("Something went wrong", None),
    "invalid_state": (
        "This order cannot be paid here",
        "This order can no longer be paid on this page. Nothing was charged. Ask the store for help.",
    ),
    "payment_gateway_error": (
        "Payment service unavailable",
        "We could not reach the payment service. Nothing was charged; try again in a moment.",
    ),
}
_FALLBACK = (
    "Something went wrong",
    "We could not complete this step. Nothing was charged. Reload the page and try again.",
)


def _for_buyers(error: CheckoutError) -> tuple[str, str]:
    title, text = _FOR_BUYERS.get(error.code, _FALLBACK)
    if error.code == "link_consumed" and error.details.get("order_number"):
        text = f"Order {error.details['order_number']} is already paid. There is nothing more to do here."
    return title, text if text is not None else error.message


# The address form's problems in the buyer's words, by field (service/checkout.address_from_form and the
# country/region checks name the field; the page never shows a code or a tool's name).
_ADDRESS_WORDS = {
    "name": "Enter the name of the person receiving the parcel.",
    "line1": "Enter the street address.",
    "line2": "Shorten this line.",
    "city": "Enter the city or town.",
    "region": "Enter the state, province or region (its name or its code).",
    "postal_code": "Enter the postal code.",
    "country": "Choose your country from the list.",
}
_PROBLEM_WORDS = {
    "too_long": "This is too long; shorten it.",
    "text": "This contains characters we cannot accept; retype it.",
}


def _address_errors(problem: InvalidInput, country: str) -> dict[str, str]:
    fields = problem.details.get("fields")
    if not isinstance(fields, dict):  # one field named by the country/region checks: shipping_address.region
        named = str(problem.details.get("field", "")).rsplit(".", 1)[-1]
        fields = {named if named in _ADDRESS_WORDS else "country": "invalid"}
    errors = {}
    for field, kind in fields.items():
        words = _PROBLEM_WORDS.get(kind) or _ADDRESS_WORDS.get(field, "Check this field.")
        if field == "region" and kind == "invalid" and country:
            words = f"We do not know this state or region in {country_name(country)}: check its name or code."
        errors[field] = words
    return errors


def _guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except CheckoutError as error:
            return _error_response(request, error)
        except Exception:
            request_id = uuid.uuid4().hex[:12]
            log.exception(
                "internal error on %s %s [request %s]", request.method, request.url.path.split("/")[1], request_id
            )
            return _error_response(
                request,
                InternalError(f"Something went wrong (request {request_id}). Nothing was charged; try again."),
            )

    return endpoint


async def _form(request: Request) -> dict[str, str]:
    form = await request.form(max_files=0, max_fields=10)
    values = {key: value for key, value in form.items() if isinstance(value, str)}
    sent = values.get("csrf", "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not sent or not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        raise CsrfRejected("This form expired. Reload the checkout page and try again.")
    return values


def _csrf_token(request: Request) -> str:
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)


def _with_csrf(response: HTMLResponse, token: str) -> HTMLResponse:
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/checkout", max_age=86_400)
    return response


def _proof(request: Request) -> str | None:
    return request.cookies.get(EMAIL_PROOF_COOKIE)


def _with_email_proof(response: Response, request: Request, token: str, proof: str, public_base: str) -> Response:
    """The browser's proof that it knows the buyer's email: HttpOnly, SameSite=Lax (sent when the buyer
    comes back from the email or from Stripe), Secure on https, only for this link's pages."""
    https = request.url.scheme == "https" or public_base.startswith("https://")
    response.set_cookie(
        EMAIL_PROOF_COOKIE,
        proof,
        httponly=True,
        samesite="lax",
        secure=https,
        path=f"/checkout/{token}",
        max_age=7 * 86_400,
    )
    return response


def routes(get_services: ServicesProvider) -> list[BaseRoute]:
    """The web routes, for mounting beside the MCP app. ``get_services`` gives the running services."""

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        ready, facts = await readiness(get_services())
        return JSONResponse({"status": "ready" if ready else "not_ready", **facts}, status_code=200 if ready else 503)

    async def checkout_page(request: Request) -> Response:
        token = request.path_params["token"]
        page = await get_services().checkout.open(token, _proof(request))
        if _wants_json(request):
            # Serialised by pydantic in one pass: the same bytes JSONResponse makes of model_dump(mode="json").
            return Response(page.model_dump_json(exclude={"client_secret"}), media_type="application/json")
        editing = request.query_params.get("change") == "address" and page.requires_shipping
        return _checkout_html(request, page, token, editing_address=editing and not page.email_required)

    def _checkout_html(
        request: Request, page: CheckoutPage, token: str, status: int = 200, **form: Any
    ) -> HTMLResponse:
        csrf = _csrf_token(request)
        asks_address = page.step == "address" or bool(form.get("editing_address"))
        response = _render(
            "checkout.html",
            status=status,
            redirect_origins=_origin(page.success_url) + _origin(page.cancel_url),
            page=page,
            store=page.store,
            token=token,
            csrf=csrf,
            error=request.query_params.get("error") == "payment",
            return_url=f"{get_services().settings.resolved_public_base_url()}/checkout/{token}/return",
            countries=countries() if asks_address else (),
            **form,
        )
        return _with_csrf(response, csrf)

    async def save_address(request: Request) -> Response:
        token = request.path_params["token"]
        form = await _form(request)
        try:
            await get_services().checkout.set_address(token, _proof(request), form)
        except InvalidInput as problem:  # the form again, as typed, with each problem beside its field
            page = await get_services().checkout.summary(token, _proof(request))
            errors = _address_errors(problem, form.get("country", ""))
            typed = {key: form.get(key, "")[:200] for key in ADDRESS_FORM}
            return _checkout_html(request, page, token, 400, editing_address=True, form=typed, errors=errors)
        return RedirectResponse(f"/checkout/{token}", status_code=303)

    async def choose_delivery(request: Request) -> Response:
        token = request.path_params["token"]
        form = await _form(request)
        try:
            await get_services().checkout.choose_delivery(token, _proof(request), form.get("option_id", ""))
        except InvalidInput:
            page = await get_services().checkout.summary(token, _proof(request))
            words = "Choose one of the delivery options below."
            return _checkout_html(request, page, token, 400, problems_delivery=words)
        return RedirectResponse(f"/checkout/{token}", status_code=303)

    async def confirm_cancel(request: Request) -> Response:
        token = request.path_params["token"]
        page = await get_services().checkout.summary(token, _proof(request))
        if page.email_required:
            return RedirectResponse(f"/checkout/{token}", status_code=303)
        csrf = _csrf_token(request)
        return _with_csrf(_render("cancel.html", page=page, store=page.store, token=token, csrf=csrf), csrf)

    async def verify_email(request: Request) -> Response:
        token = request.path_params["token"]
        form = await _form(request)
        proof = await get_services().checkout.verify_email(token, form.get("email", ""))
        base = get_services().settings.resolved_public_base_url()
        return _with_email_proof(RedirectResponse(f"/checkout/{token}", status_code=303), request, token, proof, base)

    async def pay(request: Request) -> Response:
        token = request.path_params["token"]
        await _form(request)
        target = await get_services().checkout.pay_offline(token, _proof(request))
        if _wants_json(request):
            return JSONResponse({"status": "paid", "redirect": target})
        return RedirectResponse(target, status_code=303)

    async def stripe_return(request: Request) -> Response:
        paid, target = await get_services().checkout.return_from_gateway(request.path_params["token"])
        return RedirectResponse(target if paid else f"{target}?error=payment", status_code=303)

    async def cancel(request: Request) -> Response:
        token = request.path_params["token"]
        await _form(request)
        return RedirectResponse(await get_services().checkout.cancel(token, _proof(request)), status_code=303)

    async def outcome(request: Request) -> Response:
        receipt = await get_services().checkout.receipt(request.path_params["session_id"])
        return _render(
            "outcome.html",
            receipt=receipt,
            store=receipt.store,
            canceled=request.url.path.startswith("/checkout/canceled/"),
        )

    async def stripe_webhook(request: Request) -> Response:
        payload = await request.body()
        outcome = await get_services().payments.handle_webhook(payload, request.headers.get("stripe-signature"))
        return JSONResponse({"received": True, "outcome": outcome})

    return [
        Route("/healthz", _guarded(healthz), methods=["GET"]),
        Route("/readyz", _guarded(readyz), methods=["GET"]),
        Route("/checkout/done/{session_id}", _guarded(outcome), methods=["GET"]),
        Route("/checkout/canceled/{session_id}", _guarded(outcome), methods=["GET"]),
        Route("/checkout/{token}", _guarded(checkout_page), methods=["GET"]),
        Route("/checkout/{token}/email", _guarded(verify_email), methods=["POST"]),
        Route("/checkout/{token}/pay", _guarded(pay), methods=["POST"]),
        Route("/checkout/{token}/address", _guarded(save_address), methods=["POST"]),
        Route("/checkout/{token}/delivery", _guarded(choose_delivery), methods=["POST"]),
        Route("/checkout/{token}/return", _guarded(stripe_return), methods=["GET"]),
        Route("/checkout/{token}/cancel", _guarded(confirm_cancel), methods=["GET"]),
        Route("/checkout/{token}/cancel", _guarded(cancel), methods=["POST"]),
        Route("/webhooks/stripe", _guarded(stripe_webhook), methods=["POST"]),
    ]


def build_web_app(get_services: ServicesProvider, *, body_timeout_seconds: float = 30.0) -> Starlette:
    """The web routes alone (the page beside stdio MCP), behind the same body bounds as the HTTP app."""
    return Starlette(routes=routes(get_services), middleware=[Middleware(BoundedBody, seconds=body_timeout_seconds)])
