"""logs.configure: third-party loggers never log at DEBUG, and every line is redacted of secret shapes."""

from __future__ import annotations

import logging

import pytest

from mcp_checkout import logs


@pytest.fixture(autouse=True)
def _restore_logging() -> object:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("mcp_checkout").level)
    yield None
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.getLogger("mcp_checkout").setLevel(saved[2])


def test_debug_is_for_this_package_only(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("DEBUG")
    logging.getLogger("mcp_checkout.service.webhooks").debug("ours at debug")
    logging.getLogger("sse_starlette.sse").debug("chunk: theirs at debug")
    logging.getLogger("mcp.server.lowlevel.server").debug("Received message: theirs at debug")
    err = capsys.readouterr().err
    assert "ours at debug" in err
    assert "theirs" not in err


def test_every_line_is_redacted_of_secret_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO")
    secrets = [
        "whsec_nEskRJdPiXjvSYrL/bM/G5VfgJD5Mkf4ZTupRrQ5mSQ=",
        "mcpk_4Jc9bVqf0u7yXo2m1rTzS8aPnLkWe",
        "sk_live_51Habc123def456",
        "pi_3Nabc123_secret_Zx9yW8v",
        "ada.lovelace+shop@example.co.uk",
    ]
    token = "JR9MCCptdH8LbvRFVVrWpIgDOdDynrrolapJ8sKr2SU"
    log = logging.getLogger("mcp_checkout.test")
    log.info("values %s and /checkout/%s/pay", " ".join(secrets), token)
    try:
        raise ValueError(f"Authorization: Bearer {secrets[1]} for {secrets[4]}")
    except ValueError:
        log.exception("failed")
    err = capsys.readouterr().err
    for secret in [*secrets, token]:
        assert secret not in err
    assert "/checkout/[token]/pay" in err and "[email redacted]" in err
