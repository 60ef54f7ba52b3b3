"""The fetch guard's address rules: every spelling of an address that is not public, the API's host and port,
and ``IMAGINE_FETCH_ALLOW``'s hosts and networks; at the URL and in the resolver."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.media.fetch_guard import (
    FetchAllow,
    FetchGuard,
    FetchRefused,
    ForbiddenAddress,
    GuardedResolver,
    globally_routable,
    normal_host,
    parse_fetch_allow,
)
from bot.settings import load_settings

PUBLIC = ["8.8.8.8", "1.1.1.1", "151.101.1.1", "2606:4700::1111", "2a00:1450:4001::200e"]
NOT_PUBLIC = [
    "0.0.0.0",
    "0.1.2.3",
    "10.0.0.1",
    "100.64.0.1",
    "100.100.100.200",  # cloud metadata in shared address space
    "127.0.0.1",
    "127.255.255.254",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.9",
    "192.0.2.1",
    "192.88.99.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.51.100.1",
    "203.0.113.1",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible (deprecated): Python calls it global
    "::8.8.8.8",
    "::ffff:0:7f00:1",  # IPv4-translated
    "64:ff9b::7f00:1",  # NAT64 well-known prefix around 127.0.0.1: Python calls it global
    "64:ff9b::a9fe:a9fe",
    "64:ff9b:1::a00:1",  # local-use NAT64
    "2002:7f00:1::",  # 6to4 around 127.0.0.1: Python 3.11 calls it global
    "2002:808:808::1",  # 6to4 around a public address: a tunnel all the same
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "2001:db8::1",
    "3fff::1",
    "5f00::1",
    "100::1",
    "fc00::1",
    "fd00::1",
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",
    "ff02::1",
    "ff0e::1",  # global-scope multicast: Python calls it global
]


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_routable(address: str) -> None:
    assert globally_routable(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["::ffff:8.8.8.8", "64:ff9b::808:808"])
def test_ipv6_spellings_of_a_public_ipv4_address_are_judged_by_it(address: str) -> None:
    assert globally_routable(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_every_other_address_is_not(address: str) -> None:
    assert not globally_routable(ipaddress.ip_address(address.split("%")[0]))


# --------------------------------------------------------------------------- URLs


NO_API = FetchGuard()


@pytest.mark.parametrize(
    "url",
    [
        "https://replicate.delivery/xezq/abc/out-0.webp",
        "HTTPS://Replicate.Delivery/x.png",
        "http://8.8.8.8/x.png",
        "https://[2606:4700::1111]:8443/x.png",
        "http://[::ffff:8.8.8.8]/x.png",
        "http://127.0.0.1@example.com/x.png",  # user name 127.0.0.1, host example.com
        "http://localhost/x.png",  # a name: its addresses are the resolver's to refuse
        "http://files.internal./x.png",
    ],
)
def test_urls_that_pass_to_the_connection(url: str) -> None:
    NO_API.check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://replicate.delivery/x.png",
        "file:///etc/passwd",
        "data:image/png;base64,iVBORw0KGgo=",
        "gopher://replicate.delivery/x",
        "//replicate.delivery/x.png",
        "replicate.delivery/x.png",
        "https:///x.png",
        "http://",
        "",
        "http://[169.254.169.254/x",
        "http://127.0.0.1\\@example.com/",
        "http://host:99999/",
        "http://127.0.0.1/x.png",
        "HTTP://127.0.0.1:8000/x.png",
        "http://example.com@127.0.0.1/x.png",  # user name example.com, host 127.0.0.1
        "http://user:pass@169.254.169.254/latest/meta-data",
        "http://169.254.169.254/latest/meta-data",
        "http://169.254.169.254./x.png",
        "http://100.100.100.200/latest/meta-data",
        "http://10.1.2.3/x.png",
        "http://0.0.0.0:8000/x.png",
        "http://[::]/x.png",
        "http://[::1]:8080/x.png",
        "http://[0:0::1]/x.png",
        "http://[::ffff:127.0.0.1]/x.png",
        "http://[::ffff:7f00:1]/x.png",
        "http://[::127.0.0.1]/x.png",
        "http://[64:ff9b::7f00:1]/x.png",
        "http://[2002:7f00:1::]/x.png",
        "http://[fd00::1]/x.png",
        "http://[fe80::1%25eth0]/x.png",
        "http://224.0.0.1/x.png",
        "http://[ff02::1]/x.png",
        "http://240.0.0.1/x.png",
        # Spellings the C resolver reads as 127.0.0.1 or 169.254.169.254 (aiohttp takes some for names).
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://127.0.1/",
        "http://2852039166/latest/meta-data/",
        "http://0xa9fea9fe/latest/meta-data/",
        "http://0251.0376.0251.0376/",
        "http://169.254.43518/",
        "http://0/",
    ],
)
def test_urls_refused_before_connecting(url: str) -> None:
    with pytest.raises(FetchRefused):
        NO_API.check_url(url)


def test_the_apis_own_host_and_port_only() -> None:
    guard = FetchGuard.of("http://127.0.0.1:5000/v1")
    guard.check_url("http://127.0.0.1:5000/files/p/out-0.png")
    for url in ("http://127.0.0.1:5001/files/p/out-0.png", "http://127.0.0.1/x", "http://[::ffff:127.0.0.1]:5000/x"):
        with pytest.raises(FetchRefused):
            guard.check_url(url)


def test_the_api_host_by_name_and_default_port() -> None:
    guard = FetchGuard.of("https://Gateway.LAN./v1")
    lan = ipaddress.ip_address("10.0.0.5")
    assert guard.api_host == ("gateway.lan", 443)
    assert guard.permits("gateway.lan", 443, lan)
    assert guard.permits("GATEWAY.lan.", 443, lan)
    assert not guard.permits("gateway.lan", 80, lan)
    assert not guard.permits("other.lan", 443, lan)
    assert not FetchGuard.of("not a url").permits("not a url", 80, lan)


def test_the_owners_hosts_and_networks_on_every_port() -> None:
    guard = FetchGuard(allow=parse_fetch_allow("Files.LAN., 10.0.0.0/8, fd00::/8, 127.0.0.1"))
    for url in (
        "http://10.1.2.3:9000/x.png",
        "http://[::ffff:10.1.2.3]/x.png",
        "http://[fd12::1]:81/x.png",
        "http://127.0.0.1:5555/x.png",
        "http://[64:ff9b::a01:203]/x.png",
    ):
        guard.check_url(url)
    for url in ("http://192.168.1.1/x.png", "http://127.0.0.2/x.png", "http://[::1]/x.png", "http://169.254.169.254/"):
        with pytest.raises(FetchRefused):
            guard.check_url(url)
    anywhere = ipaddress.ip_address("192.168.7.7")
    assert guard.permits("files.lan", 1234, anywhere) and guard.permits("FILES.lan.", 80, anywhere)
    assert not guard.permits("files.lan.evil.example", 80, anywhere)


@pytest.mark.parametrize(
    ("host", "normal"), [("LOCALHOST.", "localhost"), ("Example.COM", "example.com"), ("0:0::1", "::1")]
)
def test_hosts_are_compared_in_one_spelling(host: str, normal: str) -> None:
    assert normal_host(host) == normal


# --------------------------------------------------------------------------- the resolver


class Static(AbstractResolver):
    """Resolves every name to the same addresses, as a hostile DNS server would."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0) for a in self.addresses
        ]

    async def close(self) -> None:
        """Nothing to release."""


async def test_a_name_with_public_and_private_addresses_connects_to_the_public_ones_only() -> None:
    resolver = GuardedResolver(NO_API, Static("10.0.0.1", "8.8.8.8", "::1", "2606:4700::1111", "fe80::1%eth0"))
    results = await resolver.resolve("mixed.example", 443)
    assert [r["host"] for r in results] == ["8.8.8.8", "2606:4700::1111"]


@pytest.mark.parametrize("addresses", [("127.0.0.1",), ("169.254.169.254", "::ffff:10.0.0.1"), ("64:ff9b::7f00:1",)])
async def test_a_name_with_only_refused_addresses_is_refused(addresses: tuple[str, ...]) -> None:
    with pytest.raises(ForbiddenAddress):
        await GuardedResolver(NO_API, Static(*addresses)).resolve("rebound.example", 80)


async def test_the_resolver_allows_the_apis_host_and_the_owners_names_and_networks() -> None:
    guard = FetchGuard.of("http://gateway.lan:8080", FetchAllow(frozenset({"files.lan"})))
    lan = GuardedResolver(guard, Static("10.0.0.5"))
    assert len(await lan.resolve("gateway.lan", 8080)) == 1
    assert len(await lan.resolve("files.lan", 22)) == 1
    with pytest.raises(ForbiddenAddress):
        await lan.resolve("gateway.lan", 22)
    networks = GuardedResolver(FetchGuard(allow=parse_fetch_allow("10.0.0.0/8")), Static("10.0.0.5", "10.0.0.6"))
    assert len(await networks.resolve("anything.example", 80)) == 2


@pytest.mark.parametrize("host", ["localhost", "localhost.", "LOCALHOST", "0x7f.1", "2130706433", "127.1"])
async def test_the_system_resolver_s_loopback_spellings_are_refused(host: str) -> None:
    """The real resolver: whatever spelling reaches loopback, the guard hands out no address for it."""
    resolver = GuardedResolver(NO_API)
    try:
        with pytest.raises(OSError):  # ForbiddenAddress, or no address at all for a spelling the resolver rejects
            await resolver.resolve(host, 80, socket.AF_UNSPEC)
        allowed = GuardedResolver(FetchGuard(allow=parse_fetch_allow("127.0.0.0/8, ::1")))
        assert {r["host"] for r in await allowed.resolve("localhost", 80, socket.AF_INET)} == {"127.0.0.1"}
        await allowed.close()
    finally:
        await resolver.close()


def test_the_guard_the_settings_describe() -> None:
    settings = load_settings(
        {
            "REPLICATE_API_TOKEN": "r8_test",
            "REPLICATE_BASE_URL": "http://gateway.lan:8080/v1",
            "IMAGINE_FETCH_ALLOW": "files.lan, 192.168.0.0/16",
        }
    )
    guard = FetchGuard.from_settings(settings)
    lan = ipaddress.ip_address("192.168.3.4")
    assert guard.api_host == ("gateway.lan", 8080)
    assert guard.permits("gateway.lan", 8080, ipaddress.ip_address("10.9.9.9"))
    assert guard.permits("files.lan", 80, ipaddress.ip_address("10.9.9.9"))
    assert guard.permits("anything.example", 443, lan)
    assert not guard.permits("anything.example", 443, ipaddress.ip_address("10.9.9.9"))
