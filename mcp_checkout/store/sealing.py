"""Buyer personal data and server secrets sealed at rest: the keyring and the sealed column types.

Every value in a column of type :class:`SealedText` or :class:`SealedJSON` (buyer emails, names, phones,
addresses, webhook event bodies) is encrypted with Fernet when it is written and opened when it is read, here
and nowhere else: services and repositories see plain values, the database file, its backups and dumps only
``fernet:…`` tokens. Look-ups by email use :meth:`Keyring.email_hashes` (HMAC-SHA256 under a key derived
from each secret key), never the email itself.

Keys: ``MCP_CHECKOUT_SECRET_KEY`` (one Fernet key, or several separated by commas, newest first) or, when
unset, ``<data dir>/secret.key`` (one key a line, newest first; created with one key, mode 0600, the first
time something is sealed). The newest key seals; every key opens (``MultiFernet``), so an operator rotates
by putting a new key first and running ``mcp-checkout keys rotate-secret``, which re-seals every value with
it; then the old key can go.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, Text, TypeDecorator
from sqlalchemy.engine import Dialect

from mcp_checkout.domain import parse_secret_keys
from mcp_checkout.errors import SecretKeyUnavailable
from mcp_checkout.store.db import Database

SEALED_PREFIX = "fernet:"
_LOOKUP_INFO = b"mcp-checkout buyer email lookup v1"


def normalise_email(email: str) -> str:
    return email.strip().lower()


class Keyring:
    """The server's secret keys, newest first: seal with the newest, open with any."""

    def __init__(self, keys: Sequence[str] = (), key_file: Path | None = None) -> None:
        self._configured = list(keys)
        self._key_file = key_file
        self._keys: list[str] | None = list(keys) if keys else None
        self._fernet: MultiFernet | None = None
        self._newest: Fernet | None = None
        self._lookup_keys: list[bytes] | None = None

    # -------------------------------------------------------------- sealing
    def seal(self, plaintext: str) -> str:
        return SEALED_PREFIX + self._cipher(create=True).encrypt(plaintext.encode()).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(SEALED_PREFIX):
            return stored  # written before this column was sealed (the migration seals what it finds)
        try:
            return self._cipher(create=False).decrypt(stored.removeprefix(SEALED_PREFIX).encode()).decode()
        except InvalidToken:
            raise SecretKeyUnavailable(
                "A value in the database was sealed with a secret key this server does not have. Give every "
                "server process the same MCP_CHECKOUT_SECRET_KEY (or <data dir>/secret.key), keeping old keys "
                "after the newest until `mcp-checkout keys rotate-secret` has run."
            ) from None

    def is_current(self, stored: str) -> bool:
        """True if ``stored`` is sealed with the newest key (nothing for a rotation to do)."""
        if not stored.startswith(SEALED_PREFIX):
            return False
        self._cipher(create=False)
        assert self._newest is not None
        try:
            self._newest.decrypt(stored.removeprefix(SEALED_PREFIX).encode())
        except InvalidToken:
            return False
        return True

    def reseal(self, stored: str) -> str:
        """``stored`` sealed with the newest key (a clear value is sealed)."""
        return self.seal(self.open(stored))

    # -------------------------------------------------------------- look-ups
    def email_hash(self, email: str) -> str:
        """The keyed hash stored beside a sealed email (under the newest key)."""
        return self.email_hashes(email)[0]

    def email_hashes(self, email: str) -> list[str]:
        """The email's keyed hash under every key, newest first: what a look-up matches, so rows not yet
        re-sealed after a key change are still found."""
        if self._lookup_keys is None:
            self._lookup_keys = self.derive_keys(_LOOKUP_INFO)
        data = normalise_email(email).encode()
        return [hmac.new(key, data, hashlib.sha256).hexdigest() for key in self._lookup_keys]

    def derive_keys(self, info: bytes) -> list[bytes]:
        """A 32-byte key for one purpose (``info``) derived (HKDF) from every secret key, newest first:
        sign with the first, accept any (a rotation does not void what older keys signed)."""
        return [
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(
                base64.urlsafe_b64decode(key.encode())
            )
            for key in self._load(create=True)
        ]

    # -------------------------------------------------------------- keys
    def describe(self) -> str:
        """Where the keys come from, for people (never a key)."""
        if self._configured:
            return f"MCP_CHECKOUT_SECRET_KEY ({len(self._configured)} key(s))"
        if self._key_file is None:
            return "no secret key configured"
        return str(self._key_file) if self._key_file.exists() else f"{self._key_file} (created on first use)"

    def key_count(self) -> int:
        return len(self._load(create=False))

    def _cipher(self, *, create: bool) -> MultiFernet:
        if self._fernet is None:
            fernets = [Fernet(key.encode()) for key in self._load(create=create)]
            self._newest = fernets[0]
            self._fernet = MultiFernet(fernets)
        return self._fernet

    def _load(self, *, create: bool) -> list[str]:
        if self._keys is None:
            self._keys = self._file_keys(create=create)
        return self._keys

    def _file_keys(self, *, create: bool) -> list[str]:
        if self._key_file is None:
            raise SecretKeyUnavailable(
                "No secret key is configured to seal or open buyer data. Set MCP_CHECKOUT_SECRET_KEY (see the "
                "README's Security section)."
            )
        if create and not self._key_file.exists():
            self._key_file.parent.mkdir(parents=True, exist_ok=True)
            draft = self._key_file.with_name(f".{self._key_file.name}.{os.getpid()}")
            descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as key_file:
                key_file.write(Fernet.generate_key() + b"\n")
            try:
                with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
                    os.link(draft, self._key_file)  # appears whole or not at all
            finally:
                draft.unlink()
        try:
            text = self._key_file.read_text()
        except FileNotFoundError:
            raise SecretKeyUnavailable(
                f"No secret key to open sealed data: {self._key_file} is missing and MCP_CHECKOUT_SECRET_KEY is "
                "not set. Restore the key the data was sealed with."
            ) from None
        try:
            keys = parse_secret_keys(text)
        except ValueError as exc:
            raise SecretKeyUnavailable(
                f"{self._key_file}: {exc}. Fix the file (one key a line, newest first)."
            ) from None
        if not keys:
            raise SecretKeyUnavailable(f"{self._key_file} holds no key. Restore the key the data was sealed with.")
        return keys


# ---------------------------------------------------------------- one keyring per database (engine dialect)
_KEYRINGS: weakref.WeakKeyDictionary[Dialect, Keyring] = weakref.WeakKeyDictionary()


def bind(dialect: Dialect, keyring: Keyring) -> None:
    """Seal and open this engine's sealed columns with ``keyring``."""
    _KEYRINGS[dialect] = keyring


def bind_database(db: Database, keyring: Keyring) -> None:
    """Seal and open ``db``'s sealed columns with ``keyring`` (every engine of it shares one dialect)."""
    engine = db.sync_engine if db.dialect == "sqlite" else db.async_engine.sync_engine
    bind(engine.dialect, keyring)


def keyring_of(dialect: Dialect) -> Keyring:
    try:
        return _KEYRINGS[dialect]
    except KeyError:
        raise SecretKeyUnavailable(
            "This database connection has no secret key to seal or open buyer data; open the database "
            "through the server's settings (MCP_CHECKOUT_SECRET_KEY or <data dir>/secret.key)."
        ) from None


def email_hash(conn: Connection, email: str | None) -> str | None:
    """The keyed hash to store beside a sealed email (None for no email)."""
    return None if email is None else keyring_of(conn.dialect).email_hash(email)


def email_hashes(conn: Connection, email: str) -> list[str]:
    """What an email look-up matches: its keyed hash under every key (rows not yet re-sealed included)."""
    return keyring_of(conn.dialect).email_hashes(email)


class SealedText(TypeDecorator[str]):
    """Text sealed with the database's keyring; ``None`` stays NULL."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else keyring_of(dialect).seal(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else keyring_of(dialect).open(value)


class SealedJSON(TypeDecorator[Any]):
    """A JSON value sealed with the database's keyring; ``None`` stays NULL."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keyring_of(dialect).seal(json.dumps(value, separators=(",", ":"), ensure_ascii=False))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, str):  # a JSON column not yet migrated (the driver parsed it)
            return value
        return json.loads(keyring_of(dialect).open(value))
