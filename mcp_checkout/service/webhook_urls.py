"""Where outbound webhooks may go: the one home of the webhook URL rules and the live-mode SSRF guard.

Any mode: an absolute http(s) URL without credentials or fragment. Live mode (``sk_live_`` keys) adds:
https only, and every address the connection would use must be public. A host is judged by the
addresses the HTTP client will really connect to, never by how it is spelled:

- an IP literal in any form the system resolver accepts (``2130706433``, ``0x7f000001``, ``127.1``,
  ``0x7f.1``, ``0``, ``[::ffff:127.0.0.1]``) is read with ``getaddrinfo(AI_NUMERICHOST)``, exactly as
  the connection would read it, and refused when it is not public;
- a DNS name is resolved when a delivery connects, by the same resolver, and the connection is made to
  the very address that was checked (:class:`PinnedBackend` inside :func:`pinned_transport`), while the
  ``Host`` header, TLS SNI and the certificate check keep the name. A name answering with a loopback,
  private, link-local, multicast, reserved or unspecified address, or an IPv4-mapped / 6to4 / NAT64
  address embedding one, is refused: nothing is sent.

:func:`url_refusal` is what the dispatcher, endpoint creation and the go-live check all ask.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx

from mcp_checkout.errors import InvalidInput

MAX_URL = 2048
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses a connection may use (as getaddrinfo answers; tests inject a hosts table)
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: local-use translation
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d


class DestinationRefused(Exception):
    """A live-mode webhook would reach an address that is not public; ``reason`` says which and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``anyio.connect_tcp`` (httpcore's connector) would try for ``host``: the system
    resolver through ``getaddrinfo``, which also reads every numeric form."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


# ---------------------------------------------------------------- addresses
def _plain_refusal(address: IPAddress) -> str | None:
    for refused, what in (
        (address.is_unspecified, "the unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (isinstance(address, ipaddress.IPv6Address) and address.is_site_local, "a site-local address"),
        (not address.is_global, "not a publicly routable address"),
    ):
        if refused:
            return what
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address a 6to4, NAT64 or IPv4-compatible IPv6 address reaches."""
    if address.sixtofour is not None:
        return address.sixtofour, "6to4"
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address)), "IPv4-compatible"
    return None


def address_refusal(address: IPAddress) -> str | None:
    """What makes ``address`` one live mode refuses, e.g. "a loopback address" (``None``: a public address)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"an IPv4-mapped IPv6 address (of {address.ipv4_mapped})"
        if address in _NAT64_LOCAL:
            return "a local-use NAT64 address"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner, kind = embedded
            why = _plain_refusal(inner)
            return f"a {kind} address of {inner}, {why}" if why else None
    return _plain_refusal(address)


def literal_address(host: str) -> IPAddress | None:
    """``host`` read as an IP address the way the connection reads it (``None``: a DNS name).

    ``getaddrinfo`` with ``AI_NUMERICHOST`` never touches the network and accepts every form
    ``inet_aton`` does: ``2130706433``, ``0x7f000001``, ``127.1``, ``0x7f.1``, ``0``, ``0177.0.0.1``.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return None
    return ipaddress.ip_address(str(infos[0][4][0])) if infos else None


def _named_local(host: str) -> bool:
    name = host.rstrip(".").lower()
    return name == "localhost" or name.endswith(".localhost")  # RFC 6761: always loopback


def resolved_refusal(host: str, addresses: Iterable[str]) -> str | None:
    """Why live mode refuses ``host`` when it resolves to ``addresses`` (any one refused is enough)."""
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        why = address_refusal(address)
        if why is not None:
            return f"{host} resolves to {address}, {why}"
    return None


def static_refusal(url: str) -> str | None:
    """Why live mode refuses ``url`` without asking DNS: not https, a localhost name, or an IP literal
    (in any form) that is not public. ``None`` when only resolution can tell."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return "live mode sends webhooks over https only"
    host = parts.hostname or ""
    if _named_local(host):
        return f"{host} is a loopback name"
    address = literal_address(host)
    why = address_refusal(address) if address is not None else None
    if why is None:
        return None
    return f"{host} is {why}" if host == str(address) else f"{host} means {address}, {why}"


async def url_refusal(url: str, resolver: Resolver, resolve_seconds: float) -> str | None:
    """Why live mode refuses ``url``, resolving a DNS name as a delivery would. A name that does not
    resolve (now) is not refused here: each delivery resolves it again and is refused then if need be."""
    why = static_refusal(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    if why is not None or literal_address(host) is not None:
        return why
    try:
        with anyio.fail_after(resolve_seconds):
            addresses = await resolver(host, parts.port or 443)
    except (OSError, TimeoutError, UnicodeError):
        return None
    return resolved_refusal(host, addresses)


def check_url(url: str, *, live: bool) -> str:
    """The URL rules of every mode and the live rules that need no DNS; raises ``InvalidInput``."""
    url = url.strip()
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if len(url) > MAX_URL or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise InvalidInput(
            "The webhook URL must be an absolute http(s) URL of at most 2048 characters, e.g. "
            "https://erp.example/hooks. Fix it and call create_webhook_endpoint again.",
            details={"url": url[:200]},
        )
    if parts.username or parts.password:
        raise InvalidInput(
            "Put no user name or password in the webhook URL (it is shown in listings); receivers verify "
            "the webhook-signature header instead. Remove them and call create_webhook_endpoint again."
        )
    if parts.fragment:
        raise InvalidInput("A webhook URL has no #fragment; remove it and call create_webhook_endpoint again.")
    if live:
        refuse_for_live(url, static_refusal(url))
    return url


def refuse_for_live(url: str, why: str | None) -> None:
    """Raise the ``InvalidInput`` a live-mode merchant sees for a refused URL (nothing when ``why`` is None)."""
    if why is None:
        return
    if why.startswith("live mode sends webhooks over https"):
        raise InvalidInput(
            "In live mode webhook URLs must use https, so order data is encrypted in transit. Use an https URL.",
            details={"url": url[:200]},
        )
    raise InvalidInput(
        f"In live mode webhook URLs must name a public host: {why}, and order data must not be sent to "
        "loopback, private, link-local or other internal addresses. Use the receiver's public https address.",
        details={"url": url[:200], "reason": why},
    )


# ---------------------------------------------------------------- connecting to the checked address
class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's connector with the resolution done here: the host is resolved once by ``resolver``,
    (in live mode) every answer is checked, and the TCP connection goes to a checked address. TLS is
    started by httpcore afterwards with the URL's host as SNI and for the certificate check."""

    def __init__(self, resolver: Resolver, *, live: bool) -> None:
        self._resolver = resolver
        self._live = live
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port, timeout)
        if self._live:
            why = resolved_refusal(host, addresses)
            if why is not None:
                raise DestinationRefused(why)
        error: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in dict.fromkeys(addresses):
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        raise error

    async def _addresses(self, host: str, port: int, seconds: float | None) -> Sequence[str]:
        try:
            return [ipaddress.ip_address(host).compressed]  # a plain IP literal needs no lookup
        except ValueError:
            pass
        try:
            with anyio.fail_after(seconds):
                return await self._resolver(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationRefused("webhooks are sent over TCP only")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, backend: PinnedBackend, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        ssl_context: ssl.SSLContext = httpx.create_ssl_context(trust_env=False)
        # httpx keeps its pool in ``_pool`` and takes no network backend of its own; the pool is the
        # one it would build, plus the backend (httpx is pinned below 0.29 in pyproject).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


def pinned_transport(resolver: Resolver, *, live: bool, limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """An httpx transport whose connections go only to addresses ``resolver`` gave and, in live mode,
    only to public ones (:class:`DestinationRefused` otherwise, before any byte is sent)."""
    return _PinnedTransport(PinnedBackend(resolver, live=live), limits)
