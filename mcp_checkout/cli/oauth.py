"""``mcp-checkout oauth``: OAuth clients of ``serve --http`` (hosted connectors, the Inspector)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from mcp_checkout.cli.base import Commands, Context, add_command, add_group

if TYPE_CHECKING:
    from mcp_checkout.service.container import Services


def _oauth(context: Context) -> int:
    args = context.args

    async def run(services: Services) -> int:
        if args.oauth_command == "approve":
            code, expires = await services.oauth.create_approval_code()
            print(code)  # stdout: paste it on the approval page
            print(
                f"paste it on the approval page within 10 minutes (until {expires.isoformat(timespec='seconds')}); "
                "it approves one connection",
                file=sys.stderr,
            )
        elif args.oauth_command == "clients":
            clients = await services.oauth.list_clients()
            if not clients:
                print("no OAuth clients yet: a client registers itself when it first connects", file=sys.stderr)
            for client in clients:
                made = client.created_at.isoformat(timespec="seconds")
                status = "revoked" if client.revoked_at else "active"
                uris = " ".join(str(uri) for uri in client.registration.get("redirect_uris", []))
                print(f"{client.client_id} {status:<7} registered {made} {client.client_name!r} {uris}")
        else:
            await services.oauth.revoke_client(args.client_id)
            print(f"revoked OAuth client {args.client_id} and all its tokens", file=sys.stderr)
        return 0

    return context.with_services(run)


def register(commands: Commands) -> None:
    oauth = add_group(
        commands,
        "oauth",
        help="OAuth clients of serve --http (Claude/ChatGPT connectors, the MCP Inspector)",
        description="Clients that connect to `serve --http` with OAuth register themselves and send you to an "
        "approval page. Approve there with a merchant API key or a one-time code from `oauth approve`.",
        examples=["mcp-checkout oauth approve", "mcp-checkout oauth clients", "mcp-checkout oauth revoke 3f0c…"],
    )
    add_command(
        oauth,
        "approve",
        help="print a one-time code that approves one connection (10 minutes)",
        description="Print a one-time approval code (stdout). Paste it on the approval page a client sent you "
        "to; it works once, within 10 minutes.",
        examples=["mcp-checkout oauth approve"],
        handler=_oauth,
    )
    add_command(
        oauth,
        "clients",
        help="registered clients, oldest first",
        description="List the OAuth clients: id, status, registration time, name and redirect URIs. Never secrets.",
        examples=["mcp-checkout oauth clients"],
        handler=_oauth,
    )
    revoke = add_command(
        oauth,
        "revoke",
        help="revoke a client and every token it holds",
        description="Revoke an OAuth client: its tokens stop working at once and it cannot be approved again.",
        examples=["mcp-checkout oauth revoke 3f0c…"],
        handler=_oauth,
    )
    revoke.add_argument("client_id", help="the client id from `oauth clients`")
