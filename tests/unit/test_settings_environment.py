"""`serve --http --workers N` hands the operator's settings to its workers through the environment:
``Settings()`` in a worker must rebuild exactly the same settings, secrets included (not their mask)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from mcp_checkout.config import Settings
from mcp_checkout.hosting import settings_environment


def test_workers_rebuild_exactly_the_operators_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("MCP_CHECKOUT_")]:
        monkeypatch.delenv(name)
    keys = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    operator = Settings(
        data_dir=tmp_path,
        secret_key=keys,
        stripe_secret_key="sk_test_operator123",
        stripe_publishable_key="pk_test_operator123",
        stripe_webhook_secret="whsec_operator123",
        allowed_hosts=["shop.example.com"],
        rate_limit_per_minute=7,
        shutdown_grace_seconds=3.5,
        http_stateless=True,
    )
    environment = settings_environment(operator)
    assert "**********" not in environment.values()
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    worker = Settings()
    assert worker == operator
    assert worker.secret_key is not None and worker.secret_key.get_secret_value() == keys
    assert worker.secret_keys() == operator.secret_keys()
