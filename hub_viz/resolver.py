"""tornado's resolver, without a thread for addresses that need no look-up.

tornado's default resolver hands every host to ``getaddrinfo`` in a thread
pool, an IP address too: the first request starts threads and each one passes
through them. Launchers and the service mostly call the hub and each other at
addresses (``127.0.0.1`` on one machine), so those are answered at once, and
only names (``hub``, ``proxy-public`` in a cluster) go to the default.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from tornado.netutil import DefaultLoopResolver, Resolver


class AddressFirstResolver(DefaultLoopResolver):
    """IP addresses answered in place; names resolved as tornado does."""

    async def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[tuple[int, Any]]:
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return await super().resolve(host, port, family)
        own = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        if family not in (socket.AF_UNSPEC, own):  # as getaddrinfo: no such address
            raise OSError(f"{host} is not an address of family {family!r}")
        return [
            (own, (str(address), port) if own == socket.AF_INET else (str(address), port, 0, 0))
        ]


def use_address_first_resolver() -> None:
    """Make :class:`AddressFirstResolver` tornado's resolver in this process."""
    Resolver.configure(AddressFirstResolver)
