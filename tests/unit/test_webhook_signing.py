"""Standard Webhooks signing, backoff and input rules of the outbound webhooks (no database)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from mcp_checkout.errors import InvalidInput
from mcp_checkout.service.webhook_dispatch import backoff_seconds, retry_after_seconds
from mcp_checkout.service.webhook_outbox import EVENT_TYPES
from mcp_checkout.service.webhook_signing import new_secret, sign
from mcp_checkout.service.webhook_urls import check_url
from mcp_checkout.service.webhooks import check_events, p95


def test_secrets_are_whsec_and_32_random_bytes() -> None:
    one, two = new_secret(), new_secret()
    assert one.startswith("whsec_") and one != two
    assert len(base64.b64decode(one.removeprefix("whsec_"))) == 32


def test_our_signature_is_the_one_the_reference_library_makes() -> None:
    secret = new_secret()
    moment = datetime(2026, 11, 26, 1, 2, 3, tzinfo=UTC)
    body = '{"type":"order.paid","data":{"order_id":"ord_1","note":"caf\u00e9"}}'
    ours = sign(secret, "msg_abc", int(moment.timestamp()), body)
    assert ours == Webhook(secret).sign("msg_abc", moment, body)
    assert ours.startswith("v1,")


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    for attempt in range(1, 40):
        ceiling = min(60.0, 2.0 * 2 ** (attempt - 1))
        samples = [backoff_seconds(attempt, 2.0, 60.0) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
    assert max(backoff_seconds(10, 2.0, 60.0) for _ in range(500)) > 30  # jitter spans the range
    assert backoff_seconds(1, 2.0, 60.0, retry_after=30) >= 30  # Retry-After honoured...
    assert backoff_seconds(1, 2.0, 60.0, retry_after=3600) <= 60  # ...within the cap


def test_retry_after_as_seconds_or_http_date() -> None:
    now = datetime(2026, 11, 26, 1, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7", now) == 7
    assert retry_after_seconds("Thu, 26 Nov 2026 01:00:30 GMT", now) == 30
    assert retry_after_seconds("soon", now) is None and retry_after_seconds(None, now) is None
    assert retry_after_seconds((now - timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S GMT"), now) == 0


def test_p95_nearest_rank() -> None:
    assert p95([]) is None
    assert p95([1.0]) == 1.0
    assert p95([float(n) for n in range(1, 101)]) == 95.0


def test_urls_and_event_types() -> None:
    assert check_url(" https://erp.example/hooks?x=1 ", live=True) == "https://erp.example/hooks?x=1"
    assert check_url("http://127.0.0.1:9000/h", live=False) == "http://127.0.0.1:9000/h"
    for bad in ("http://erp.example/h", "ftp://erp.example/h", "https://u:p@erp.example/h", "https://e.example/#x"):
        with pytest.raises(InvalidInput):
            check_url(bad, live=True)
    assert check_events(["order.paid", " order.paid", "order.canceled"]) == ["order.paid", "order.canceled"]
    assert set(EVENT_TYPES) >= {"order.created", "order.paid", "order.canceled", "order.expired", "order.refunded"}
    assert {"order.partially_fulfilled", "order.fulfilled"} <= set(EVENT_TYPES)
    for bad_events in ([], [""], ["order.shipped"]):
        with pytest.raises(InvalidInput):
            check_events(bad_events)
