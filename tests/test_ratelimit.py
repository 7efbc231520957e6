"""Claim rate limits (token buckets per viewer and per address) and throttled deal feedback: pure logic."""
from __future__ import annotations

import pytest

from studio.feedback import Throttle, deal_event
from studio.ratelimit import (
    SWEEP_EVERY,
    ClaimGuard,
    ClaimLimits,
    Rate,
    TokenBuckets,
    client_address,
)


def test_bucket_allows_a_burst_then_refills_at_its_rate() -> None:
    b = TokenBuckets(Rate(2.0, 3))
    assert [b.allow("v", 10.0) for _ in range(4)] == [True, True, True, False]
    assert b.retry_after("v", 10.0) == pytest.approx(0.5)
    assert not b.allow("v", 10.4)
    assert b.allow("v", 10.51)  # half a second later: one token back
    assert b.allow("w", 10.51)  # keys are independent


def test_full_buckets_are_forgotten() -> None:
    b = TokenBuckets(Rate(1.0, 2))
    for i in range(SWEEP_EVERY - 1):
        b.allow(f"v{i}", 0.0)
    assert len(b) == SWEEP_EVERY - 1
    b.allow("late", 5.0)  # the sweep: everyone else refilled long ago
    assert len(b) == 1


def test_guard_checks_the_viewer_then_the_shared_address() -> None:
    guard = ClaimGuard(ClaimLimits(viewer=Rate(1.0, 2), address=Rate(1.0, 3)))
    assert [guard.check("a", "1.2.3.4", 0.0) for _ in range(3)] == [None, None, 1.0]
    # a's third try was refused by its own bucket, so the address still has one token
    assert guard.check("b", "1.2.3.4", 0.0) is None
    assert guard.check("c", "1.2.3.4", 0.0) == pytest.approx(1.0)
    assert guard.check("c", "5.6.7.8", 0.0) is None
    assert ClaimGuard(ClaimLimits(viewer=None, address=None)).check("a", "x", 0.0) is None


def test_forwarded_for_is_believed_only_behind_a_trusted_proxy() -> None:
    assert client_address("10.0.0.9", "6.6.6.6", trusted_proxy=False) == "10.0.0.9"
    assert client_address("10.0.0.9", "6.6.6.6, 1.2.3.4", trusted_proxy=True) == "1.2.3.4"  # the proxy's own entry
    assert client_address("10.0.0.9", " ", trusted_proxy=True) == "10.0.0.9"
    assert client_address(None, None, trusted_proxy=False) == "unknown"


def test_limits_from_the_environment_and_bad_values_name_the_variable() -> None:
    limits = ClaimLimits.from_env({"LINKUP_CLAIM_RATE_VIEWER": "1/4", "LINKUP_CLAIM_RATE_ADDRESS": "off",
                                   "LINKUP_TRUSTED_PROXY": "1"})
    assert limits == ClaimLimits(Rate(1.0, 4), None, True)
    assert ClaimLimits.from_env({}) == ClaimLimits()
    for env, name in (({"LINKUP_CLAIM_RATE_VIEWER": "fast"}, "LINKUP_CLAIM_RATE_VIEWER"),
                      ({"LINKUP_CLAIM_RATE_ADDRESS": "0/5"}, "LINKUP_CLAIM_RATE_ADDRESS"),
                      ({"LINKUP_TRUSTED_PROXY": "maybe"}, "LINKUP_TRUSTED_PROXY")):
        with pytest.raises(ValueError, match=name):
            ClaimLimits.from_env(env)


def test_throttle_sends_at_most_per_interval_and_always_the_last_value() -> None:
    t: Throttle[str, int] = Throttle(per_second=4.0)
    sent = [t.offer("b", n, 0.0 + n * 0.01) for n in range(10)]  # ten grants within 0.1 s
    assert sent == [0] + [None] * 9
    assert t.next_due() == pytest.approx(0.25)
    assert t.due(0.2) == []
    assert t.due(0.25) == [("b", 9)]  # the trailing update carries the latest value
    assert t.next_due() is None
    assert t.offer("b", 10, 0.3) is None and t.offer("b", 11, 0.31, urgent=True) == 11  # final states go at once
    assert t.offer("b", 11, 0.9) is None  # a repeat of what viewers already have is dropped
    assert t.offer("c", 1, 0.31) == 1  # keys are independent


def test_deal_event_shape() -> None:
    assert deal_event("B", "sold_out", 0, 500, 12.5) == {"kind": "deal", "batch": "B", "state": "sold_out", "left": 0,
                                                         "claimed": 500, "media_time": 12.5}
