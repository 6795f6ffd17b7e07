"""Running the server: stdio MCP with the checkout page beside it, or one HTTP app for both."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import uvicorn
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import SecretStr
from sse_starlette.sse import AppStatus
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_checkout import logs
from mcp_checkout.config import Settings
from mcp_checkout.server import build_server
from mcp_checkout.service.container import Services, build_services, open_services
from mcp_checkout.service.maintenance import upkeep_forever
from mcp_checkout.tools.auth import ApiKeyVerifier
from mcp_checkout.tools.jwt_tokens import ExternalTokens
from mcp_checkout.ucp import mcp as ucp_mcp
from mcp_checkout.ucp import order as ucp_order
from mcp_checkout.ucp import rest as ucp_rest
from mcp_checkout.ucp import spec as ucp_spec
from mcp_checkout.ucp.negotiation import ProfileResolver
from mcp_checkout.web import oauth as oauth_web
from mcp_checkout.web.app import build_web_app, routes
from mcp_checkout.web.limits import MCP_BODY_LIMIT, BoundedBody
from mcp_checkout.web.mcp_events import BoundedEventStore

log = logging.getLogger(__name__)
STREAM_RETRY_MS = 2_000  # how soon a client whose stream dropped should reconnect and resume


def _uvicorn(app: Starlette, host: str, port: int, *, lifespan: bool, grace: float = 10) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,  # request paths carry checkout tokens: never log them
        lifespan="on" if lifespan else "off",
        timeout_graceful_shutdown=int(grace) + 5,
    )
    return uvicorn.Server(config)


def _uvicorn_stopping() -> bool:
    """Has the uvicorn server of this process been told to exit (SIGTERM / SIGINT)?

    uvicorn installs its bound ``handle_exit`` as the signal handler while it serves; its
    ``should_exit`` flips on the first signal (the same introspection sse-starlette relies on)."""
    owner = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return bool(getattr(owner, "should_exit", False))


class _OpenRequests:
    """Counts MCP requests (POSTs to /mcp) whose response has not finished yet, from their first byte
    (the body upload included): :class:`_CountOpenRequests` is the outermost middleware."""

    def __init__(self) -> None:
        self.count = 0

    async def drain(self, grace: float) -> int:
        """Wait (up to ``grace`` seconds) until every open request has answered; return how many have not."""
        with anyio.move_on_after(grace):
            while self.count:  # noqa: ASYNC110 - a counter across tasks; polling at shutdown is enough
                await anyio.sleep(0.05)
        return self.count


class _CountOpenRequests:
    def __init__(self, app: ASGIApp, requests: _OpenRequests) -> None:
        self.app = app
        self.requests = requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(("/mcp", "/ucp/")):
            await self.app(scope, receive, send)
            return
        self.requests.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.requests.count -= 1


async def _end_streams_after_drain(requests: _OpenRequests, grace: float, services: Services) -> None:
    """On shutdown, let running tool calls finish and answer on their open SSE streams, then end
    every remaining stream (idle GET streams would otherwise hold uvicorn until its timeout)."""
    while not _uvicorn_stopping():  # noqa: ASYNC110 - a signal flag set by uvicorn, not an event we can await
        await anyio.sleep(0.1)
    services.order_watch.stop_waiting()  # wait_for_order calls answer now instead of holding the drain
    if (left := await requests.drain(grace)) > 0:
        log.warning("shutdown: %d MCP request(s) still running after %.0fs; their callers get no answer", left, grace)
    AppStatus.should_exit = True


async def _serve_page(services: Services, settings: Settings) -> None:
    server = _uvicorn(
        build_web_app(lambda: services, body_timeout_seconds=settings.http_body_timeout_seconds),
        settings.web_host,
        settings.web_port,
        lifespan=False,
    )
    try:
        await server.serve()
    except (OSError, SystemExit) as exc:  # uvicorn exits when the port is taken
        log.error(
            "checkout page not served on %s:%s (%s); set MCP_CHECKOUT_WEB_PORT to a free port",
            settings.web_host, settings.web_port, type(exc).__name__,
        )  # fmt: skip


async def serve_stdio(settings: Settings, on_ready: Callable[[], None] | None = None) -> None:
    """MCP over stdin/stdout for a desktop client, plus the checkout page on localhost. ``on_ready`` runs
    once the database is open and migrated, before the first MCP message is read."""
    services = await open_services(settings)
    ucp_order.register(services)
    server = build_server(settings, services=services)
    if on_ready is not None:
        on_ready()
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(upkeep_forever, services, settings.sweep_interval_seconds)
            if settings.serve_checkout_page:
                tasks.start_soon(_serve_page, services, settings)
            await server.run_stdio_async()
            tasks.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await services.close()


def build_http_app(
    settings: Settings, host: str, port: int, *, ucp_profiles: ProfileResolver | None = None
) -> Starlette:
    """One ASGI app: checkout page, webhook and health routes, and MCP at /mcp (mounted last) behind
    API keys. Its lifespan migrates, sweeps, and closes the services; one per process. ``ucp_profiles``:
    how UCP platform profiles are fetched (tests serve them from memory; the machine has no internet)."""
    services = build_services(settings)
    ucp_order.register(services)
    issuer, jwks, resource = settings.oauth_jwt_issuer, settings.oauth_jwt_jwks_url, settings.resolved_public_base_url()
    external = ExternalTokens(issuer, jwks, f"{resource}/mcp") if issuer and jwks else None
    verifier = ApiKeyVerifier(services.access, services.oauth, external)
    server = build_server(settings, services=services, token_verifier=verifier)
    security = TransportSecuritySettings(
        allowed_hosts=[
            f"{host}:{port}", f"localhost:{port}", f"127.0.0.1:{port}", host, "localhost", "127.0.0.1",
            *settings.allowed_hosts,
        ],
        allowed_origins=[
            f"http://{host}:{port}", f"http://localhost:{port}", f"http://127.0.0.1:{port}", *settings.allowed_origins
        ],
    )  # fmt: skip
    open_requests = _OpenRequests()
    # UCP: one profile cache for both bindings; its MCP binding is stateless, at its own path.
    profiles = ucp_profiles or ProfileResolver()
    ucp_server = ucp_mcp.build_server(
        lambda: services, resolver=profiles, allow_http_profiles=settings.ucp_allow_http_profiles
    )
    ucp_server.streamable_http_app(
        transport_security=security, host=host, stateless_http=True, json_response=True
    )  # builds its session manager, which the route below serves behind the key gate
    ucp_routes = [
        *ucp_rest.routes(
            lambda: services, resolver=profiles, allow_http_profiles=settings.ucp_allow_http_profiles, mcp=True
        ),
        Route(ucp_spec.MCP_PATH, ucp_mcp.Gate(StreamableHTTPASGIApp(ucp_server.session_manager), lambda: services)),
    ]
    mcp_app = server.streamable_http_app(
        transport_security=security,
        host=host,
        max_request_body_size=MCP_BODY_LIMIT,  # BoundedBody enforces it first, as the body streams
        stateless_http=settings.http_stateless,
        # Sessions (and so resumable streams) live in one process: stateless workers have none to resume.
        event_store=None if settings.http_stateless else BoundedEventStore(),
        retry_interval=None if settings.http_stateless else STREAM_RETRY_MS,
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await services.prepare_database()
        if not await services.access.list_keys():
            log.warning("no API keys yet: every /mcp call is refused. Create one: mcp-checkout keys create --name …")
        # sse-starlette ends every SSE stream the moment uvicorn gets SIGTERM, cutting off the answers
        # of running tool calls; we end them ourselves once those calls have answered.
        AppStatus.enable_automatic_graceful_drain = False
        AppStatus.should_exit = False
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(upkeep_forever, services, settings.sweep_interval_seconds)
                tasks.start_soon(_end_streams_after_drain, open_requests, settings.shutdown_grace_seconds, services)
                async with server.session_manager.run(), ucp_server.session_manager.run():
                    yield
                tasks.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await services.close()

    return Starlette(
        routes=[
            *routes(lambda: services),
            *oauth_web.routes(lambda: services, settings),
            *ucp_routes,
            Mount("/", app=mcp_app),
        ],
        middleware=[
            Middleware(_CountOpenRequests, requests=open_requests),
            Middleware(BoundedBody, seconds=settings.http_body_timeout_seconds),
        ],
        lifespan=lifespan,
    )


def http_app_from_environment() -> Starlette:
    """The app for ``serve --http --workers N``: each worker process builds its own from the environment."""
    settings = Settings()
    logs.configure(settings.log_level)
    return build_http_app(settings, settings.web_host, settings.web_port)


def settings_environment(settings: Settings) -> dict[str, str]:
    """``MCP_CHECKOUT_*`` variables from which ``Settings()`` rebuilds exactly ``settings``, secrets included
    (``model_dump`` masks a ``SecretStr`` as ``**********``: a worker would get the mask, not the key)."""
    dumped = settings.model_dump(mode="json", exclude_none=True)
    environment: dict[str, str] = {}
    for name in dumped:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
        elif isinstance(dumped[name], str):
            text = dumped[name]
        else:
            text = json.dumps(dumped[name])  # numbers, booleans, lists: JSON, which pydantic-settings reads back
        environment[f"MCP_CHECKOUT_{name.upper()}"] = text
    return environment


def serve_http(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """MCP over streamable HTTP at /mcp behind bearer API keys, with the page, webhook and health.
    Several workers share one database (PostgreSQL for real concurrency; SQLite serialises writes)."""
    if workers == 1:
        app = build_http_app(settings, host, port)
        anyio.run(_uvicorn(app, host, port, lifespan=True, grace=settings.shutdown_grace_seconds).serve)
        return
    settings = settings.model_copy(update={"http_stateless": True})  # a session lives in one process only
    os.environ.update(settings_environment(settings))
    uvicorn.run(
        "mcp_checkout.hosting:http_app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) + 5,
    )


def free_local_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (for a server started next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
