"""`serve --http --workers 2` with MCP_CHECKOUT_SECRET_KEY set (what the README asks for on PostgreSQL):
the workers start with the operator's key (not its `**********` mask), serve a purchase, and one of them
signs and delivers the order.paid webhook with the endpoint secret sealed under that key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from cryptography.fernet import Fernet

from tests.e2e.servers import running
from tests.e2e.test_webhook_delivery import buy_and_pay, prepare, shop_env
from tests.fakes.webhook_receiver import Receiver, verify_python, wait_for


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running_receiver:
        yield running_receiver


def test_workers_get_the_secret_key_and_sign_a_delivery(tmp_path: Path, receiver: Receiver) -> None:
    env = shop_env(tmp_path, MCP_CHECKOUT_SECRET_KEY=Fernet.generate_key().decode())
    key, _endpoint_id, secret = prepare(env, tmp_path, receiver, "order.paid")
    assert not (tmp_path / "secret.key").exists()  # sealed with the configured key, not a key file
    with running(env, tmp_path / "logs", 1, "--workers", "2") as [server]:
        order_id = anyio.run(buy_and_pay, server, key)
        wait_for(lambda: len(receiver.delivered()) == 1, timeout=30)
        log = server.log_tail(50_000)
    [delivery] = receiver.delivered()
    event = verify_python(secret, delivery)
    assert event["type"] == "order.paid" and event["data"]["order_id"] == order_id
    assert "Started parent process" in log, log  # a supervisor: the delivery was made by a worker
    assert "Traceback" not in log and "**********" not in log, log
