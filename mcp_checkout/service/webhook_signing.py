"""Standard Webhooks signing: the signing secret and the headers of one signed POST.

Signatures are made by the ``standardwebhooks`` library, the reference implementation receivers verify
with, so what we send and what they check cannot drift apart.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format prefix, not a secret)
USER_AGENT = "mcp-checkout-webhooks/1"


def new_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes, the form the standardwebhooks libraries accept."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value for ``body`` sent as ``message_id`` at Unix second ``timestamp``."""
    return Webhook(secret).sign(message_id, datetime.fromtimestamp(timestamp, UTC), body)


def signed_headers(secret: str, message_id: str, timestamp: int, body: str) -> dict[str, str]:
    """Every header of one delivery attempt: JSON, ``webhook-id`` (stable across retries),
    ``webhook-timestamp`` (this attempt) and ``webhook-signature``."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }
