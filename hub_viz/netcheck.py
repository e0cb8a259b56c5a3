"""Which hosts a fetch on an author's behalf may reach: public addresses only.

A git source names a host; before anything connects to it, :func:`public_addresses`
turns the host into addresses (every spelling of a literal address, or DNS)
and refuses the whole host when any address is loopback, private,
link-local, a cloud metadata address, unspecified, multicast, reserved or
shared (100.64.0.0/10), including IPv4 addresses carried inside IPv6 ones.
The caller then connects to exactly the addresses checked (pinning them), so
that a DNS answer that changes after the check does not help.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence

from .errors import SpecError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses a name resolves to (strings); the seam for tests
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
SHARED = ipaddress.ip_network("100.64.0.0/10")
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
RESOLVE_TIMEOUT = 10.0


class HostNotFound(SpecError):
    """The host name does not resolve (now)."""


def parse_literal(host: str) -> Address | None:
    """The address a literal host means, in any spelling; None for a name.

    IPv6 in brackets (``[::1]``), and IPv4 as dotted quads or in the old
    forms that URL parsers and ``inet_aton`` still accept: ``2130706433``,
    ``0x7f000001``, ``0177.0.0.1``, ``127.1``.
    """
    if host.startswith("[") and host.endswith("]"):
        try:
            return ipaddress.IPv6Address(host[1:-1].split("%", 1)[0])
        except ValueError:
            raise SpecError(f"The git URL's host {host!r} is not a valid IPv6 address.") from None
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def embedded_ipv4(addr: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64, compatible)."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return None
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    packed = addr.packed
    compatible = packed[:12] == bytes(12) and not (addr.is_loopback or addr.is_unspecified)
    if compatible or any(addr in net for net in NAT64):
        return ipaddress.IPv4Address(packed[12:])
    return None


def refusal(addr: Address) -> str | None:
    """Why ``addr`` is not a public address (e.g. 'a loopback address'), or None."""
    inner = embedded_ipv4(addr)
    if inner is not None:
        why = refusal(inner)
        return f"{why} inside an IPv6 address" if why else None
    if addr in METADATA:
        return "a cloud metadata address"
    checks = (
        (addr.is_unspecified, "the unspecified address"),
        (addr.is_loopback, "a loopback address"),
        (addr.is_link_local, "a link-local address"),
        (addr.is_multicast, "a multicast address"),
        (
            isinstance(addr, ipaddress.IPv4Address) and addr in SHARED,
            "a shared (carrier-grade NAT) address",
        ),
        (addr.is_reserved, "a reserved address"),
        (addr.is_private, "a private address"),
        (not addr.is_global, "a reserved address"),
    )
    return next((why for hit, why in checks if hit), None)


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for ``host`` (``/etc/hosts``, DNS, …)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def public_addresses(
    host: str, port: int, resolver: Resolver | None = None, timeout: float = RESOLVE_TIMEOUT
) -> list[str]:
    """Every address ``host`` stands for, all public; else :class:`SpecError`.

    Raises a SpecError saying which address and why when any is not public,
    and when the name cannot be resolved.
    """
    literal = parse_literal(host)
    if literal is not None:
        why = refusal(literal)
        if why:
            shown = "" if str(literal) == host.strip("[]") else f" ({literal})"
            raise SpecError(
                f"The git URL's host {host}{shown} is {why}; git sources must come "
                "from a public host."
            )
        return [str(literal)]
    try:
        found = await asyncio.wait_for((resolver or system_resolver)(host, port), timeout)
    except (OSError, UnicodeError, asyncio.TimeoutError):
        found = []
    addresses: list[str] = []
    for text in found:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
        why = refusal(addr)
        if why:
            raise SpecError(
                f"The git host {host!r} resolves to {addr}, {why}; git sources must come "
                "from a public host."
            )
        if str(addr) not in addresses:
            addresses.append(str(addr))
    if not addresses:
        raise HostNotFound(f"The git host {host!r} could not be found.")
    return addresses
