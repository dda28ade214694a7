"""Forwarded headers are believed only from proxies in FORWARDED_ALLOW_IPS: a client cannot
escape the per-address rate limit by writing its own X-Forwarded-For / Forwarded."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.api.proxies import client_address
from sourcing.common.config import ConfigurationError
from tests.fixtures.api import ApiSettingsFactory, serve_gateway

LIMIT = 3
CLIENT = ("198.51.100.20", 5000)
PROXY = ("10.0.0.5", 443)


async def _statuses(client: httpx.AsyncClient, count: int, headers: dict[str, str]) -> list[int]:
    # Unauthenticated: the limiter keys on the client address.
    return [
        (await client.get("/api/v1/auth/me", headers=headers)).status_code for _ in range(count)
    ]


@pytest.mark.parametrize("trusted", ["", "10.0.0.0/8"])
async def test_spoofed_forwarded_headers_from_an_untrusted_peer_change_nothing(
    api_settings_factory: ApiSettingsFactory,
    sessionmaker_rolled_back: async_sessionmaker[AsyncSession],
    trusted: str,
) -> None:
    settings = api_settings_factory(RATE_LIMIT_MAX_REQUESTS=LIMIT, FORWARDED_ALLOW_IPS=trusted)
    async with serve_gateway(settings, sessionmaker_rolled_back, peer=CLIENT) as api:
        assert await _statuses(api, LIMIT, {}) == [401] * LIMIT
        # Every request claims another origin; the limiter still sees the same peer.
        spoofed = [
            {"X-Forwarded-For": "192.0.2.1"},
            {"X-Forwarded-For": "192.0.2.2, 10.0.0.5"},
            {"Forwarded": "for=192.0.2.3"},
            {"X-Real-IP": "192.0.2.4"},
        ]
        for headers in spoofed:
            limited = await api.get("/api/v1/auth/me", headers=headers)
            assert limited.status_code == 429, headers
            assert limited.json()["error"]["code"] == "rate_limited"


async def test_a_trusted_proxy_forwards_each_clients_own_address(
    api_settings_factory: ApiSettingsFactory,
    sessionmaker_rolled_back: async_sessionmaker[AsyncSession],
) -> None:
    settings = api_settings_factory(RATE_LIMIT_MAX_REQUESTS=LIMIT, FORWARDED_ALLOW_IPS="10.0.0.0/8")
    async with serve_gateway(settings, sessionmaker_rolled_back, peer=PROXY) as api:
        first = {"X-Forwarded-For": "198.51.100.1"}
        assert await _statuses(api, LIMIT, first) == [401] * LIMIT
        assert (await api.get("/api/v1/auth/me", headers=first)).status_code == 429
        # Another client behind the same proxy has its own budget ...
        assert await _statuses(api, 1, {"Forwarded": 'for="198.51.100.2:1234"'}) == [401]
        # ... and the first cannot buy a new one by prefixing a made-up hop.
        prefixed = {"X-Forwarded-For": "192.0.2.99, 198.51.100.1"}
        assert (await api.get("/api/v1/auth/me", headers=prefixed)).status_code == 429


TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")]


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        ("198.51.100.7", {"x-forwarded-for": "1.2.3.4"}, "198.51.100.7"),
        ("10.0.0.5", {}, "10.0.0.5"),
        ("10.0.0.5", {"x-forwarded-for": "1.2.3.4"}, "1.2.3.4"),
        ("10.0.0.5", {"x-forwarded-for": "6.6.6.6, 1.2.3.4, 10.0.0.9"}, "1.2.3.4"),
        ("10.0.0.5", {"x-forwarded-for": "10.0.0.8, 10.0.0.9"}, "10.0.0.8"),
        ("10.0.0.5", {"x-forwarded-for": "junk, 1.2.3.4"}, "1.2.3.4"),
        ("10.0.0.5", {"x-forwarded-for": "1.2.3.4, junk"}, "10.0.0.5"),
        (
            "10.0.0.5",
            {"forwarded": 'for=1.2.3.4;proto=https, for="[2001:db8::1]:99"'},
            "2001:db8::1",
        ),
        ("::1", {"forwarded": "For=1.2.3.4:80"}, "1.2.3.4"),
    ],
)
def test_client_address(peer: str, headers: dict[str, str], expected: str) -> None:
    assert client_address(peer, headers, TRUSTED) == expected


def test_nothing_is_trusted_by_default_and_bad_networks_are_refused(
    api_settings_factory: ApiSettingsFactory,
) -> None:
    assert api_settings_factory().trusted_proxies == []
    with pytest.raises(ConfigurationError, match="FORWARDED_ALLOW_IPS"):
        api_settings_factory(FORWARDED_ALLOW_IPS="10.0.0.0/8, proxy.internal")
