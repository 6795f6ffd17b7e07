"""``mcp-checkout doctor``: the go-live checklist."""

from __future__ import annotations

import anyio

from mcp_checkout.cli.base import Commands, Context, add_command


def _doctor(context: Context) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from mcp_checkout.service.container import build_services
    from mcp_checkout.service.golive import ReadinessReport, go_live_report
    from mcp_checkout.service.policy import OPERATOR

    settings = context.settings

    async def run() -> ReadinessReport:
        services = build_services(settings)  # read-only: no migration, unlike serve
        try:
            return await go_live_report(services, OPERATOR)
        finally:
            await services.close()

    report = anyio.run(run)
    if context.args.json:
        print(report.model_dump_json(indent=2))
        return 0 if report.ready else 1
    console = Console()
    style = {"ok": "green", "warn": "yellow", "fail": "bold red"}
    table = Table(title=f"mcp-checkout go-live check ({report.mode})", show_lines=False)
    for column in ("check", "status", "detail"):
        table.add_column(column, overflow="fold")
    for check in report.checks:
        table.add_row(check.name, f"[{style[check.status]}]{check.status}[/]", escape(check.detail))
    console.print(table)
    if report.live_missing:
        live = Table(title="Live payments still need", show_lines=False)
        live.add_column("setting")
        live.add_column("what", overflow="fold")
        for item in report.live_missing:
            live.add_row(item.setting, escape(item.detail))
        console.print(live)
    verdict = "READY for live payments" if report.ready_for_live else f"READY for test mode ({report.mode}), not live"
    console.print(verdict if report.ready else "[bold red]NOT READY[/]: fix the failed checks above")
    return 0 if report.ready else 1


def register(commands: Commands) -> None:
    doctor = add_command(
        commands,
        "doctor",
        help="go-live checklist; exit code 1 when not ready",
        description="Check whether this store is ready to sell: database reachable and migrated, a catalog "
        "with stock, the payment mode and Stripe keys, the webhook secret, the public base URL and the "
        "webhook endpoints' success rate. Exit code 0 when ready, 1 when not. It only reads: it does not "
        "migrate. Secrets are never printed, only their kind.",
        examples=["mcp-checkout doctor", "mcp-checkout doctor --json", "mcp-checkout doctor --data-dir ~/shop"],
        handler=_doctor,
    )
    doctor.add_argument("--json", action="store_true", help="print the report as JSON (for scripts)")
