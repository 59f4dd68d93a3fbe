"""Which URLs a webhook may point at: no server-side request forgery.

An admin chooses where the platform POSTs; without a guard they could make it reach the
cloud metadata service, a database port, or the services' own internal event routes. Two
checks, one policy (`TargetPolicy`):

- at registration (and on every URL change): the URL is parsed strictly (http(s), a host, no
  credentials), the host is refused by name (`localhost`, `*.internal`, metadata names...),
  and, when it resolves, every address it resolves to must be public. Numeric spellings
  (`127.1`, `0x7f000001`, `2130706433`, `[::ffff:127.0.0.1]`) resolve locally and are caught
  the same way. A name that does not resolve yet is accepted: delivery checks it again.
- at delivery: the webhook HTTP client's network backend resolves the host once, checks every
  address, and connects to the checked address itself (so DNS cannot answer differently
  between the check and the connection; TLS still verifies the certificate against the
  name). Redirects are never followed and proxy settings from the environment are ignored.

Loopback targets are allowed only where the deployment says so (`webhook_allow_loopback`,
on by default in dev); private, link-local, shared, reserved and multicast ranges never are,
nor are the platform's own service URLs. A refused delivery is logged as `target not
allowed` and nothing more, so the delivery log cannot be used to scan internal ports.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx

from upstander.kit.errors import BadRequest
from upstander.kit.http import tls_context

TARGET_REFUSED = "target not allowed"
RESOLVE_TIMEOUT_SECONDS = 3.0
# Names that reach the machine itself or a cloud provider's metadata service.
_BLOCKED_NAMES = frozenset(
    {"localhost", "metadata", "metadata.google.internal", "instance-data", "kubernetes"}
)
_BLOCKED_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".cluster.local")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(httpcore.ConnectError):
    """The delivery's target resolved to an address the policy refuses."""


@dataclass(frozen=True)
class TargetPolicy:
    """`allow_loopback`: dev only. `own_origins`: (host, port) of the platform's services,
    never a target whatever else is allowed."""

    allow_loopback: bool = False
    own_origins: frozenset[tuple[str, int]] = field(default_factory=frozenset)

    def address_allowed(self, address: Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address):
            embedded = address.ipv4_mapped or address.sixtofour
            if embedded is None and address.teredo is not None:
                embedded = address.teredo[1]
            if embedded is not None:
                return self.address_allowed(embedded)
        if address.is_loopback:
            return self.allow_loopback
        return address.is_global and not (
            address.is_multicast
            or address.is_reserved
            or address.is_unspecified
            or address.is_link_local
            or address.is_private
        )

    def name_allowed(self, host: str) -> bool:
        if host in _BLOCKED_NAMES or host.endswith(_BLOCKED_SUFFIXES):
            return self.allow_loopback and (host == "localhost" or host.endswith(".localhost"))
        return True


def _host_and_port(url: str) -> tuple[str, int, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise BadRequest("The webhook URL is not valid.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest("Webhook URLs must be http(s) URLs with a host.")
    if parts.username is not None or parts.password is not None:
        raise BadRequest("Webhook URLs must not carry credentials.")
    host = parts.hostname.rstrip(".").lower()
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise BadRequest("The webhook URL's host is not valid.") from None
    return host, port or (443 if parts.scheme == "https" else 80), parts.scheme


async def _resolve(host: str, port: int) -> list[Address] | None:
    """Every address `host` resolves to, or None when it does not resolve (now)."""
    try:
        with anyio.fail_after(RESOLVE_TIMEOUT_SECONDS):
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        return None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def _refuse() -> BadRequest:
    return BadRequest(
        "This webhook URL is not allowed: it points at a loopback, private, link-local or "
        "reserved address, a metadata or internal host name, or the platform itself.",
        errors=[{"field": "url", "message": "target not allowed"}],
    )


async def check_registration(url: str, policy: TargetPolicy) -> str:
    """Refuse (400) a URL whose host the policy refuses; return the URL unchanged."""
    host, port, _scheme = _host_and_port(url)
    if (host, port) in policy.own_origins or not policy.name_allowed(host):
        raise _refuse()
    addresses = await _resolve(host, port)
    if addresses is not None and not all(policy.address_allowed(a) for a in addresses):
        raise _refuse()
    return url


def own_origins(urls: Iterable[str]) -> frozenset[tuple[str, int]]:
    """(host, port) of each of the platform's own service URLs, in every loopback spelling
    the services listen on."""
    origins: set[tuple[str, int]] = set()
    for url in urls:
        parts = urlsplit(url)
        if parts.hostname is None:
            continue
        port = parts.port or (443 if parts.scheme == "https" else 80)
        origins.add((parts.hostname.lower(), port))
    return frozenset(origins)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves once, checks every address, connects to the checked one."""

    def __init__(self, policy: TargetPolicy, inner: httpcore.AsyncNetworkBackend) -> None:
        self.policy = policy
        self.inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        name = host.rstrip(".").lower()
        if (name, port) in self.policy.own_origins or not self.policy.name_allowed(name):
            raise TargetRefused(TARGET_REFUSED)
        addresses = await _resolve(name, port)
        if not addresses:
            raise httpcore.ConnectError("name does not resolve")
        if not all(self.policy.address_allowed(a) for a in addresses):
            raise TargetRefused(TARGET_REFUSED)
        return await self.inner.connect_tcp(
            str(addresses[0]),
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise TargetRefused(TARGET_REFUSED)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with `GuardedBackend` under its connection pool."""

    def __init__(self, policy: TargetPolicy) -> None:
        super().__init__(trust_env=False, verify=tls_context())  # its pool is replaced below
        self._pool = httpcore.AsyncConnectionPool(
            # The trust every client of the platform has (httpx's default, loaded on first use).
            ssl_context=tls_context(),
            max_connections=50,
            max_keepalive_connections=10,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(policy, httpcore.AnyIOBackend()),
        )


def webhook_client(
    policy: TargetPolicy, *, timeout: float, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The client deliveries go out through. `transport` replaces the network in tests (the
    registration check still applies there)."""
    return httpx.AsyncClient(
        transport=transport or GuardedTransport(policy),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )


def is_refusal(error: BaseException) -> bool:
    """Whether an httpx error came from the target guard (and not from the network)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, TargetRefused) or str(current) == TARGET_REFUSED:
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
