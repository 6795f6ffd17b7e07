"""``mcp-checkout webhooks``: signed order events to the merchant's own systems.

Data goes to stdout, notes to stderr; the signing secret is printed once, at ``add``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from mcp_checkout.cli.base import Commands, Context, add_command, add_group

if TYPE_CHECKING:
    from mcp_checkout.service.container import Services


def _webhooks(context: Context) -> int:
    args = context.args
    command = args.webhooks_command

    async def run(services: Services) -> Any:
        from mcp_checkout.service.policy import OPERATOR

        hooks = services.webhooks
        if command == "add":
            return await hooks.create_endpoint(OPERATOR, args.url, args.events.split(","), args.description)
        if command == "list":
            return await hooks.list_endpoints(OPERATOR)
        if command == "deactivate":
            return await hooks.deactivate_endpoint(OPERATOR, args.endpoint_id)
        if command == "deliveries":
            return await hooks.list_deliveries(
                OPERATOR, endpoint_id=args.endpoint, status=args.status, limit=args.limit, cursor=args.cursor
            )
        if command == "metrics":
            return await hooks.metrics(OPERATOR, args.window_minutes)
        return await hooks.replay(OPERATOR, args.delivery_id)

    result = context.with_services(run)
    if command == "add":
        print(f"{result.endpoint.endpoint_id} {result.signing_secret}")
        print("the signing secret (whsec_…) is shown only this once: store it with the receiver", file=sys.stderr)
    elif getattr(args, "json", False) or command in ("deactivate", "replay"):
        print(result.model_dump_json(indent=2))
    elif command == "list":
        if not result.endpoints:
            print("no webhook endpoints yet: add one with `mcp-checkout webhooks add URL --events …`", file=sys.stderr)
        for hook in result.endpoints:
            print(f"{hook.endpoint_id}  {hook.status:<8} {','.join(hook.events):<40} {hook.url}  {hook.description}")
    elif command == "deliveries":
        if not result.deliveries:
            print("no deliveries match", file=sys.stderr)
        for row in result.deliveries:
            due = row.next_attempt_at.isoformat(timespec="seconds") if row.next_attempt_at else "-"
            code = row.last_status_code or "-"
            print(f"{row.delivery_id}  {row.status:<9} attempts={row.attempts} last={code} next={due} "
                  f"{row.event_type} {row.order_id or ''} {row.endpoint_url}")  # fmt: skip
        if result.next_cursor:
            print(f"older deliveries: add --cursor {result.next_cursor}", file=sys.stderr)
    else:
        rate = "n/a" if result.success_rate is None else f"{result.success_rate:.1%}"
        p95 = "n/a" if result.p95_delivery_seconds is None else f"{result.p95_delivery_seconds:.2f}s"
        counts = f"pending {result.pending}, failed {result.failed}, abandoned {result.abandoned}"
        print(
            f"last {result.window_minutes} min: {result.created} deliveries, success rate {rate}, {counts}, p95 {p95}"
        )
    return 0


def register(commands: Commands) -> None:
    hooks = add_group(
        commands,
        "webhooks",
        help="signed order events to your own systems (ERP, shop backend)",
        description="Order events (order.created, order.paid, order.canceled, …) sent as signed Standard "
        "Webhooks POSTs to your own systems, at least once, retried with backoff. The serving processes "
        "deliver them; these commands manage endpoints and show deliveries.",
        examples=[
            "mcp-checkout webhooks add https://erp.example/hooks --events order.paid,order.canceled --description ERP",
            "mcp-checkout webhooks list",
            "mcp-checkout webhooks deliveries --status failed",
            "mcp-checkout webhooks metrics --window-minutes 60",
            "mcp-checkout webhooks replay msg_…",
            "mcp-checkout webhooks deactivate we_…",
        ],
    )
    add = add_command(
        hooks,
        "add",
        help="register an endpoint; prints its id and signing secret once",
        description="Register an endpoint. stdout gets its id and signing secret (whsec_…), shown only this "
        "once: store the secret with the receiver, which verifies each POST with it.",
        examples=["mcp-checkout webhooks add https://erp.example/hooks --events order.paid,order.canceled"],
        handler=_webhooks,
    )
    add.add_argument("url", help="https URL that receives the POSTs")
    add.add_argument("--events", required=True, help="comma-separated, e.g. order.paid,order.canceled")
    add.add_argument("--description", default="", help="what the endpoint is for")
    listing = add_command(
        hooks,
        "list",
        help="endpoints (never their secrets)",
        description="List the endpoints: id, status, events, URL and description (never their secrets).",
        examples=["mcp-checkout webhooks list", "mcp-checkout webhooks list --json"],
        handler=_webhooks,
    )
    listing.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    deactivate = add_command(
        hooks,
        "deactivate",
        help="stop sending to an endpoint",
        description="Stop sending to an endpoint; its delivery history stays listed.",
        examples=["mcp-checkout webhooks deactivate we_…"],
        handler=_webhooks,
    )
    deactivate.add_argument("endpoint_id", help="we_… from `webhooks list`")
    deliveries = add_command(
        hooks,
        "deliveries",
        help="recent deliveries, newest first",
        description="Recent deliveries, newest first, with their status, attempts, last HTTP status and next try.",
        examples=[
            "mcp-checkout webhooks deliveries",
            "mcp-checkout webhooks deliveries --endpoint we_… --status failed",
        ],
        handler=_webhooks,
    )
    deliveries.add_argument("--endpoint", help="only this endpoint id")
    deliveries.add_argument("--status", choices=["pending", "delivered", "failed", "abandoned"])
    deliveries.add_argument("--cursor", help="from the previous page's last line, for older deliveries")
    deliveries.add_argument("--limit", type=int, default=50, choices=range(1, 101), metavar="1-100")
    deliveries.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    metrics = add_command(
        hooks,
        "metrics",
        help="success rate, pending, abandoned, p95 latency",
        description="Delivery figures over a window: success rate, pending, failed, abandoned, p95 latency.",
        examples=["mcp-checkout webhooks metrics", "mcp-checkout webhooks metrics --window-minutes 60 --json"],
        handler=_webhooks,
    )
    metrics.add_argument("--window-minutes", type=int, default=1440, help="default: the last 24 hours")
    metrics.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    replay = add_command(
        hooks,
        "replay",
        help="send one delivery again now",
        description="Send one delivery again now (same webhook-id, so receivers can deduplicate it).",
        examples=["mcp-checkout webhooks replay msg_…"],
        handler=_webhooks,
    )
    replay.add_argument("delivery_id", help="msg_… from `webhooks deliveries`")
