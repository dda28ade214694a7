"""The client's real address behind trusted proxies (``FORWARDED_ALLOW_IPS``).

The gateway's one rule for forwarded headers (uvicorn's own handling is off): only when the TCP
peer is a trusted proxy are ``X-Forwarded-For`` (else ``Forwarded``) read, from the right,
skipping trusted hops; the first untrusted address is the client. Anything a client writes
into those headers itself sits left of what its proxy appended, so it is never reached.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_FORWARDED_FOR = re.compile(r'(?:^|[;,\s])for\s*=\s*("[^"]*"|[^;,\s]+)', re.IGNORECASE)


def _address(text: str) -> Address | None:
    value = text.strip().strip('"')
    if value.startswith("["):  # "[2001:db8::1]:4711"
        value = value[1 : value.find("]")] if "]" in value else value[1:]
    elif value.count(":") == 1:  # "192.0.2.1:4711"
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(address: Address | None, trusted: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in trusted)


def forwarded_chain(headers: dict[str, str]) -> list[str]:
    """The addresses the proxies recorded, client first: X-Forwarded-For, else Forwarded."""
    xff = headers.get("x-forwarded-for")
    if xff is not None:
        return [part.strip() for part in xff.split(",") if part.strip()]
    forwarded = headers.get("forwarded")
    if forwarded is not None:
        return [match.group(1) for match in _FORWARDED_FOR.finditer(forwarded)]
    return []


def client_address(
    peer: str | None, headers: dict[str, str], trusted: Sequence[Network]
) -> str | None:
    """The address rate limits and logs use: ``peer`` unless it is a trusted proxy."""
    if not trusted or not _trusted(_address(peer or ""), trusted):
        return peer
    client = peer
    for entry in reversed(forwarded_chain(headers)):
        address = _address(entry)
        if address is None:
            break  # garbage left of the last trusted hop: that hop is the best we know
        client = str(address)
        if not _trusted(address, trusted):
            break
    return client
