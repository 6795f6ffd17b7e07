"""``mcp-checkout serve``: MCP over stdio with the checkout page beside it, or everything over HTTP."""

from __future__ import annotations

import socket
import sys
from typing import TYPE_CHECKING

import anyio

import mcp_checkout
from mcp_checkout.cli.base import Commands, Context, add_command, describe_database
from mcp_checkout.config import Settings

if TYPE_CHECKING:
    from mcp_checkout.service.container import Services


def _say(settings: Settings, text: str) -> None:
    """What the server is doing, on stderr (stdout belongs to the stdio transport); quiet from
    MCP_CHECKOUT_LOG_LEVEL=WARNING up, as the demo runs it."""
    if settings.log_level in ("DEBUG", "INFO"):
        print(f"mcp-checkout {mcp_checkout.__version__}: {text}", file=sys.stderr, flush=True)


def _announce_stdio(settings: Settings) -> None:
    page = (
        f"checkout page on http://{settings.web_host}:{settings.web_port} (buyers' links: "
        f"{settings.resolved_public_base_url()}/checkout/…)"
        if settings.serve_checkout_page
        else "no checkout page (MCP_CHECKOUT_SERVE_CHECKOUT_PAGE=false)"
    )
    _say(settings, f"serving MCP over stdio; {page}; data: {describe_database(settings)}.")
    if sys.stdin.isatty():
        _say(
            settings,
            "stdin is a terminal: this process expects an MCP client (Claude Desktop, the Inspector) on "
            "stdin/stdout, not typed input. Ctrl-C stops it; for remote clients run `mcp-checkout serve --http`.",
        )


def _serve(context: Context) -> int:
    from mcp_checkout import hosting

    args = context.args
    settings = context.settings
    if args.toolsets is not None:
        chosen = Settings.model_validate({"toolsets": args.toolsets}).toolsets
        settings = settings.model_copy(update={"toolsets": chosen})
    if args.read_only:
        settings = settings.model_copy(update={"read_only": True})
    if not args.http:
        anyio.run(hosting.serve_stdio, settings, lambda: _announce_stdio(settings))
        return 0
    settings = settings.model_copy(update={"web_host": args.host, "web_port": args.port})
    _check_port(args.host, args.port)
    # Open and migrate once here, so a database or data-directory problem is reported as one line
    # instead of a traceback from inside the HTTP server's start-up.
    context.with_services(_opened)
    base = f"http://{args.host}:{args.port}"
    workers = f" in {args.workers} worker processes (stateless)" if args.workers > 1 else ""
    _say(
        settings,
        f"serving MCP over streamable HTTP at {base}/mcp{workers} (clients need an API key: "
        f"`mcp-checkout keys create`); checkout pages, the Stripe webhook and /healthz, /readyz on the same "
        f"port; data: {describe_database(settings)}.",
    )
    hosting.serve_http(settings, args.host, args.port, args.workers)
    return 0


def _check_port(host: str, port: int) -> None:
    """Fail with one line (not uvicorn's exit code 3 after a start-up) when the address cannot be listened on."""
    from mcp_checkout.cli.failures import CommandFailed

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise CommandFailed(
            f"cannot listen on {host}:{port} ({exc.strerror or exc})",
            "Choose a free port with --port (or another address with --host), or stop the process using it.",
        ) from None


async def _opened(_services: Services) -> None:
    """Nothing to do: opening the services (and migrating) was the check."""


def register(commands: Commands) -> None:
    serve = add_command(
        commands,
        "serve",
        help="serve MCP over stdio (Claude Desktop) plus the checkout page, or over HTTP",
        description="Serve the MCP server. Without --http it speaks MCP over stdin/stdout, as Claude Desktop and "
        "other local clients start it, and serves the buyers' checkout page on http://127.0.0.1:8765 "
        "(MCP_CHECKOUT_WEB_PORT). With --http it serves MCP at /mcp (behind API keys), the checkout page, the "
        "Stripe webhook and health checks on one port. The database is migrated on start. What it is doing is "
        "printed on stderr.",
        examples=[
            "mcp-checkout serve",
            "mcp-checkout serve --data-dir ~/shop",
            "mcp-checkout serve --http --host 0.0.0.0 --port 8000",
            "MCP_CHECKOUT_DATABASE_URL=postgresql+asyncpg://shop@db/shop mcp-checkout serve --http --workers 4",
        ],
        handler=_serve,
    )
    serve.add_argument("--http", action="store_true", help="serve MCP over streamable HTTP at /mcp instead of stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (with --http; default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (with --http; default 8000)")
    serve.add_argument("--workers", type=int, default=1, help="HTTP worker processes (with --http; default 1)")
    serve.add_argument(
        "--toolsets",
        metavar="LIST",
        help="expose only these tool groups, comma-separated: catalog, cart, orders, checkout, merchant, webhooks "
        "(MCP_CHECKOUT_TOOLSETS; default all)",
    )
    serve.add_argument(
        "--read-only", action="store_true", help="expose only tools that change nothing (MCP_CHECKOUT_READ_ONLY)"
    )
