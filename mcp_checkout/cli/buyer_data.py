"""``mcp-checkout erase-buyer`` and ``audit``; ``keys rotate-secret`` runs :func:`rotate_secret`."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from mcp_checkout.cli.base import Commands, Context, add_command

if TYPE_CHECKING:
    from mcp_checkout.service.container import Services


async def rotate_secret(services: Services, batch_size: int) -> int:
    from mcp_checkout.service.audit import OPERATOR

    def progress(table: str, changed: int) -> None:
        if changed:
            print(f"{table}: re-sealed {changed}", file=sys.stderr)

    done = await services.buyer_data.rotate_secret(OPERATOR, batch_size=batch_size, after_batch=progress)
    print(
        f"re-sealed {sum(done.resealed.values())} row(s) with the newest key ({services.keyring.describe()}); "
        "older keys can now be removed from MCP_CHECKOUT_SECRET_KEY / secret.key",
        file=sys.stderr,
    )
    return 0


def _erase(context: Context) -> int:
    from mcp_checkout.service.audit import OPERATOR

    args = context.args
    if not args.yes:
        print("erase-buyer replaces the buyer's email, name and addresses for good: add --yes", file=sys.stderr)
        return 2

    async def run(services: Services) -> int:
        erased = await services.buyer_data.erase(OPERATOR, args.email)
        print(json.dumps(erased.model_dump(mode="json"), indent=2))
        return 0

    return context.with_services(run)


def _audit(context: Context) -> int:
    from mcp_checkout.service.audit import OPERATOR

    args = context.args

    async def run(services: Services) -> int:
        page = await services.audit.list_events(
            OPERATOR, action=args.action, actor=args.actor, limit=args.limit, cursor=args.cursor
        )
        if args.json:
            print(json.dumps(page.model_dump(mode="json"), indent=2))
            return 0
        for event in page.events:
            change = json.dumps({"before": event.before, "after": event.after}, separators=(",", ":"))
            when, who = event.at.isoformat(timespec="seconds"), event.principal_id or "-"
            print(f"{when} {event.action:<24} {event.actor:<8} {who} {event.target or '-'} {change}")
        if page.next_cursor:
            print(f"more: --cursor {page.next_cursor}", file=sys.stderr)
        return 0

    return context.with_services(run)


def register(commands: Commands) -> None:
    erase = add_command(
        commands,
        "erase-buyer",
        help="erase one buyer's personal data (orders keep amounts and lines)",
        description="Erase a buyer's personal data at their request: their unpaid orders are canceled (stock "
        "released), then their email, name, phone and addresses in orders, checkout links and stored webhook "
        "bodies become the tombstone [erased]. Amounts, lines and statuses stay. Running it again changes "
        "nothing more. Recorded in the audit log.",
        examples=["mcp-checkout erase-buyer ada@example.org --yes"],
        handler=_erase,
    )
    erase.add_argument("email", help="the buyer's email address")
    erase.add_argument("--yes", action="store_true", help="confirm: the erasure cannot be undone")
    audit = add_command(
        commands,
        "audit",
        help="the audit log of merchant and operator actions, newest first",
        description="Who changed what: prices, stock, products, imports, refunds, status changes, API keys, "
        "webhook endpoints, erasures and key rotations, newest first, with actor, principal, client and "
        "before -> after. Never secrets or buyer data.",
        examples=["mcp-checkout audit", "mcp-checkout audit --action inventory.adjust --json"],
        handler=_audit,
    )
    audit.add_argument("--action", help="only this action, e.g. inventory.adjust")
    audit.add_argument("--actor", choices=["merchant", "operator", "system"], help="only this kind of actor")
    audit.add_argument("--limit", type=int, default=50, choices=range(1, 101), metavar="1-100")
    audit.add_argument("--cursor", help="printed after a full page, for older events")
    audit.add_argument("--json", action="store_true", help="print JSON (for scripts)")
