"""Request bodies are bounded in size and in time, for every HTTP route, in this one place.

:class:`BoundedBody` is ASGI middleware in front of the whole app (MCP, checkout page, webhooks, and any
route added later). It reads a request's body as it streams in, counting bytes, before the route sees
any of it: a declared ``Content-Length`` over the limit is refused at once, and a chunked body is refused
with 413 the moment its running count passes the limit, so memory never holds more than the limit.
A body that does not arrive within the deadline is answered 408. Routes then get the whole, bounded
body (they never parse an oversized form or JSON document, and never see a half-read one).
"""

from __future__ import annotations

import json
import logging

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

MCP_BODY_LIMIT = 6_000_000  # import_catalog_csv takes up to 5 MB of CSV text
WEBHOOK_BODY_LIMIT = 1_000_000
FORM_BODY_LIMIT = 16_384
DEFAULT_BODY_LIMIT = 1_000_000
# Longest matching prefix wins; anything else gets DEFAULT_BODY_LIMIT.
BODY_LIMITS: tuple[tuple[str, int], ...] = (
    ("/mcp", MCP_BODY_LIMIT),
    ("/webhooks/stripe", WEBHOOK_BODY_LIMIT),
    ("/checkout/", FORM_BODY_LIMIT),
)


def body_limit(path: str) -> int:
    """The most bytes a request body to ``path`` may have."""
    best, limit = -1, DEFAULT_BODY_LIMIT
    for prefix, bytes_allowed in BODY_LIMITS:
        if path.startswith(prefix) and len(prefix) > best:
            best, limit = len(prefix), bytes_allowed
    return limit


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"connection", b"close"),  # the rest of the body is not read: the connection cannot be reused
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


class BoundedBody:
    """ASGI middleware: read each request body up to :func:`body_limit` bytes within ``seconds``, then
    hand it to the app whole; 413 past the limit, 408 past the deadline."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        too_large = f"The request body is over the {limit}-byte limit for this address; send a smaller one."
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, 413, "payload_too_large", too_large)
            return
        body = bytearray()
        more = True
        with anyio.move_on_after(self.seconds):
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return  # the client left: nobody to answer
                chunk = message.get("body", b"")
                if len(body) + len(chunk) > limit:
                    log.info("request body over %d bytes: answered 413", limit)
                    await _refuse(send, 413, "payload_too_large", too_large)
                    return
                body += chunk
                more = message.get("more_body", False)
        if more:
            log.info("request body not complete after %.0fs: answered 408", self.seconds)
            await _refuse(send, 408, "request_timeout", f"The request body did not arrive within {self.seconds:.0f}s.")
            return
        pending: list[Message] = [{"type": "http.request", "body": bytes(body), "more_body": False}]
        del body

        async def replay() -> Message:
            if pending:
                return pending.pop()
            return await receive()  # after the body: only a disconnect is left to hear

        await self.app(scope, replay, send)
