"""The gateway's cache of verified tokens: a hit skips verification, never past the expiry."""

from __future__ import annotations

import time

import pytest

from sourcing.common import auth
from sourcing.common.auth import Principal, Role, VerifiedTokens, mint_token
from sourcing.common.config import Settings
from sourcing.common.errors import Unauthorized
from tests.fixtures.settings import load_settings


def test_a_token_is_verified_once_until_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(APP_ENV="test", JWT_ACCESS_TOKEN_TTL_SECONDS=60)
    now = time.time()
    token = mint_token(settings, Principal("ada", Role.CALLER), now=now)
    tokens = VerifiedTokens(settings)
    verified: list[str] = []
    verify = auth._verify

    def counting(settings: Settings, token: str) -> tuple[Principal, float]:
        verified.append(token)
        return verify(settings, token)

    monkeypatch.setattr(auth, "_verify", counting)
    assert tokens.principal(token, now=now) == Principal("ada", Role.CALLER)
    assert tokens.principal(token, now=now + 59) == Principal("ada", Role.CALLER)
    assert len(verified) == 1  # the second answer came from the cache
    tokens.principal(token, now=now + 61)  # past its expiry: verified again
    assert len(verified) == 2


def test_an_expired_token_is_refused_and_not_kept() -> None:
    settings = load_settings(APP_ENV="test", JWT_ACCESS_TOKEN_TTL_SECONDS=60)
    tokens = VerifiedTokens(settings)
    expired = mint_token(settings, Principal("ada", Role.CALLER), now=time.time() - 120)
    for token in (expired, "not-a-token"):
        with pytest.raises(Unauthorized):
            tokens.principal(token)
    assert not tokens._entries


def test_the_cache_is_bounded() -> None:
    settings = load_settings(APP_ENV="test")
    tokens = VerifiedTokens(settings, size=2)
    minted = [mint_token(settings, Principal(f"user-{n}", Role.OPS)) for n in range(3)]
    for token in minted:
        tokens.principal(token)
    assert list(tokens._entries) == minted[1:]
