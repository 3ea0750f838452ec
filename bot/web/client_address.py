"""The client's address, for per-address limits (web chat, staff login).

The peer address is the client unless the peer is a configured trusted proxy (TRUSTED_PROXIES);
then the proxy's header (CLIENT_ADDRESS_HEADER, X-Forwarded-For by default) is read from the
right, skipping the entries that are themselves trusted proxies: the first other entry is the
address the nearest trusted proxy saw. A client can prepend anything to the header; it cannot
change what the proxy appended.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from aiohttp import web

from bot.web.keys import SETTINGS

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def parse_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """TRUSTED_PROXIES as networks (an address is a /32 or /128); ValueError names a bad one."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"TRUSTED_PROXIES: {entry!r} is not an address or network") from exc
    return tuple(networks)


def _trusted(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def resolve(peer: str, header: str | None, networks: tuple[Network, ...]) -> str:
    """The client's address from the peer and the proxy header's value (see the module doc)."""
    if not header or not _trusted(peer, networks):
        return peer
    for entry in reversed([part.strip() for part in header.split(",")]):
        if entry and not _trusted(entry, networks):
            return entry
    return peer  # only proxies in the chain (or an empty header)


def client_address(request: web.Request) -> str:
    settings = request.config_dict[SETTINGS]
    networks = parse_networks(settings.trusted_proxies)
    header = request.headers.get(settings.client_address_header)
    return resolve(request.remote or "", header, networks)
