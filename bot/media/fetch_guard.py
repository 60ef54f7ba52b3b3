"""The one guard on every file the bot fetches: outputs, every redirect hop, members' attachments.

A file may come only from a globally routable address, from the host and port of
``REPLICATE_BASE_URL`` (a gateway serving its own files), or from what ``IMAGINE_FETCH_ALLOW``
lists. The rule is applied where the connection's address is decided, so what was checked is
what is connected to:

* a host written as an address is checked in its URL (:meth:`FetchGuard.check_url`, on every
  hop): aiohttp connects to such a host without resolving it;
* a host name is checked address by address in the session's resolver (:class:`GuardedResolver`):
  aiohttp connects only to the addresses the resolver hands out, so a name cannot point somewhere
  else between the check and the connection (DNS rebinding).

A name that resolves to allowed and refused addresses alike is connected to through the allowed
ones only: the refused addresses are never touched, and a host that publishes a private address
beside its public one (split-horizon DNS) keeps working.

What was refused, and why, is for the log only: members read that the image could not be
downloaded (:class:`FetchRefused` carries the detail).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import re
import socket
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

log = logging.getLogger(__name__)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?$")
"""A host name as DNS spells it (letters, digits, dots and hyphens)."""


@dataclass(frozen=True)
class FetchAllow:
    """What the owner lets the bot fetch files from besides globally routable addresses.

    ``hosts`` are lower-case host names matched exactly; ``networks`` are CIDRs
    (a single address is a /32 or /128).
    """

    hosts: frozenset[str] = frozenset()
    networks: tuple[IpNetwork, ...] = ()


def parse_fetch_allow(value: str) -> FetchAllow:
    """``host, 10.0.0.0/8, fd00::/8, 192.168.1.20``; ``ValueError`` names the entry that is neither."""
    hosts: set[str] = set()
    networks: list[IpNetwork] = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        candidate = item[1:-1] if item.startswith("[") and item.endswith("]") else item
        try:
            networks.append(ipaddress.ip_network(candidate, strict=False))
            continue
        except ValueError:
            pass
        host = candidate.lower().rstrip(".")
        if not HOSTNAME.match(host):
            raise ValueError(f"{item!r} is neither a host name nor an address or CIDR like 10.0.0.0/8")
        hosts.add(host)
    return FetchAllow(frozenset(hosts), tuple(networks))


# Never fetched from unless allowed by name or CIDR, whatever Python's ``is_global`` says (its tables
# differ between versions, and it calls multicast, 6to4, IPv4-compatible and NAT64 addresses global).
_NOT_GLOBAL = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the machine itself
        "10.0.0.0/8",
        "100.64.0.0/10",  # shared address space: carrier NAT, cloud metadata (100.100.100.200)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local: cloud metadata (169.254.169.254)
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast: a way into 6to4
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        "::/8",  # unspecified, loopback, IPv4-compatible, IPv4-translated, local-use NAT64 (64:ff9b:1::/48)
        "100::/64",  # discard
        "2001::/23",  # protocol assignments: Teredo (2001::/32) tunnels to any IPv4 address
        "2001:db8::/32",
        "2002::/16",  # 6to4: tunnels to the IPv4 address inside
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still routed inside some networks)
        "ff00::/8",  # multicast
    )
)
# IPv6 spellings of an IPv4 address that reach that IPv4 address: judged as the address inside.
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def parse_address(text: str) -> IpAddress | None:
    """The address a host or resolver result names literally (zone id dropped), or ``None`` for a name."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def embedded_ipv4(address: IpAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped (``::ffff:a.b.c.d``) or NAT64 (``64:ff9b::a.b.c.d``) address reaches."""
    if isinstance(address, ipaddress.IPv6Address) and (address in _IPV4_MAPPED or address in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def globally_routable(address: IpAddress) -> bool:
    """Whether ``address`` is a public unicast address, judging IPv6 spellings of IPv4 by the IPv4 inside."""
    address = embedded_ipv4(address) or address
    return address.is_global and not any(address in network for network in _NOT_GLOBAL)


def normal_host(host: str) -> str:
    """A host as the guard compares it: lower case, no trailing dot, an address in its canonical form."""
    address = parse_address(host)
    return str(address) if address is not None else host.lower().rstrip(".")


class FetchRefused(Exception):
    """A URL the guard will not fetch; the message is for the log (it may name addresses), never for members."""


class ForbiddenAddress(OSError):
    """A host name that resolves only to addresses the guard refuses (raised from the resolver)."""

    def __str__(self) -> str:
        return str(self.strerror)


class GuardSettings(Protocol):
    """The two settings a guard is made of (``Settings`` has both)."""

    @property
    def replicate_base_url(self) -> str: ...

    @property
    def fetch_allow(self) -> FetchAllow: ...


@dataclass(frozen=True)
class FetchGuard:
    """What the bot may fetch files from: public addresses, the API's own host and port, the owner's list.

    The API's host counts with its port (``REPLICATE_BASE_URL``'s, or the scheme's default): a
    gateway on ``127.0.0.1:5000`` serves its files there, and allowing every port of a loopback or
    LAN host would open the machine's other services (databases, admin pages) to any output URL.
    Hosts and networks in ``IMAGINE_FETCH_ALLOW`` are allowed on every port.
    """

    api_host: tuple[str, int] | None = None
    """``(host, port)`` of ``REPLICATE_BASE_URL``, normalised."""
    allow: FetchAllow = field(default_factory=FetchAllow)

    @classmethod
    def of(cls, base_url: str, allow: FetchAllow | None = None) -> FetchGuard:
        """The guard for an API at ``base_url`` and the owner's ``allow`` list."""
        try:
            parsed = URL(base_url)
        except ValueError:
            parsed = None
        host, port = (parsed.raw_host, parsed.port) if parsed is not None else (None, None)
        api_host = (normal_host(host), port) if host and port else None
        return cls(api_host, allow or FetchAllow())

    @classmethod
    def from_settings(cls, settings: GuardSettings) -> FetchGuard:
        """The guard ``REPLICATE_BASE_URL`` and ``IMAGINE_FETCH_ALLOW`` describe."""
        return cls.of(settings.replicate_base_url, settings.fetch_allow)

    def permits(self, host: str, port: int, address: IpAddress) -> bool:
        """Whether a connection to ``address``, reached as ``host:port``, may fetch a file."""
        name = normal_host(host)
        if (name, port) == self.api_host or name in self.allow.hosts:
            return True
        spellings = [address, *filter(None, [embedded_ipv4(address)])]
        if any(spelling in network for spelling in spellings for network in self.allow.networks):
            return True
        return globally_routable(address)

    def check_url(self, url: str | URL) -> URL:
        """``url`` parsed as aiohttp will read it, or :class:`FetchRefused` if it may not be fetched.

        Refused: not http(s), no host, a host that looks like an address but is not a canonical one
        (``2130706433``, ``0x7f.1``, ``0177.0.0.1``: the system resolver reads them as addresses), or
        an address the guard does not permit. A host name passes here; its addresses are checked
        when connecting (:class:`GuardedResolver`).
        """
        try:
            parsed = url if isinstance(url, URL) else URL(url)
            host, port, scheme = parsed.raw_host, parsed.port, parsed.scheme
        except (ValueError, TypeError) as exc:
            raise FetchRefused(f"malformed URL ({exc})") from None
        if scheme not in ("http", "https"):
            raise FetchRefused(f"not an http(s) URL ({scheme or 'no scheme'}:)")
        if not host or port is None:
            raise FetchRefused("no host in the URL")
        address = parse_address(host)
        if address is None:
            if _spells_an_address(host):
                raise FetchRefused(f"{host} is not a canonical address")
            return parsed
        if not self.permits(host, port, address):
            raise FetchRefused(f"{host} port {port} is not an address files are fetched from")
        return parsed

    def connector(self, *, limit: int = 100) -> aiohttp.TCPConnector:
        """A connector that connects only to addresses this guard permits, at most ``limit`` at once."""
        return aiohttp.TCPConnector(resolver=GuardedResolver(self), limit=limit)


def _spells_an_address(host: str) -> bool:
    """Whether a host that is no canonical address still spells one: to aiohttp, or to the C resolver.

    aiohttp takes a host with a colon or only digits and dots for an address (and never resolves it);
    the C resolver reads shorthand, octal and hex forms (``127.1``, ``0177.0.0.1``, ``0x7f.1``) as IPv4.
    """
    if ":" in host or host.replace(".", "").isdigit():
        return True
    try:
        socket.inet_aton(host)
    except (OSError, ValueError):
        return False
    return True


class GuardedResolver(AbstractResolver):
    """A resolver that hands out only the addresses its guard permits for the host and port asked for."""

    def __init__(self, guard: FetchGuard, inner: AbstractResolver | None = None) -> None:
        self._guard = guard
        self._inner = inner or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        refused: list[ResolveResult] = []
        for result in results:
            address = parse_address(result["host"])
            permitted = address is not None and self._guard.permits(host, port, address)
            (allowed if permitted else refused).append(result)
        if refused:
            log.warning(
                "%s:%d resolves to %s, which files are not fetched from%s",
                host,
                port,
                ", ".join(str(result["host"]) for result in refused),
                "; connecting to its other addresses only" if allowed else "",
            )
        if not allowed:
            raise ForbiddenAddress(errno.EACCES, f"{host} resolves only to addresses files are not fetched from")
        return allowed

    async def close(self) -> None:
        await self._inner.close()
