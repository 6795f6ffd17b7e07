"""The real HTTP app (`build_http_app`, as `serve --http` builds it) served by uvicorn in a thread, for
UCP tools written by others (schemathesis, a UCP conformance runner) to drive over real HTTP. Platform
profiles are served from memory (the machine has no internet): the one seam is the app's
``ucp_profiles`` resolver, given an httpx mock transport; everything else is the production app."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from mcp_checkout.config import Settings
from mcp_checkout.hosting import build_http_app
from mcp_checkout.ucp.negotiation import ProfileResolver
from tests.support import free_port
from tests.ucp_client import profile_transport


@contextlib.contextmanager
def served(
    settings: Settings, profiles: dict[str, dict[str, Any]], *, public_base_url: str | None = None
) -> Iterator[str]:
    """The app on a free loopback port until the block ends; yields its base URL. ``public_base_url``: the
    address discovery declares (a proxy in front of it), else its own."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = settings.model_copy(update={"public_base_url": public_base_url or base})
    resolver = ProfileResolver(transport=profile_transport(profiles))
    app = build_http_app(settings, "127.0.0.1", port, ucp_profiles=resolver)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="ucp-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the UCP test server did not start")
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(30)
