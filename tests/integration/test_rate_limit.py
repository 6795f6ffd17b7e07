"""The per-key rate limit, as two server processes would share it (two services on one database).

On PostgreSQL every process counts into one row per key and minute. Writing that row on every call
serialised all processes on its row lock (bench/http_scale.py: reads went from 1.0x to 1.8x from 1 to 2
processes once it stopped), so each process writes its count in batches of 1% of the limit (at most 100)
or every 0.25 s, and may run ahead of the shared total by that much. Small limits stay exact.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from mcp_checkout.domain import Principal
from mcp_checkout.errors import RateLimited
from mcp_checkout.service.container import Services, build_services
from mcp_checkout.store import api_keys as key_store
from tests.support import a_fresh_minute

KEY = Principal(id="key:0123456789ab", kind="buyer")


async def spend(services: Services, calls: int) -> int:
    admitted = 0
    for _ in range(calls):
        try:
            await services.access.count_call(KEY)
            admitted += 1
        except RateLimited:
            pass  # refused calls still count: a client hammering past the limit stays refused
    return admitted


async def two_processes(settings: Any, per_minute: int, calls_each: int) -> tuple[int, int]:
    limited = settings.model_copy(update={"rate_limit_per_minute": per_minute})
    first, second = build_services(limited), build_services(limited)
    results: list[int] = []

    async def run(process: Services) -> None:
        results.append(await spend(process, calls_each))

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run, first)
            tasks.start_soon(run, second)
    finally:
        await first.close()
        await second.close()
    return results[0], results[1]


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every batch written to the shared counter (the real store function still runs)."""
    batches: list[int] = []
    real = key_store.count_call

    def counting(conn: Any, key_id: str, window_start: int, calls: int = 1) -> int:
        batches.append(calls)
        return real(conn, key_id, window_start, calls)

    monkeypatch.setattr(key_store, "count_call", counting)
    return batches


def on_postgresql(settings: Any) -> bool:
    return "postgresql" in settings.resolved_database_url()


async def test_a_small_limit_is_exact(settings: Any, writes: list[int]) -> None:
    await a_fresh_minute()
    first, second = await two_processes(settings, per_minute=30, calls_each=40)
    assert first + second == 30 if on_postgresql(settings) else (first, second) == (30, 30)
    if on_postgresql(settings):
        assert writes and set(writes) == {1}  # below 200 calls a minute every call is written
    else:  # one SQLite file is served by one process: each counts in memory, nothing is written
        assert writes == []


async def test_a_large_limit_is_written_in_batches_and_overshoots_by_at_most_the_slack(
    settings: Any, writes: list[int]
) -> None:
    per_minute, slack = 2000, 20
    await a_fresh_minute(40)
    first, second = await two_processes(settings, per_minute=per_minute, calls_each=1500)
    if not on_postgresql(settings):
        assert (first, second) == (1500, 1500) and writes == []  # each in-memory counter stays under 2000
        return
    assert per_minute <= first + second <= per_minute + 2 * slack, (first, second)
    assert len(writes) <= 2 * 1500 // slack + 50  # batches of up to 20 (plus the 0.25 s flushes), not 3,000
    assert max(writes) == slack
