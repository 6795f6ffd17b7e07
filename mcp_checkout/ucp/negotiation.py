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
from collections.abc import Mapping
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
        self._cache: OrderedDict[str, tuple[float, str, str | None]] = OrderedDict()

    async def version(self, url: str) -> str:
        """The protocol version the platform at ``url`` declares (fetched, or from the cache)."""
        return (await self._profile(url))[0]

    async def order_webhook_url(self, url: str) -> str | None:
        """Where the platform at ``url`` takes order events: its order capability's ``config.webhook_url``."""
        return (await self._profile(url))[1]

    async def _profile(self, url: str) -> tuple[str, str | None]:
        now = time.monotonic()
        cached = self._cache.get(url)
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(url)
            return cached[1], cached[2]
        version, webhook_url = await self._fetch(url)
        self._cache[url] = (now + self._ttl, version, webhook_url)
        self._cache.move_to_end(url)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return version, webhook_url

    async def _fetch(self, url: str) -> tuple[str, str | None]:
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
        return str(metadata.version), _order_webhook_url(document["ucp"])


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
