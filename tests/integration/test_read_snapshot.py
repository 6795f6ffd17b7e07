"""A view built from several queries reads ONE snapshot: while a writer keeps changing an order (its status
and its history, committed together), every get_order shows a status that matches the last entry of
its own status_history and an updated_at equal to that entry's time. On PostgreSQL at READ COMMITTED
without a transaction, the order row and its history were read from two different commits."""

from __future__ import annotations

from datetime import timedelta

import anyio
from sqlalchemy import Connection, insert, select, update

from mcp_checkout.domain import Principal
from mcp_checkout.service.container import Services
from mcp_checkout.service.orders import CreateOrder
from mcp_checkout.store.models import order_events, orders

MERCHANT = Principal(id="local", kind="merchant", client="test")
READERS = 8
READS_EACH = 60


async def test_get_order_never_mixes_two_commits(seeded: Services) -> None:
    created = await seeded.orders.create(MERCHANT, CreateOrder(idempotency_key="snapshot", items=[("MUG-01", 1)]))
    order_id = created.order_id
    changes = 0
    done = anyio.Event()

    def flip(conn: Connection) -> None:
        row = conn.execute(select(orders.c.status, orders.c.updated_at).where(orders.c.id == order_id)).one()
        to = "fulfilled" if row.status == "paid" else "paid"
        at = row.updated_at + timedelta(milliseconds=1)
        conn.execute(update(orders).where(orders.c.id == order_id).values(status=to, updated_at=at))
        conn.execute(
            insert(order_events).values(
                order_id=order_id, from_status=row.status, to_status=to, actor="system", reason="test flip", at=at
            )
        )

    async def writer() -> None:
        nonlocal changes
        while not done.is_set():
            await seeded.db.write(flip)
            changes += 1
            await anyio.sleep(0)

    mixed: list[str] = []
    reads = 0

    async def reader() -> None:
        nonlocal reads
        for _ in range(READS_EACH):
            view = await seeded.orders.get(MERCHANT, order_id)
            last = view.status_history[-1]
            if view.status != last.to_status or view.updated_at != last.at:
                mixed.append(f"status {view.status} at {view.updated_at}, history ends {last.to_status} at {last.at}")
            reads += 1
            await anyio.sleep(0)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(writer)
        async with anyio.create_task_group() as readers:
            for _ in range(READERS):
                readers.start_soon(reader)
        done.set()

    assert reads == READERS * READS_EACH and changes >= 5, (reads, changes)
    assert not mixed, f"{len(mixed)} of {reads} reads mixed two commits, e.g. {mixed[0]}"
