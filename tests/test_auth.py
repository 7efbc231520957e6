"""Signed tokens: roles survive a round trip; forged and expired tokens are refused."""
from __future__ import annotations

import pytest

from studio.auth import Identity, TokenError, Tokens


def test_round_trip_keeps_role_subject_and_unicode_name():
    tokens = Tokens(b"k" * 32)
    who = Identity("viewer", "v-123", "小王.测试")
    assert tokens.verify(tokens.issue(who)) == who


def test_forged_tampered_and_expired_tokens_are_refused():
    tokens = Tokens(b"k" * 32, ttl=60)
    token = tokens.issue(Identity("viewer", "v-1", "a"), now=1000)
    with pytest.raises(TokenError, match="signature"):
        Tokens(b"x" * 32).verify(token, now=1000)
    role, *rest = token.split(".")
    with pytest.raises(TokenError, match="signature"):
        tokens.verify(".".join(["buyer", *rest]), now=1000)  # a viewer cannot promote itself
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(token, now=1061)
    with pytest.raises(TokenError, match="malformed"):
        tokens.verify("garbage", now=1000)
    assert tokens.verify(token, now=1059).role == "viewer"
