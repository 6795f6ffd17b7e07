"""bench/run.py's create_order rates take turns (bench/common.interleaved_throughput): every case makes all its
calls, in turns of a block, and its rate counts the time of its own turns only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from bench.common import interleaved_throughput


async def test_cases_take_turns_of_a_block_until_each_made_its_calls() -> None:
    seen: list[tuple[str, int]] = []

    def recorder(name: str) -> Callable[[int], Awaitable[None]]:
        async def call(index: int) -> None:
            seen.append((name, index))

        return call

    rates = await interleaved_throughput({"raw": recorder("raw"), "service": recorder("service")}, 7, 1, 3)

    assert seen == [
        *(("raw", i) for i in (0, 1, 2)),
        *(("service", i) for i in (0, 1, 2)),
        *(("raw", i) for i in (3, 4, 5)),
        *(("service", i) for i in (3, 4, 5)),
        ("raw", 6),
        ("service", 6),
    ]
    assert set(rates) == {"raw", "service"}


async def test_a_rate_counts_only_its_own_turns() -> None:
    async def slow(_index: int) -> None:
        await anyio.sleep(0.004)

    async def fast(_index: int) -> None:
        await anyio.sleep(0.001)

    rates = await interleaved_throughput({"slow": slow, "fast": fast}, 10, 1, 5)

    assert rates["slow"] < 250  # 4 ms a call at best
    assert rates["fast"] > 1.5 * rates["slow"]  # the slow turns are not charged to the fast case


async def test_concurrent_callers_share_a_turn() -> None:
    running = 0
    most = 0

    async def call(_index: int) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await anyio.sleep(0.002)
        running -= 1

    await interleaved_throughput({"only": call}, 16, 4, 8)

    assert most == 4
