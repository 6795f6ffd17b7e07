"""The business's message-signing keys and the HTTP Message Signatures (RFC 9421) they make.

One ES256 (P-256) key is generated the first time one is needed, its private half stored sealed with the
server's keyring (``signing_keys.private_key``), its public half published as a JWK (``kid`` from its RFC 7638
thumbprint). Rotation adds a newer key that signs from then on while the older ones stay published until
retired (verifiers accept any published key). Signatures are made by the ``http-message-signatures``
library: ``Content-Digest`` (RFC 9530, sha-256 of the raw body), then ``Signature-Input``/``Signature``
over the covered components, ECDSA as raw ``r||s`` as RFC 9421 asks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms
from sqlalchemy import Connection

from mcp_checkout.domain import Clock, Principal
from mcp_checkout.errors import Forbidden, InvalidInput, InvalidState
from mcp_checkout.service import audit
from mcp_checkout.store import signing_keys as store
from mcp_checkout.store.db import Database

log = logging.getLogger(__name__)

# What a signed POST with a JSON body covers (the spec's REST request signing, without idempotency-key).
POST_COMPONENTS = ("@method", "@authority", "@path", "content-digest", "content-type")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The public key as an EC JWK (RFC 7517), ``kid`` ``es256-`` + its RFC 7638 thumbprint."""
    numbers = key.public_numbers()
    members = {"crv": "P-256", "kty": "EC", "x": _b64url(numbers.x.to_bytes(32, "big")),
               "y": _b64url(numbers.y.to_bytes(32, "big"))}  # fmt: skip
    thumbprint = _b64url(hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())
    return {"kid": f"es256-{thumbprint}", **members, "use": "sig", "alg": "ES256"}


def new_key() -> tuple[str, dict[str, str]]:
    """A fresh P-256 key: (PKCS#8 PEM of the private key, public JWK)."""
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem, public_jwk(private.public_key())


@dataclass
class _Message:
    """What the signer reads and writes: method, absolute URL, headers (a dict keeps one line per name)."""

    method: str
    url: str
    headers: dict[str, str]


class _OneKey(HTTPSignatureKeyResolver):
    def __init__(self, kid: str, pem: str) -> None:
        self._kid = kid
        self._pem = pem.encode()

    def resolve_private_key(self, key_id: str) -> bytes:
        if key_id != self._kid:
            raise KeyError(key_id)
        return self._pem

    def resolve_public_key(self, key_id: str) -> None:
        return None


def _merchant_only(principal: Principal) -> None:
    if principal.kind != "merchant":
        raise Forbidden("Only the merchant (mcp-checkout ucp-keys at the command line) manages signing keys.")


class SigningKeys:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def _add(self, conn: Connection, generation: int) -> str | None:
        pem, jwk = new_key()
        values = {"generation": generation, "kid": jwk["kid"], "public_jwk": jwk,
                  "private_key": pem, "status": store.ACTIVE, "created_at": self._clock()}  # fmt: skip
        return jwk["kid"] if store.insert_key(conn, values) else None

    async def ensure(self) -> None:
        """Generate the first key unless one is active (safe from several processes at once: the first
        writer of generation 1 wins, the others find its key)."""
        if await self._db.read(store.active, quick=True):
            return

        def run(conn: Connection) -> None:
            # Always generation 1, never "the next one": a process that looked before another's first key
            # was committed must collide with it, not add a second key.
            if not store.active(conn) and self._add(conn, 1) is not None:
                log.info("generated the business's first message-signing key")

        await self._db.write(run)

    async def published(self) -> list[dict[str, Any]]:
        """The active public keys (JWK), newest (the signing one) first."""
        await self.ensure()
        return [dict(row["public_jwk"]) for row in await self._db.read(store.active, quick=True)]

    async def rotate(self, principal: Principal) -> str:
        """A new key signs from now on; the older ones stay published until retired. Returns the new kid."""
        _merchant_only(principal)

        def run(conn: Connection) -> str:
            kid = self._add(conn, store.next_generation(conn))
            if kid is None:
                raise InvalidState("Another rotation ran at the same moment; list the keys and retry if needed.")
            audit.record(conn, principal, "signing_key.rotate", kid, after={"kid": kid}, at=self._clock())
            return kid

        return await self._db.write(run)

    async def retire(self, principal: Principal, kid: str) -> None:
        """Stop publishing a key (after the grace period, or at once if it leaked); never the last one."""
        _merchant_only(principal)

        def run(conn: Connection) -> None:
            active = [row["kid"] for row in store.active(conn)]
            if kid not in active:
                raise InvalidInput(f"No active signing key {kid!r}; active: {', '.join(active) or 'none'}.")
            if len(active) == 1:
                raise InvalidState("This is the only active signing key: rotate first, then retire the old one.")
            store.retire(conn, kid, self._clock())
            audit.record(conn, principal, "signing_key.retire", kid, before={"status": "active"},
                         after={"status": "retired"}, at=self._clock())  # fmt: skip

        await self._db.write(run)

    async def listing(self) -> Sequence[Mapping[str, Any]]:
        """Every key (no private halves): kid, status, created and retired times."""
        rows = await self._db.read(store.every)
        return [{k: row[k] for k in ("kid", "status", "created_at", "retired_at")} for row in rows]

    async def sign_post(self, url: str, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        """``headers`` plus ``Content-Digest``, ``Signature-Input`` and ``Signature`` (label ``sig1``) for a
        POST of ``body`` (JSON) to ``url``, signed by the newest key."""
        await self.ensure()
        row = await self._db.read(store.newest_private)
        assert row is not None
        message = _Message("POST", url, {**headers, "Content-Type": "application/json"})
        signer = HTTPMessageSigner(
            signature_algorithm=algorithms.ECDSA_P256_SHA256, key_resolver=_OneKey(row["kid"], row["private_key"])
        )
        signer.sign(
            message,
            key_id=row["kid"],
            label="sig1",
            include_alg=False,  # the spec: the algorithm follows from the key's crv, not from Signature-Input
            covered_component_ids=POST_COMPONENTS,
            body=body,
            created=self._clock(),
        )
        return message.headers
