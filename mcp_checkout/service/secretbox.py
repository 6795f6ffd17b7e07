"""Secrets the server must use again (webhook signing secrets), sealed at rest with the server's keyring.

API keys and checkout tokens are stored as hashes; a webhook signing secret cannot be, because every
delivery is signed with it. It is sealed with the server's secret key instead (the same keyring that seals
buyer data, :mod:`mcp_checkout.store.sealing`), so a copy of the database alone (a backup, a replica, a
leaked dump) does not let anyone forge webhooks. Every process that delivers webhooks must have the same key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from mcp_checkout.errors import SecretKeyUnavailable
from mcp_checkout.store.sealing import Keyring

SecretUnavailable = SecretKeyUnavailable  # the name the dispatcher catches


class SecretBox:
    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._mac_keys: dict[str, list[bytes]] = {}

    def sign(self, purpose: str, message: str) -> str:
        """An HMAC-SHA256 tag of ``message`` (url-safe base64) under a key derived for ``purpose`` from
        the server's newest secret key: what the server hands out and later checks (browser cookies)."""
        return _tag(self._keys_for(purpose)[0], message)

    def verify(self, purpose: str, message: str, tag: str) -> bool:
        """Whether ``tag`` is :meth:`sign`'s tag of ``message`` under any of the server's keys (constant time)."""
        return any(hmac.compare_digest(_tag(key, message), tag) for key in self._keys_for(purpose))

    def _keys_for(self, purpose: str) -> list[bytes]:
        if purpose not in self._mac_keys:
            self._mac_keys[purpose] = self._keyring.derive_keys(f"mcp-checkout {purpose} v1".encode())
        return self._mac_keys[purpose]

    def seal(self, plaintext: str) -> str:
        return self._keyring.seal(plaintext)

    def open(self, stored: str) -> str:
        return self._keyring.open(stored)

    def describe(self) -> str:
        """Where the key comes from, for people (never the key itself)."""
        return self._keyring.describe()


def _tag(key: bytes, message: str) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, message.encode(), hashlib.sha256).digest()).decode().rstrip("=")
