"""A loopback reverse proxy that adds an `Authorization` header: for outside clients that send none
(the MCP conformance suite). A Host or Origin naming the proxy itself is mapped to the upstream's, as a
real proxy in front of the server would; any other Host or Origin passes through untouched, so the
server's DNS-rebinding protection still judges what the client sent. Responses stream through
unbuffered (SSE)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from tests.support import free_port

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "content-length", "host"}


def _app(upstream: str, authorization: str, own_port: int) -> Any:
    client = httpx.AsyncClient(base_url=upstream, timeout=httpx.Timeout(60, read=None))
    upstream_host = httpx.URL(upstream).netloc.decode()
    own_hosts = {f"127.0.0.1:{own_port}", f"localhost:{own_port}"}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        forwarded = {k: v for k, v in headers.items() if k not in HOP_BY_HOP}
        forwarded["authorization"] = authorization
        host = headers.get("host", "")
        if forwarded.get("origin") in {f"http://{own}" for own in own_hosts}:
            forwarded["origin"] = upstream
        path = scope["path"] + (("?" + scope["query_string"].decode()) if scope["query_string"] else "")
        request = client.build_request(scope["method"], path, headers=forwarded, content=body)
        request.headers["host"] = upstream_host if host in own_hosts else host
        response = await client.send(request, stream=True)
        try:
            out = [(k.encode(), v.encode()) for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": out})
            with contextlib.suppress(httpx.HTTPError):  # the upstream ended a stream early: so do we
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    return app


@contextlib.contextmanager
def auth_proxy(upstream: str, authorization: str, port: int | None = None) -> Iterator[str]:
    """``with auth_proxy("http://127.0.0.1:P", "Bearer k") as url``: the proxy's base URL (on ``port`` if
    given: a server that must name the proxy as its public address learns it before the proxy starts)."""
    port = port or free_port()
    config = uvicorn.Config(_app(upstream, authorization, port), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the auth proxy did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
