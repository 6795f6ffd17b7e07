"""A fake Stripe API on a real local socket, for running the real ``stripe`` SDK in tests.

The SDK talks to it through ``stripe.HTTPXClient`` with ``base_addresses={"api": fake.url}`` (which
``StripeGateway`` sets from ``settings.stripe_api_base``). It speaks the same wire format as Stripe:
form-encoded requests with bracketed nesting (``metadata[order_id]=…``), JSON responses, Stripe-style
error bodies, and ``Idempotency-Key`` semantics:

- same key + same method, path and parameters → the stored response again (``Idempotent-Replayed: true``);
- same key + different parameters (or another endpoint) → 400 ``idempotency_error``;
- same key while the first request is still in flight (see ``work_delay``) → 409 ``idempotency_key_in_use``.

Implemented: ``POST /v1/payment_intents``, ``GET /v1/payment_intents/{id}``,
``POST /v1/payment_intents/{id}/cancel``, ``POST /v1/payment_intents/{id}/confirm`` (with Stripe's test
PaymentMethods, see :data:`TEST_PAYMENT_METHODS`), ``POST /v1/refunds``. Test helpers move intents to
succeeded / failed / processing the way a buyer's browser would, and :meth:`FakeStripe.fail_next`
injects faults into the next matching requests:

- ``"500"``: answer 500 without doing anything (the SDK retries);
- ``"timeout"``: do the work and store the idempotent result, then sleep past the client's timeout;
- ``"drop"``: do the work and store the result, then close the connection without answering.

So a retried request after ``timeout`` or ``drop`` must hit the idempotency cache, or a second
object appears here.

The fake is held to Stripe's published API description (``fakes/stripe_spec.py``, always on): a request the
description does not allow is answered 400 as Stripe would, and every request or answer that leaves it is
kept in :attr:`FakeStripe.violations` and fails the test when the fake stops (``SpecViolation``). Webhook
events built by :func:`event` (and the intent or charge inside) are checked as they are built. :func:`post_event` signs webhook events with the SDK's own
``WebhookSignature.generate_signature_header`` and posts them to the web app.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import stripe

from .stripe_spec import SpecViolation, StripeSpec, nest_form, stripe_spec

SECRET_KEY = "sk_test_fake_" + "0" * 24
PUBLISHABLE_KEY = "pk_test_fake_" + "1" * 24
WEBHOOK_SECRET = "whsec_fake_" + "2" * 24
API_VERSION = "2025-09-30.clover"
# Stripe's documented test PaymentMethods the fake confirms with, and what each does: "succeeded", a decline
# code (402 card_error card_declined, the intent back to requires_payment_method), or "requires_action"
# (3-D Secure: the intent waits for the buyer; :meth:`FakeStripe.succeed` stands for passing the challenge).
TEST_PAYMENT_METHODS = {
    "pm_card_visa": "succeeded",
    "pm_card_mastercard": "succeeded",
    "pm_card_chargeDeclined": "generic_decline",
    "pm_card_visa_chargeDeclined": "generic_decline",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "pm_card_authenticationRequired": "requires_action",
    "pm_card_threeDSecure2Required": "requires_action",
}


@dataclass
class Recorded:
    """One request as the fake saw it."""

    method: str
    path: str
    idempotency_key: str | None
    params: dict[str, Any]
    status: int = 0
    fault: str | None = None
    replayed: bool = False


@dataclass
class _Stored:
    method: str
    path: str
    fingerprint: tuple[tuple[str, str], ...]
    status: int
    body: bytes


@dataclass
class _Fault:
    mode: str
    times: int
    method: str | None
    path_prefix: str | None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path_prefix is None or path.startswith(self.path_prefix)
        )


class StripeFailure(Exception):
    def __init__(
        self,
        status: int,
        kind: str,
        message: str,
        code: str | None = None,
        param: str | None = None,
        **extra: Any,
    ):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": kind, "message": message}
        if code:
            self.body["code"] = code
        if param:
            self.body["param"] = param
        self.body.update(extra)  # decline_code, payment_intent (a declined card's intent, as Stripe sends it)


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``metadata[order_id]=x&amount=5`` → ``{"metadata": {"order_id": "x"}, "amount": "5"}``."""
    return nest_form(pairs)


@dataclass
class FakeStripe:
    """The fake's state and HTTP server. Use as a context manager (or ``start()`` / ``stop()``)."""

    secret_key: str = SECRET_KEY
    timeout_sleep: float = 1.5
    work_delay: float = 0.0
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    check_spec: bool = True
    violations: list[str] = field(default_factory=list)
    _spec: StripeSpec | None = None
    _idempotency: dict[str, _Stored] = field(default_factory=dict)
    _faults: list[_Fault] = field(default_factory=list)
    _in_flight: set[str] = field(default_factory=set)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> FakeStripe:
        fake = self
        if self.check_spec:
            self._spec = stripe_spec()

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="fake-stripe", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeStripe:
        return self.start()

    def __exit__(self, exc_type: object, *_exc: object) -> None:
        self.stop()
        if exc_type is None:  # a test already failing keeps its own error; it fails either way
            self.assert_faithful()

    def assert_faithful(self) -> None:
        """Fail (``SpecViolation``) if any request or answer so far left Stripe's API description."""
        with self._lock:
            found, self.violations = list(self.violations), []
        if found:
            raise SpecViolation(
                f"{len(found)} exchange(s) with the fake Stripe left Stripe's API description "
                f"(version {stripe_spec().info['version']}):\n  " + "\n  ".join(found)
            )

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # ------------------------------------------------------------ fault injection
    def fail_next(self, mode: str, times: int = 1, *, method: str | None = None, path: str | None = None) -> None:
        """The next ``times`` requests (matching ``method`` / ``path`` prefix) fail with ``mode``:
        ``"500"``, ``"timeout"`` (work done, answer late) or ``"drop"`` (work done, connection closed)."""
        assert mode in ("500", "timeout", "drop")
        with self._lock:
            self._faults.append(_Fault(mode, times, method, path))

    def _take_fault(self, method: str, path: str) -> str | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    return fault.mode
            return None

    # ------------------------------------------------------------ what a buyer / the dashboard does
    def _intent(self, intent_id: str) -> dict[str, Any]:
        intent = self.intents.get(intent_id)
        if intent is None:
            raise StripeFailure(
                404, "invalid_request_error", f"No such payment_intent: '{intent_id}'", "resource_missing", "intent"
            )
        return intent

    def succeed(self, intent_id: str, *, amount_received: int | None = None) -> dict[str, Any]:
        """The buyer's card payment went through (for the whole amount unless told otherwise)."""
        with self._lock:
            intent = self._intent(intent_id)
            intent.update(
                status="succeeded",
                amount_received=intent["amount"] if amount_received is None else amount_received,
                latest_charge=intent["latest_charge"] or "ch_" + secrets.token_hex(12),
                last_payment_error=None,
                next_action=None,
            )
            return json.loads(json.dumps(intent))

    def fail_payment(self, intent_id: str, message: str = "Your card was declined.") -> dict[str, Any]:
        """A declined card: Stripe moves the intent back to requires_payment_method with an error."""
        with self._lock:
            intent = self._intent(intent_id)
            intent.update(
                status="requires_payment_method",
                last_payment_error={"type": "card_error", "code": "card_declined", "message": message},
                next_action=None,
            )
            return json.loads(json.dumps(intent))

    def processing(self, intent_id: str) -> dict[str, Any]:
        with self._lock:
            intent = self._intent(intent_id)
            intent.update(status="processing")
            return json.loads(json.dumps(intent))

    def cancel(self, intent_id: str) -> dict[str, Any]:
        """Canceled from the dashboard (not through the API the product uses)."""
        with self._lock:
            intent = self._intent(intent_id)
            intent.update(status="canceled", cancellation_reason="requested_by_customer")
            return json.loads(json.dumps(intent))

    def refund_from_dashboard(self, intent_id: str, amount: int) -> dict[str, Any]:
        with self._lock:
            return self._make_refund(intent_id, amount, {})

    def snapshot(self, intent_id: str) -> dict[str, Any]:
        """The intent as the API would return it (a copy), e.g. to build a webhook event."""
        with self._lock:
            return json.loads(json.dumps(self._intent(intent_id)))

    def charge(self, intent_id: str) -> dict[str, Any]:
        """The intent's charge, as ``charge.*`` events carry it."""
        with self._lock:
            intent = self._intent(intent_id)
            refunded = self.refunded_total(intent_id)
            captured = intent["amount_received"]
            return {
                "id": intent["latest_charge"] or "ch_" + secrets.token_hex(12),
                "object": "charge",
                "amount": intent["amount"],
                "amount_captured": captured,
                "amount_refunded": refunded,
                "billing_details": {"address": None, "email": None, "name": None, "phone": None},
                "captured": True,
                "created": intent["created"],
                "currency": intent["currency"],
                "disputed": False,
                "livemode": False,
                "paid": True,
                "payment_intent": intent_id,
                "refunded": refunded >= captured > 0,
                "status": "succeeded",
                "metadata": dict(intent["metadata"]),
            }

    def refunded_total(self, intent_id: str) -> int:
        with self._lock:
            return sum(r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent_id)

    def intents_for_order(self, order_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [i for i in self.intents.values() if i["metadata"].get("order_id") == order_id]

    def calls(self, method: str, path_prefix: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    # ------------------------------------------------------------ the API
    def handle(self, method: str, path: str, key: str | None, pairs: list[tuple[str, str]]) -> tuple[int, bytes, bool]:
        """Run one request: (status, body, replayed). With ``work_delay`` a keyed request stays in flight that
        long, and another request with the same key meanwhile gets Stripe's 409 ``idempotency_key_in_use``."""
        fingerprint = tuple(sorted(pairs))
        keyed = key is not None and method == "POST"
        with self._lock:
            if keyed:
                assert key is not None
                stored = self._idempotency.get(key)
                if stored is not None:
                    if (stored.method, stored.path, stored.fingerprint) != (method, path, fingerprint):
                        failure = StripeFailure(
                            400,
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same parameters they were "
                            f"first used with. Try using a key other than '{key}' if you meant to execute a "
                            "different request.",
                        )
                        return failure.status, _error_body(failure), False
                    return stored.status, stored.body, True
                if key in self._in_flight:
                    failure = StripeFailure(
                        409,
                        "invalid_request_error",
                        "There is currently another in-progress request using this Idempotent Key (that probably "
                        "means you submitted twice, and the other request is still going through). Please try "
                        "again later.",
                        "idempotency_key_in_use",
                    )
                    return failure.status, _error_body(failure), False
                self._in_flight.add(key)
        try:
            if self.work_delay:
                time.sleep(self.work_delay)
            with self._lock:
                try:
                    status, body = 200, json.dumps(self._route(method, path, decode_form(pairs)), indent=2).encode()
                except StripeFailure as failure:
                    status, body = failure.status, _error_body(failure)
                if keyed:
                    assert key is not None
                    self._idempotency[key] = _Stored(method, path, fingerprint, status, body)
                return status, body, False
        finally:
            if keyed:
                with self._lock:
                    self._in_flight.discard(str(key))

    def _route(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        parts = [p for p in path.split("/") if p]
        if parts[:2] == ["v1", "payment_intents"]:
            if method == "POST" and len(parts) == 2:
                return self._create_intent(params)
            if method == "GET" and len(parts) == 3:
                return self._intent(parts[2])
            if method == "POST" and len(parts) == 4 and parts[3] == "cancel":
                return self._cancel_intent(parts[2])
            if method == "POST" and len(parts) == 4 and parts[3] == "confirm":
                return self._confirm_intent(parts[2], params)
        if parts == ["v1", "refunds"] and method == "POST":
            intent_id = params.get("payment_intent")
            if not intent_id:
                raise StripeFailure(400, "invalid_request_error", "Missing required param: payment_intent.")
            amount = params.get("amount")
            return self._make_refund(
                str(intent_id), None if amount is None else _int(amount, "amount"), _metadata(params)
            )
        raise StripeFailure(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _create_intent(self, params: dict[str, Any]) -> dict[str, Any]:
        amount = _int(params.get("amount"), "amount")
        currency = str(params.get("currency") or "")
        if amount < 1:
            raise StripeFailure(400, "invalid_request_error", "Amount must be at least 1.", "amount_too_small")
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise StripeFailure(400, "invalid_request_error", f"Invalid currency: {currency}.", param="currency")
        apm = params.get("automatic_payment_methods") or {}
        intent_id = "pi_" + secrets.token_hex(12)
        intent: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "automatic_payment_methods": {"enabled": apm.get("enabled") == "true", "allow_redirects": "always"},
            "cancellation_reason": None,
            "capture_method": "automatic_async",
            "client_secret": f"{intent_id}_secret_{secrets.token_urlsafe(18)}",
            "confirmation_method": "automatic",
            "created": int(time.time()),
            "currency": currency,
            "description": None,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": _metadata(params),
            "next_action": None,
            "payment_method": None,
            "payment_method_types": ["card"],
            "status": "requires_payment_method",
        }
        self.intents[intent_id] = intent
        return intent

    def _cancel_intent(self, intent_id: str) -> dict[str, Any]:
        intent = self._intent(intent_id)
        if intent["status"] in ("succeeded", "canceled"):
            raise StripeFailure(
                400,
                "invalid_request_error",
                f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}.",
                "payment_intent_unexpected_state",
            )
        intent.update(status="canceled", cancellation_reason="requested_by_customer")
        return intent

    def _confirm_intent(self, intent_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """Confirm with one of Stripe's test PaymentMethods: it pays, is declined (402, the intent inside the
        error as Stripe sends it) or needs the buyer (3-D Secure: ``requires_action`` with ``next_action``)."""
        intent = self._intent(intent_id)
        if intent["status"] not in ("requires_payment_method", "requires_confirmation", "requires_action"):
            raise StripeFailure(
                400,
                "invalid_request_error",
                f"You cannot confirm this PaymentIntent because it has a status of {intent['status']}.",
                "payment_intent_unexpected_state",
            )
        method = str(params.get("payment_method") or "")
        outcome = TEST_PAYMENT_METHODS.get(method)
        if outcome is None:
            raise StripeFailure(
                400,
                "invalid_request_error",
                f"No such PaymentMethod: '{method}'",
                "resource_missing",
                "payment_method",
            )
        intent.update(payment_method="pm_" + secrets.token_hex(12), next_action=None)
        if outcome == "succeeded":
            return self.succeed(intent_id)
        if outcome == "requires_action":
            return_url = params.get("return_url")
            intent.update(
                status="requires_action",
                last_payment_error=None,
                next_action={
                    "type": "redirect_to_url",
                    "redirect_to_url": {
                        "return_url": return_url,
                        "url": f"https://hooks.stripe.com/3d_secure_2/hosted?payment_intent={intent_id}",
                    },
                }
                if return_url
                else {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}},
            )
            return intent
        message = "Your card was declined." if outcome == "generic_decline" else "Your card has insufficient funds."
        declined = self.fail_payment(intent_id, message)
        error = declined["last_payment_error"]
        error["decline_code"] = outcome
        intent["last_payment_error"] = dict(error)
        raise StripeFailure(
            402,
            "card_error",
            message,
            "card_declined",
            decline_code=outcome,
            payment_intent=json.loads(json.dumps(intent)),
        )

    def _make_refund(self, intent_id: str, amount: int | None, metadata: dict[str, str]) -> dict[str, Any]:
        intent = self._intent(intent_id)
        if intent["status"] != "succeeded":
            raise StripeFailure(
                400,
                "invalid_request_error",
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                "charge_not_refundable",
            )
        remaining = intent["amount_received"] - self.refunded_total(intent_id)
        wanted = remaining if amount is None else amount
        if remaining <= 0:
            raise StripeFailure(
                400, "invalid_request_error", f"Charge {intent['latest_charge']} has already been refunded.",
                "charge_already_refunded",
            )  # fmt: skip
        if wanted < 1 or wanted > remaining:
            raise StripeFailure(
                400,
                "invalid_request_error",
                f"Refund amount ({wanted}) is greater than unrefunded amount on charge ({remaining})",
                "amount_too_large",
                "amount",
            )
        refund_id = "re_" + secrets.token_hex(12)
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": wanted,
            "charge": intent["latest_charge"],
            "created": int(time.time()),
            "currency": intent["currency"],
            "metadata": metadata,
            "payment_intent": intent_id,
            "reason": None,
            "status": "succeeded",
        }
        self.refunds[refund_id] = refund
        return refund

    def log(self, record: Recorded) -> None:
        with self._lock:
            self.requests.append(record)


def _int(value: Any, name: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise StripeFailure(400, "invalid_request_error", f"Invalid integer: {value}", param=name) from None


def _metadata(params: Mapping[str, Any]) -> dict[str, str]:
    meta = params.get("metadata")
    return {str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {}


def _error_body(failure: StripeFailure) -> bytes:
    return json.dumps({"error": failure.body}, indent=2).encode()


class _Handler(BaseHTTPRequestHandler):
    owner: FakeStripe
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # the test output stays quiet
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        fake = self.owner
        url = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        raw = raw_body.decode()
        pairs = parse_qsl(raw if method == "POST" else url.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        spec = fake._spec
        key = self.headers.get("idempotency-key")
        record = Recorded(method, url.path, key, decode_form(pairs))
        fake.log(record)
        if self.headers.get("authorization") != f"Bearer {fake.secret_key}":
            failure = StripeFailure(401, "invalid_request_error", "Invalid API Key provided.")
            record.status = 401
            self._answer(401, self._checked(401, _error_body(failure), raw_body, headers), replayed=False)
            return
        problems = spec.check_request(method, url.path, url.query, raw_body, headers) if spec else []
        if problems:
            with fake._lock:
                fake.violations.extend(problems)
            failure = StripeFailure(400, "invalid_request_error", "; ".join(problems)[:2000])
            record.status = 400
            self._answer(400, self._checked(400, _error_body(failure), raw_body, headers), replayed=False)
            return
        fault = fake._take_fault(method, url.path)
        record.fault = fault
        if fault == "500":
            record.status = 500
            body = _error_body(StripeFailure(500, "api_error", "Something went wrong on Stripe's end (injected)."))
            self._answer(500, self._checked(500, body, raw_body, headers), replayed=False)
            return
        status, body, replayed = fake.handle(method, url.path, key, pairs)
        body = self._checked(status, body, raw_body, headers)
        record.status, record.replayed = status, replayed
        if fault == "drop":
            self.close_connection = True  # the work is done; the client never hears about it
            return
        if fault == "timeout":
            time.sleep(fake.timeout_sleep)
        try:
            self._answer(status, body, replayed=replayed)
        except OSError:  # the client gave up (timeout) and closed the connection
            self.close_connection = True

    def _checked(self, status: int, body: bytes, raw_body: bytes, headers: Mapping[str, str]) -> bytes:
        """``body`` as is, after holding the answer to Stripe's description (violations are kept, not raised:
        this runs on the server's thread; the test fails when the fake stops)."""
        fake = self.owner
        if fake._spec is not None:
            url = urlsplit(self.path)
            problems = fake._spec.check_response(self.command, url.path, url.query, raw_body, headers, status, body)
            if problems:
                with fake._lock:
                    fake.violations.extend(problems)
        return body

    def _answer(self, status: int, body: bytes, *, replayed: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Request-Id", "req_" + secrets.token_hex(8))
        self.send_header("Stripe-Version", API_VERSION)
        if replayed:
            self.send_header("Idempotent-Replayed", "true")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()


# ---------------------------------------------------------------- webhooks
def event(
    kind: str, obj: Mapping[str, Any], *, event_id: str | None = None, created: int | None = None
) -> dict[str, Any]:
    """A Stripe event envelope around ``obj`` (an intent or a charge), held to Stripe's API description
    (``SpecViolation`` at once); a bare stand-in like ``{"id": "pi_x"}`` (no ``object``) is not checked."""
    evt = {
        "id": event_id or "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": API_VERSION,
        "created": created or int(time.time()),
        "data": {"object": dict(obj)},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }
    problems = stripe_spec().check_event(evt)
    if problems:
        raise SpecViolation(f"{kind} event off Stripe's API description:\n  " + "\n  ".join(problems))
    return evt


def serialise(evt: Mapping[str, Any]) -> bytes:
    """As Stripe sends it: pretty-printed JSON (so a json.loads + json.dumps round trip changes the bytes)."""
    return json.dumps(evt, indent=2).encode()


def signature_header(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    return str(stripe.WebhookSignature.generate_signature_header(payload.decode(), secret, timestamp=timestamp))


async def post_event(
    web: httpx.AsyncClient,
    evt: Mapping[str, Any] | bytes,
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    body: bytes | None = None,
    signature: str | bool | None = True,
) -> httpx.Response:
    """Sign ``evt`` and POST it to ``/webhooks/stripe``. ``body`` replaces the bytes sent (after signing the
    original); ``signature=None`` sends no header; a string sends that header as is."""
    payload = evt if isinstance(evt, bytes) else serialise(evt)
    headers = {"content-type": "application/json"}
    if signature is True:
        headers["stripe-signature"] = signature_header(payload, secret, timestamp)
    elif isinstance(signature, str):
        headers["stripe-signature"] = signature
    return await web.post("/webhooks/stripe", content=body if body is not None else payload, headers=headers)


def iter_sources(csp: str, directive: str) -> Iterator[str]:
    """The sources of one Content-Security-Policy directive."""
    for part in csp.split(";"):
        words = part.split()
        if words and words[0] == directive:
            yield from words[1:]


# ---------------------------------------------------------------- the shop under test, paying through the fake
class StripeShop:
    """MCP server, web client (ASGI, no socket) and services on one database, with StripeGateway pointed at
    ``fake``. ``gateway`` overrides the one built from settings (e.g. a short timeout, or a wrapper)."""

    BASE = "http://shop.test"

    def __init__(self, settings: Any, db: Any, fake: FakeStripe, gateway: Any = None) -> None:
        from mcp_checkout.server import build_server
        from mcp_checkout.service.container import build_services
        from mcp_checkout.web.app import build_web_app

        self.settings = settings
        self.db = db
        self.fake = fake
        self.services = build_services(settings, db=db, gateway=gateway)
        self.server = build_server(settings, services=self.services)
        self.web = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=build_web_app(lambda: self.services)), base_url=self.BASE
        )

    def stripe_gateway(self, **overrides: Any) -> Any:
        """A new StripeGateway for the fake, from settings plus ``overrides`` (timeout_seconds, max_network_retries)."""
        from mcp_checkout.payments.stripe_gateway import StripeGateway

        s = self.settings
        options: dict[str, Any] = {"api_base": s.stripe_api_base, "max_network_retries": s.stripe_max_network_retries}
        options.update(overrides)
        return StripeGateway(
            s.stripe_secret_key.get_secret_value(),
            s.stripe_publishable_key,
            s.stripe_webhook_secret.get_secret_value() if s.stripe_webhook_secret else None,
            **options,
        )

    def with_gateway(self, gateway: Any) -> StripeShop:
        """Another shop on the same database and fake, paying through ``gateway``. Use ``async with shop.web``."""
        return StripeShop(self.settings, self.db, self.fake, gateway)

    def path_of(self, url: str) -> str:
        assert url.startswith(self.BASE + "/checkout/"), url
        return url[len(self.BASE) :]

    async def post_event(self, evt: Mapping[str, Any] | bytes, **options: Any) -> httpx.Response:
        return await post_event(self.web, evt, **options)

    async def scalar(self, sql: str, **params: Any) -> Any:
        from sqlalchemy import text

        return await self.db.read(lambda conn: conn.execute(text(sql), params).scalar_one())


# ---------------------------------------------------------------- MCP results
def tool_error(result: Any) -> str:
    """The error code of a failed tool call (its text reads ``[code] message``)."""
    assert result.is_error, f"expected an error, got {str(result.structured_content)[:300]}"
    text = str(result.content[0].text)
    assert text.startswith("["), text
    code = text[1 : text.index("]")]
    assert json.loads(result.content[1].text)["error"]["code"] == code
    assert "Traceback" not in text and SECRET_KEY not in text
    return code
