"""Secrets the server must use again (webhook signing secrets), encrypted at rest with Fernet.

API keys and checkout tokens are stored as hashes; a webhook signing secret cannot be, because every
delivery is signed with it. It is stored encrypted with the server's secret key instead, so a copy of the
database alone (a backup, a replica, a leaked dump) does not let anyone forge webhooks. The key comes from
``MCP_CHECKOUT_SECRET_KEY`` or, if unset, from ``<data dir>/secret.key``, created (mode 0600) the first time a
secret is sealed. Every process that delivers webhooks must have the same key.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

SEALED_PREFIX = "fernet:"


class SecretUnavailable(Exception):
    """A sealed secret cannot be opened here (no key, or another key). The message names the fix."""


class SecretBox:
    def __init__(self, key: str | None, key_file: Path) -> None:
        self._key = key
        self._key_file = key_file
        self._fernet: Fernet | None = None

    def seal(self, plaintext: str) -> str:
        return SEALED_PREFIX + self._cipher(create=True).encrypt(plaintext.encode()).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(SEALED_PREFIX):
            return stored  # written before secrets were sealed
        try:
            return self._cipher(create=False).decrypt(stored.removeprefix(SEALED_PREFIX).encode()).decode()
        except InvalidToken:
            raise SecretUnavailable(
                "a webhook signing secret was sealed with another secret key: give every server process the same "
                "MCP_CHECKOUT_SECRET_KEY (or the same <data dir>/secret.key)"
            ) from None

    def describe(self) -> str:
        """Where the key comes from, for people (never the key itself)."""
        if self._key is not None:
            return "MCP_CHECKOUT_SECRET_KEY"
        return str(self._key_file) if self._key_file.exists() else f"{self._key_file} (created on first use)"

    def _cipher(self, *, create: bool) -> Fernet:
        if self._fernet is None:
            self._fernet = Fernet(self._key.encode() if self._key is not None else self._file_key(create=create))
        return self._fernet

    def _file_key(self, *, create: bool) -> bytes:
        if create and not self._key_file.exists():
            self._key_file.parent.mkdir(parents=True, exist_ok=True)
            draft = self._key_file.with_name(f".{self._key_file.name}.{os.getpid()}")
            descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as key_file:
                key_file.write(Fernet.generate_key())
            try:
                with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
                    os.link(draft, self._key_file)  # appears whole or not at all
            finally:
                draft.unlink()
        try:
            return self._key_file.read_bytes().strip()
        except FileNotFoundError:
            raise SecretUnavailable(
                f"no secret key to open webhook signing secrets: {self._key_file} is missing and "
                "MCP_CHECKOUT_SECRET_KEY is not set; use the key the endpoints were created with"
            ) from None
