"""Which hosts a git source may name: every spelling of a non-public address is refused."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from hub_viz.errors import SpecError
from hub_viz.netcheck import parse_literal, public_addresses, refusal, system_resolver

pytestmark = pytest.mark.unit

# What a fake DNS answers: the seam that keeps these tests off the network.
DNS = {
    "github.com": ["140.82.121.4"],
    "gitlab.example.org": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    "intranet.example.org": ["10.1.2.3"],
    "mixed.example.org": ["93.184.216.34", "192.168.1.10"],
    "rebind.example.org": ["169.254.169.254"],
    "v6only.example.org": ["::1"],
    "nat.example.org": ["100.64.0.7"],
    "scoped.example.org": ["fe80::1%eth0"],
}


async def fake_resolver(host: str, port: int) -> Sequence[str]:
    if host not in DNS:
        raise OSError("Name or service not known")
    return DNS[host]


async def check(host: str) -> list[str]:
    return await public_addresses(host, 443, fake_resolver)


@pytest.mark.parametrize(
    ("host", "why"),
    [
        # loopback in every spelling
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("0x7f000001", "a loopback address"),
        ("2130706433", "a loopback address"),
        ("0177.0.0.1", "a loopback address"),
        ("0x7f.0.0.1", "a loopback address"),
        ("127.1", "a loopback address"),
        ("127.0.1", "a loopback address"),
        ("[::1]", "a loopback address"),
        ("::1", "a loopback address"),
        ("[0:0:0:0:0:0:0:1]", "a loopback address"),
        ("[::ffff:127.0.0.1]", "a loopback address inside an IPv6 address"),
        ("[::ffff:7f00:1]", "a loopback address inside an IPv6 address"),
        ("[::127.0.0.1]", "a loopback address inside an IPv6 address"),
        ("[64:ff9b::127.0.0.1]", "a loopback address inside an IPv6 address"),
        ("[2002:7f00:1::]", "a loopback address inside an IPv6 address"),
        # cloud metadata
        ("169.254.169.254", "a cloud metadata address"),
        ("0xa9fea9fe", "a cloud metadata address"),
        ("2852039166", "a cloud metadata address"),
        ("0251.0376.0251.0376", "a cloud metadata address"),
        ("[fd00:ec2::254]", "a cloud metadata address"),
        ("[::ffff:169.254.169.254]", "a cloud metadata address inside an IPv6 address"),
        ("100.100.100.200", "a cloud metadata address"),
        # private
        ("10.0.0.5", "a private address"),
        ("0xa000005", "a private address"),
        ("172.16.3.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("192.168.257", "a private address"),  # 192.168.1.1 in the a.b.c form
        ("[fd12:3456::1]", "a private address"),
        ("[::ffff:10.0.0.1]", "a private address inside an IPv6 address"),
        # link-local
        ("169.254.1.1", "a link-local address"),
        ("[fe80::1]", "a link-local address"),
        # unspecified
        ("0.0.0.0", "the unspecified address"),
        ("0", "the unspecified address"),
        ("[::]", "the unspecified address"),
        # multicast
        ("224.0.0.1", "a multicast address"),
        ("233.252.0.1", "a multicast address"),
        ("[ff02::1]", "a multicast address"),
        ("[ff0e::1]", "a multicast address"),
        # shared (carrier-grade NAT)
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("100.127.255.254", "a shared (carrier-grade NAT) address"),
        # reserved and documentation ranges
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "a reserved address"),
        ("192.0.2.1", "a private address"),
        ("198.18.0.1", "a private address"),
        ("[2001:db8::1]", "a private address"),
        ("[100::1]", "a reserved address"),
    ],
)
async def test_literal_addresses_that_are_not_public_are_refused(host, why):
    with pytest.raises(SpecError) as e:
        await check(host)
    assert why in e.value.message
    assert e.value.message.startswith(f"The git URL's host {host}")
    assert e.value.message.endswith("git sources must come from a public host.")


@pytest.mark.parametrize(
    ("host", "shown", "why"),
    [
        ("intranet.example.org", "10.1.2.3", "a private address"),
        ("mixed.example.org", "192.168.1.10", "a private address"),  # one bad answer is enough
        ("rebind.example.org", "169.254.169.254", "a cloud metadata address"),
        ("v6only.example.org", "::1", "a loopback address"),
        ("nat.example.org", "100.64.0.7", "a shared (carrier-grade NAT) address"),
        ("scoped.example.org", "fe80::1", "a link-local address"),
    ],
)
async def test_names_that_resolve_to_non_public_addresses_are_refused(host, shown, why):
    with pytest.raises(SpecError) as e:
        await check(host)
    assert e.value.message == (
        f"The git host {host!r} resolves to {shown}, {why}; git sources must come from a "
        "public host."
    )


@pytest.mark.parametrize("host", ["localhost", "a.localhost", "dashboards.localhost"])
async def test_localhost_names_are_refused_through_the_system_resolver(host):
    # This machine resolves *.localhost to loopback (libnss-myhostname), as browsers do.
    with pytest.raises(SpecError, match="a loopback address"):
        await public_addresses(host, 443, system_resolver)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("github.com", ["140.82.121.4"]),
        ("gitlab.example.org", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]),
        ("140.82.121.4", ["140.82.121.4"]),
        ("8.8.8.8", ["8.8.8.8"]),
        ("0x08080808", ["8.8.8.8"]),
        ("[2606:4700::1111]", ["2606:4700::1111"]),
        ("[::ffff:8.8.8.8]", ["::ffff:808:808"]),
        ("[2002:808:808::1]", ["2002:808:808::1"]),
    ],
)
async def test_public_hosts_pass_with_every_address(host, expected):
    assert await check(host) == expected


async def test_a_name_that_does_not_resolve_is_refused():
    with pytest.raises(SpecError) as e:
        await check("nowhere.example.org")
    assert e.value.message == "The git host 'nowhere.example.org' could not be found."


def test_parse_literal_reads_every_ipv4_spelling_and_leaves_names():
    assert {
        str(parse_literal(h))
        for h in ("127.0.0.1", "0x7f000001", "2130706433", "0177.0.0.1", "127.1", "0x7f.1")
    } == {"127.0.0.1"}
    assert parse_literal("github.com") is None
    assert parse_literal("1.2.3.4.example.org") is None
    with pytest.raises(SpecError, match="not a valid IPv6 address"):
        parse_literal("[not:an:address::x]")


def test_refusal_is_none_for_public_addresses_only():
    import ipaddress

    assert refusal(ipaddress.ip_address("140.82.121.4")) is None
    assert refusal(ipaddress.ip_address("2606:4700::1111")) is None
    assert refusal(ipaddress.ip_address("127.0.0.1")) == "a loopback address"
