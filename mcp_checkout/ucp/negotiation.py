"""Who is calling and at which protocol version: the ``UCP-Agent`` header, the platform's profile, and
the protocol errors of discovery and negotiation (``{"code", "content"}`` with the spec's status codes).

Every request names its platform's profile (``UCP-Agent: profile="https://…"``, RFC 8941 dictionary).
The profile is fetched over HTTPS (no redirects, a timeout and a size bound), cached for a TTL in a
bounded LRU, and its ``ucp.version`` must be one this server speaks, else ``version_unsupported``.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import http_sf
import httpx
from pydantic import ValidationError
from ucp_sdk.models.schemas.shopping.order import PlatformSchema as OrderConfig
from ucp_sdk.models.schemas.ucp import Base as UcpMetadata

from mcp_checkout.ucp import spec


class UcpProblem(Exception):
    """A protocol-level refusal: HTTP ``status`` with the body ``{"code", "content"}``."""

    def __init__(self, status: int, code: str, content: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(content)
        self.status = status
        self.code = code
        self.content = content
        self.headers = dict(headers or {})

    def body(self) -> dict[str, str]:
        return {"code": self.code, "content": self.content}


def agent_profile_url(header: str | None, *, allow_http: bool) -> str:
    """The platform profile URL from a ``UCP-Agent`` header value, or ``invalid_profile_url`` (400)."""
    if not header:
        raise UcpProblem(
            400, "invalid_profile_url", 'Send the UCP-Agent header: profile="https://<platform>/.well-known/ucp".'
        )
    try:
        parsed = http_sf.parse(header.encode(), tltype="dictionary")
    except Exception as exc:  # http_sf raises ValueError and friends on bad syntax
        raise UcpProblem(
            400, "invalid_profile_url", 'The UCP-Agent header is not an RFC 8941 dictionary like profile="https://…".'
        ) from exc
    member = parsed.get("profile") if isinstance(parsed, dict) else None
    url = member[0] if isinstance(member, tuple) else None
    if not isinstance(url, str):
        raise UcpProblem(400, "invalid_profile_url", 'UCP-Agent needs a quoted profile URL: profile="https://…".')
    return checked_profile_url(url, allow_http=allow_http)


def checked_profile_url(url: Any, *, allow_http: bool) -> str:
    """``url`` if it is an absolute https (or, when allowed, http) URL, else ``invalid_profile_url``."""
    if not isinstance(url, str):
        raise UcpProblem(400, "invalid_profile_url", "The platform profile URL must be an absolute https URL.")
    parts = urlsplit(url)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname or len(url) > 2048:
        raise UcpProblem(400, "invalid_profile_url", "The platform profile URL must be an absolute https URL.")
    return url


class ProfileResolver:
    """Fetches platform profiles and remembers their protocol version for ``ttl_seconds`` (bounded LRU)."""

    def __init__(
        self,
        *,
        ttl_seconds: float = 300.0,
        max_entries: int = 256,
        timeout_seconds: float = 5.0,
        max_bytes: int = 256_000,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._timeout = timeout_seconds
        self._max_bytes = max_bytes
        self._transport = transport
        self._cache: OrderedDict[str, tuple[float, PlatformProfile]] = OrderedDict()

    async def version(self, url: str) -> str:
        """The protocol version the platform at ``url`` declares (fetched, or from the cache)."""
        return (await self.profile(url)).version

    async def order_webhook_url(self, url: str) -> str | None:
        """Where the platform at ``url`` takes order events: its order capability's ``config.webhook_url``."""
        return (await self.profile(url)).order_webhook_url

    async def profile(self, url: str) -> PlatformProfile:
        """What the platform at ``url`` declares (fetched, or from the cache)."""
        now = time.monotonic()
        cached = self._cache.get(url)
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(url)
            return cached[1]
        profile = await self._fetch(url)
        self._cache[url] = (now + self._ttl, profile)
        self._cache.move_to_end(url)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return profile

    async def _fetch(self, url: str) -> PlatformProfile:
        unreachable = f"Could not fetch the platform profile at {url}"
        try:
            async with (
                httpx.AsyncClient(follow_redirects=False, timeout=self._timeout, transport=self._transport) as client,
                client.stream("GET", url, headers={"Accept": "application/json"}) as response,
            ):
                if response.status_code != 200:
                    raise UcpProblem(424, "profile_unreachable", f"{unreachable}: it answered {response.status_code}.")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise UcpProblem(
                            422, "profile_malformed", f"The platform profile is over {self._max_bytes} bytes."
                        )
        except httpx.HTTPError as exc:
            raise UcpProblem(424, "profile_unreachable", f"{unreachable} ({type(exc).__name__}).") from exc
        try:
            document = json.loads(body)
            metadata = UcpMetadata.model_validate(document["ucp"])
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            raise UcpProblem(
                422, "profile_malformed", "The platform profile is not JSON with a ucp object and a ucp.version."
            ) from exc
        ucp = document["ucp"]
        return PlatformProfile(str(metadata.version), _order_webhook_url(ucp), _declared(ucp.get("capabilities")))


@dataclass(frozen=True)
class PlatformProfile:
    """What negotiation needs of a platform profile: its protocol version, order webhook URL, and each
    capability's declared entries (``version`` and ``extends``)."""

    version: str
    order_webhook_url: str | None = None
    capabilities: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)


def _declared(capabilities: Any) -> dict[str, tuple[Mapping[str, Any], ...]]:
    """A profile's ``capabilities`` registry (name → entries), keeping the entries that name a version."""
    if not isinstance(capabilities, dict):
        return {}
    return {
        name: tuple(e for e in entries if isinstance(e, dict) and isinstance(e.get("version"), str))
        for name, entries in capabilities.items()
        if isinstance(name, str) and isinstance(entries, list)
    }


def _parents(entry: Mapping[str, Any]) -> tuple[str, ...]:
    extends = entry.get("extends")
    if isinstance(extends, str):
        return (extends,)
    if isinstance(extends, list):
        return tuple(p for p in extends if isinstance(p, str))
    return ()


def intersect(
    business: Mapping[str, Sequence[Mapping[str, Any]]], platform: Mapping[str, Sequence[Mapping[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """The spec's intersection algorithm (overview.md, Intersection Algorithm): each business capability the
    platform also declares, at the highest version both declare (none in common: left out); then, until
    nothing changes, an extension none of whose parents is left is pruned. Name → ``{"version", "extends"?}``
    (``extends`` as the business declares it)."""
    active: dict[str, dict[str, Any]] = {}
    for name, entries in business.items():
        theirs = {e.get("version") for e in platform.get(name, ())}
        mutual = [e for e in entries if e.get("version") in theirs]
        if not mutual:
            continue
        chosen = max(mutual, key=lambda e: str(e["version"]))
        active[name] = {"version": chosen["version"], **({"extends": chosen["extends"]} if "extends" in chosen else {})}
    pruned = True
    while pruned:
        orphans = [n for n, e in active.items() if _parents(e) and not any(p in active for p in _parents(e))]
        for name in orphans:
            del active[name]
        pruned = bool(orphans)
    return active


def require_capability(active: Mapping[str, Any], root: str, continue_url: str | None = None) -> None:
    """``capabilities_incompatible`` unless the operation's root capability was negotiated."""
    if root not in active:
        raise Incompatible(
            f"The platform profile and this business share no version of {root}; declare it in your profile "
            "(see this business's /.well-known/ucp).",
            continue_url,
        )


class Incompatible(Exception):
    """Negotiation failed: a business outcome (REST 200, MCP result) with the spec's error envelope."""

    def __init__(self, content: str, continue_url: str | None = None) -> None:
        super().__init__(content)
        self.content = content
        self.continue_url = continue_url


def _order_webhook_url(ucp: Any) -> str | None:
    """The first valid ``config.webhook_url`` of the platform's order capability, if it declares one."""
    entries = ucp.get("capabilities", {}).get(spec.ORDER) if isinstance(ucp.get("capabilities"), dict) else None
    for entry in entries if isinstance(entries, list) else ():
        try:
            return str(OrderConfig.model_validate(entry["config"]).webhook_url)
        except (KeyError, TypeError, ValidationError):
            continue
    return None


def check_version(version: str) -> None:
    """``version_unsupported`` (422) unless this server speaks ``version``."""
    if version not in spec.SUPPORTED_VERSIONS:
        supported = ", ".join(sorted(spec.SUPPORTED_VERSIONS))
        raise UcpProblem(
            422,
            "version_unsupported",
            f"Protocol version {version} is not supported. This business supports version {supported}.",
        )
