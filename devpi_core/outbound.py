"""Which hosts the server itself may connect to: mirror upstreams and external push targets.

Any user who may create an index chooses a mirror's ``mirror_url``, and any reader may push to a
``posturl``; without a policy the server would fetch from (and show the answer of) services that
only it can reach: a cloud metadata endpoint, an admin port on loopback, the intranet. So by
default every address that is not globally routable is refused: loopback, RFC 1918 and other
private ranges, link-local (including ``169.254.169.254`` and ``fd00:ec2::254``), unspecified,
multicast and reserved ranges, and IPv6 forms that embed one of those (IPv4-mapped,
IPv4-compatible, 6to4, NAT64). The documentation ranges (TEST-NET-1/2/3, ``2001:db8::/32``) pass:
no service of a network can live there, and intercepting proxies (a sandbox's, a company's
TLS-inspecting gateway) answer for the public index on them. ``server.outbound_allow`` names
hosts, host globs, addresses or networks that are allowed anyway (an internal upstream);
``server.outbound_deny`` refuses more, and wins over the allow list.

The check runs on the *resolved* addresses (every one of them), when a connection is opened, and
the connection goes to an address that was checked (:mod:`devpi_core.outbound_session`), so a
name that resolves differently a moment later cannot switch it. This module has no dependency
beyond the standard library: index configuration uses :meth:`OutboundPolicy.literal_problem` at
start-up cost zero.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from devpi_core.errors import Forbidden

if TYPE_CHECKING:
    from devpi_core.config import ServerSettings

log = logging.getLogger(__name__)
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
ALLOW_SETTING = "server.outbound_allow"
DENY_SETTING = "server.outbound_deny"

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
# (network, what it is); checked in order, the first match names the reason
_DENIED_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("10.0.0.0/8"), "private"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("100.64.0.0/10"), "private (shared address space)"),
    (_V4("169.254.0.0/16"), "link-local"),
    (_V4("192.0.0.0/24"), "reserved"),
    (_V4("192.88.99.0/24"), "reserved"),
    (_V4("198.18.0.0/15"), "reserved"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved"),
)
_DENIED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fc00::/7"), "private"),
    (_V6("fec0::/10"), "private"),
    (_V6("ff00::/8"), "multicast"),
    (_V6("64:ff9b:1::/48"), "private"),
    (_V6("100::/64"), "reserved"),
    (_V6("2001::/23"), "reserved"),
    (_V6("::/8"), "reserved"),
)
# RFC 5737 / RFC 3849: see the module docstring for why they pass
_DOCUMENTATION: tuple[Network, ...] = (
    _V4("192.0.2.0/24"),
    _V4("198.51.100.0/24"),
    _V4("203.0.113.0/24"),
    _V6("2001:db8::/32"),
)
_NAT64 = _V6("64:ff9b::/96")
_COMPATIBLE = _V6("::/96")
_LOCAL_NAMES = ("localhost", "*.localhost")


class OutboundDenied(Forbidden):
    """The server's outbound policy refuses a host (403; a mirror reports it as a 502).

    ``address`` is the refused address, for the log only: the message does not name what an
    internal host name resolves to.
    """

    code = "outbound_denied"

    def __init__(self, message: str, *, address: str | None = None) -> None:
        super().__init__(message)
        self.address = address


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (``socket.getaddrinfo``, TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_address(text: str) -> Address | None:
    """``text`` as an IP address, also in the legacy IPv4 forms the C library accepts
    (``127.1``, ``0x7f.0.0.1``, ``2130706433``); None for a host name."""
    text = text.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if not text or not all(c.isalnum() or c == "." for c in text):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def denied_reason(address: Address) -> str | None:
    """Why ``address`` is refused by default (``"loopback"``, ``"private"``...), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return denied_reason(embedded)
        table: Iterable[tuple[Network, str]] = _DENIED_V6
    else:
        table = _DENIED_V4
    for network, reason in table:
        if address in network:
            return reason
    if any(address in network for network in _DOCUMENTATION):
        return None
    if not address.is_global:  # whatever else the standard library knows is not public
        return "non-public"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64, compatible)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


class Rules:
    """Host names, host globs (``*.corp.example``), addresses and networks (CIDR)."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.names: list[str] = []
        self.networks: list[Network] = []
        for entry in entries:
            text = entry.strip().lower().rstrip(".")
            network = _network(text)
            if network is not None:
                self.networks.append(network)
            elif text and all(c.isalnum() or c in "-_.*?" for c in text):
                self.names.append(text)
            else:
                raise ValueError(
                    f"{entry!r} is not a host name, host glob, IP address or CIDR network"
                )

    def has_name(self, host: str) -> bool:
        """Whether the host name matches a name or glob."""
        return any(fnmatch.fnmatchcase(host, pattern) for pattern in self.names)

    def has_address(self, address: Address) -> bool:
        """Whether the address (or the IPv4 address it embeds) is in a listed network."""
        candidates: list[Address] = [address]
        if isinstance(address, ipaddress.IPv6Address):
            embedded = _embedded_ipv4(address)
            if embedded is not None:
                candidates.append(embedded)
        return any(a in network for a in candidates for network in self.networks)


def _network(text: str) -> Network | None:
    if "/" not in text:
        address = parse_address(text) if any(c in text for c in ":") or _dotted(text) else None
        return ipaddress.ip_network(address) if address is not None else None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid CIDR network") from None


def _dotted(text: str) -> bool:
    return bool(text) and all(c.isdigit() or c == "." for c in text)


class OutboundPolicy:
    """The hosts the server may connect to; see the module docstring.

    ``resolver(host, port)`` returns the addresses of a host name (tests inject one; the
    default asks the system).
    """

    def __init__(
        self,
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        *,
        resolver: Resolver | None = None,
    ) -> None:
        self.allow = Rules(allow)
        self.deny = Rules(deny)
        self._resolver = resolver

    @classmethod
    def from_settings(cls, server: ServerSettings) -> OutboundPolicy:
        """The policy of ``server.outbound_allow`` and ``server.outbound_deny``."""
        return cls(server.outbound_allow, server.outbound_deny)

    def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` (the injected resolver, else the system's)."""
        if self._resolver is not None:
            return list(self._resolver(host, port))
        return system_resolver(host, port)

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``, all of them checked; raises
        :class:`OutboundDenied` if any is refused, ``OSError`` if the name does not resolve."""
        try:
            return self._addresses(host, port)
        except OutboundDenied as exc:
            log.warning("%s (address %s)", exc.message, exc.address or "-")
            raise

    def _addresses(self, host: str, port: int) -> list[str]:
        name = host.strip("[]").lower().rstrip(".")
        literal = parse_address(name)
        trusted = False
        if literal is None:
            if self.deny.has_name(name):
                raise self._denied(host, f"it is listed in {DENY_SETTING}")
            trusted = self.allow.has_name(name)
            found = self.resolve(name, port)
        else:
            found = [str(literal)]
        if not found:
            raise OSError(f"{host} resolves to no address")
        for text in found:
            address = parse_address(text)
            if address is None:
                raise OSError(f"{host} resolved to something that is no address: {text!r}")
            self._check(host, address, trusted=trusted, resolved=literal is None)
        return found

    def _check(self, host: str, address: Address, *, trusted: bool, resolved: bool) -> None:
        verb = "resolves to" if resolved else "is"
        if self.deny.has_address(address):
            raise self._denied(host, f"it {verb} an address listed in {DENY_SETTING}", address)
        if trusted or self.allow.has_address(address):
            return
        reason = denied_reason(address)
        if reason is not None:
            raise self._denied(host, f"it {verb} a {reason} address", address)

    def check_url(self, url: str) -> None:
        """Resolve and check the host of ``url`` (http or https); raises like :meth:`addresses`
        (:class:`OutboundDenied` also for a URL without a host or of another scheme)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OutboundDenied(f"{url!r} is not an http:// or https:// URL with a host")
        self.addresses(parts.hostname, _port(parts.port, parts.scheme))

    def literal_problem(self, url: str) -> str | None:
        """Why ``url`` is refused without asking DNS (an IP address literal or a local or
        denied name that is not allowed), or None. Index configuration uses this: a name that
        resolves to a refused address is still refused on every connection."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        if not host:
            return None
        literal = parse_address(host)
        try:
            if literal is not None:
                self._check(host, literal, trusted=False, resolved=False)
            elif self.deny.has_name(host):
                raise self._denied(host, f"it is listed in {DENY_SETTING}")
            elif not self.allow.has_name(host) and any(
                fnmatch.fnmatchcase(host, local) for local in _LOCAL_NAMES
            ):
                raise self._denied(host, "it is a loopback name")
        except OutboundDenied as exc:
            return exc.message
        return None

    def _denied(self, host: str, why: str, address: Address | None = None) -> OutboundDenied:
        return OutboundDenied(
            f"connecting to {host} is not allowed: {why}; an administrator can allow it with "
            f"{ALLOW_SETTING}",
            address=str(address) if address is not None else None,
        )


def _port(port: int | None, scheme: str) -> int:
    return port or (443 if scheme == "https" else 80)


def origin(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of ``url`` with the default port filled in: where credentials
    configured for ``url`` may be sent."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower().rstrip("."), _port(parts.port, scheme)
