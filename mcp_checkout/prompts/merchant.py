"""Merchant prompts: the daily report."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from mcp.server import MCPServer

from mcp_checkout import domain
from mcp_checkout.errors import InvalidInput


def _day(text: str) -> date:
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"date must be a day like 2026-05-01 (YYYY-MM-DD); got {text[:40]!r}.", details={"field": "date"}
        ) from None
    start = domain.utc_moment(datetime(day.year, day.month, day.day, tzinfo=UTC), "date")  # refuses 9999-12-31
    domain.utc_moment(start + timedelta(days=1), "date")  # the day's end, sales_summary's period_end
    return day


def register(server: MCPServer[Any]) -> None:
    @server.prompt(title="Merchant daily report")
    def merchant_daily_report(date: str = "") -> str:
        """Write the merchant a short report of one day's sales and the orders that need attention."""
        if date.strip():
            day = _day(date)
            start, end = f"{day.isoformat()}T00:00:00Z", f"{(day + timedelta(days=1)).isoformat()}T00:00:00Z"
            period = f"the day {day.isoformat()} (UTC)"
            summary = f"sales_summary(period_start={start!r}, period_end={end!r})"
            window = f"created_from={start!r}, created_to={end!r}, "
        else:
            period = "the last 24 hours"
            summary = "sales_summary() (its default period is the last 24 hours)"
            window = ""
        return (
            f"Write the merchant a short daily report for {period}.\n\n"
            f"1. Call {summary}.\n"
            f"2. Call list_orders({window}status='pending_payment', limit=100) for orders still waiting for "
            "payment, and note when each expires (expires_at).\n"
            f"3. Call list_orders({window}status='expired', limit=100) for orders that were never paid.\n"
            "   If next_cursor is not null, fetch the next page with the same filters; stop after 5 pages and "
            "say the list was cut.\n\n"
            "Then write the report, at most about 15 lines:\n"
            "- Orders created, by status (orders_created).\n"
            "- Per currency: paid orders, revenue, refunds and net, using each amount's display string "
            "(amounts are integer minor units: 1999 means 19.99). Never add amounts of different currencies.\n"
            "- Top products by units and by revenue.\n"
            "- Orders needing attention: pending ones (number, total, expires_at) and expired ones (number, "
            "total, reference), so the merchant can follow up with those buyers.\n"
            "State only numbers you read from tool results; if there were no orders, say so in one line. "
            "Do not change anything (no cancel, refund or stock changes) while writing the report."
        )
