"""Secrets the server must use again (webhook signing secrets), sealed at rest with the server's keyring.

API keys and checkout tokens are stored as hashes; a webhook signing secret cannot be, because every
delivery is signed with it. It is sealed with the server's secret key instead (the same keyring that seals
buyer data, :mod:`mcp_checkout.store.sealing`), so a copy of the database alone (a backup, a replica, a
leaked dump) does not let anyone forge webhooks. Every process that delivers webhooks must have the same key.
"""

from __future__ import annotations

from mcp_checkout.errors import SecretKeyUnavailable
from mcp_checkout.store.sealing import Keyring

SecretUnavailable = SecretKeyUnavailable  # the name the dispatcher catches


class SecretBox:
    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def seal(self, plaintext: str) -> str:
        return self._keyring.seal(plaintext)

    def open(self, stored: str) -> str:
        return self._keyring.open(stored)

    def describe(self) -> str:
        """Where the key comes from, for people (never the key itself)."""
        return self._keyring.describe()
