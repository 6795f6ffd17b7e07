"""Email-locked checkout links: the proof that THIS browser knows the buyer's email, and the throttle on guesses.

The proof is bound to the browser, not to the server-side session: after a right answer the page sets a
cookie holding ``<session id>.<expiry>.<tag>``, the tag an HMAC under a key derived from the server's secret
key (:class:`SecretBox`), so another browser holding the same URL still has to prove the email, and nobody
can mint a proof without the key. Guesses are counted per link in the database (every process shares the
count): at most :data:`ATTEMPTS` per :data:`WINDOW_MINUTES`-minute window, right or wrong, so a burst of
concurrent guesses cannot slip past a read-then-write check.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from mcp_checkout.domain import Clock
from mcp_checkout.errors import RateLimited
from mcp_checkout.service.secretbox import SecretBox
from mcp_checkout.store import api_keys as window_store
from mcp_checkout.store.db import Database

ATTEMPTS = 5
WINDOW_MINUTES = 15
_PURPOSE = "checkout email proof"


class EmailProofs:
    def __init__(self, db: Database, clock: Clock, secrets: SecretBox) -> None:
        self._db = db
        self._clock = clock
        self._secrets = secrets

    def issue(self, session_id: str, expires_at: datetime) -> str:
        """The cookie value proving the email for ``session_id`` until ``expires_at`` (the link's expiry)."""
        message = f"{session_id}.{int(expires_at.timestamp())}"
        return f"{message}.{self._secrets.sign(_PURPOSE, message)}"

    def holds(self, proof: str | None, session_id: str) -> bool:
        """Whether ``proof`` (a cookie value, or None) proves the email for ``session_id`` now."""
        if not proof or len(proof) > 200:
            return False
        message, _, tag = proof.rpartition(".")
        proven_session, _, expiry = message.partition(".")
        if not expiry.isdigit() or not hmac.compare_digest(proven_session.encode(), session_id.encode()):
            return False
        return self._secrets.verify(_PURPOSE, message, tag) and int(expiry) > self._clock().timestamp()

    async def count_attempt(self, link_id: str) -> None:
        """Spend one of the link's email attempts; RateLimited (with when to try again) when none is left."""
        now = self._clock().timestamp()
        minute = int(now // 60)
        # The shared window table is purged once a window is over; keying a window by its LAST minute keeps
        # it until it is over.
        window_end = (minute // WINDOW_MINUTES + 1) * WINDOW_MINUTES
        key = "email:" + hashlib.sha256(link_id.encode()).hexdigest()[:18]
        attempts = await self._db.write(lambda conn: window_store.count_call(conn, key, window_end))
        if attempts > ATTEMPTS:
            wait_minutes = max(1, window_end - minute)
            raise RateLimited(
                f"Too many email attempts for this checkout. For your security, wait {wait_minutes} minute(s) "
                "and try again with the email address the link was sent to.",
                details={"attempts_per_window": ATTEMPTS, "window_minutes": WINDOW_MINUTES},
                retry_after_seconds=wait_minutes * 60,
            )
