"""Claim rate limits: token buckets per viewer and per client address.

Pure logic, no clock and no I/O: callers pass `now` (monotonic seconds). A refused claim is
answered `rate_limited` and changes nothing, so the same request id may be retried later.

Buckets that have refilled completely are indistinguishable from new ones, so they are swept
away: memory follows the viewers who claimed recently, not everyone who ever did.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

SWEEP_EVERY = 4096  # checks between sweeps of full buckets


@dataclass(frozen=True)
class Rate:
    per_second: float  # refill rate
    burst: int  # bucket size: how many claims may come at once

    @classmethod
    def parse(cls, text: str, name: str) -> Rate | None:
        """`"2/5"` -> 2 per second, bursts of 5; `"off"` -> no limit. ValueError names `name`."""
        if text.strip().lower() == "off":
            return None
        try:
            rate, burst = text.split("/")
            parsed = cls(float(rate), int(burst))
        except ValueError:
            raise ValueError(f"{name}: expected RATE/BURST such as 2/5, or off; got {text!r}") from None
        if parsed.per_second <= 0 or parsed.burst < 1:
            raise ValueError(f"{name}: rate must be > 0 and burst >= 1, got {text!r}")
        return parsed


class TokenBuckets:
    """One token bucket per key; a check takes one token or is refused."""

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._checks = 0

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, key: str, now: float) -> bool:
        self._checks += 1
        if self._checks % SWEEP_EVERY == 0:
            self.sweep(now)
        tokens, at = self._buckets.get(key, (float(self.rate.burst), now))
        tokens = min(float(self.rate.burst), tokens + (now - at) * self.rate.per_second)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        return True

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until `key` has a token again (0 when it has one now)."""
        tokens, at = self._buckets.get(key, (float(self.rate.burst), now))
        tokens = min(float(self.rate.burst), tokens + (now - at) * self.rate.per_second)
        return max(0.0, (1.0 - tokens) / self.rate.per_second)

    def sweep(self, now: float) -> None:
        """Forget buckets that are full again."""
        full = [k for k, (tokens, at) in self._buckets.items()
                if tokens + (now - at) * self.rate.per_second >= self.rate.burst]
        for k in full:
            del self._buckets[k]


def client_address(peer: str | None, forwarded_for: str | None, trusted_proxy: bool) -> str:
    """The address a claim is counted against.

    X-Forwarded-For is written by whoever sends the request, so it is believed only when a
    trusted proxy sits in front (it then appends the real peer last: that entry is the one
    the proxy itself saw, the earlier ones are the client's say-so).
    """
    if trusted_proxy and forwarded_for:
        last = forwarded_for.split(",")[-1].strip()
        if last:
            return last
    return peer or "unknown"


@dataclass(frozen=True)
class ClaimLimits:
    viewer: Rate | None = Rate(2.0, 5)  # a person clicks a few times, not hundreds
    address: Rate | None = Rate(100.0, 300)  # many viewers may share one NAT address
    trusted_proxy: bool = False  # believe X-Forwarded-For

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ClaimLimits:
        """LINKUP_CLAIM_RATE_VIEWER / LINKUP_CLAIM_RATE_ADDRESS (`RATE/BURST` or `off`),
        LINKUP_TRUSTED_PROXY (1 when a reverse proxy sets X-Forwarded-For)."""
        env = dict(os.environ) if env is None else env
        base = cls()
        viewer, address = base.viewer, base.address
        if "LINKUP_CLAIM_RATE_VIEWER" in env:
            viewer = Rate.parse(env["LINKUP_CLAIM_RATE_VIEWER"], "LINKUP_CLAIM_RATE_VIEWER")
        if "LINKUP_CLAIM_RATE_ADDRESS" in env:
            address = Rate.parse(env["LINKUP_CLAIM_RATE_ADDRESS"], "LINKUP_CLAIM_RATE_ADDRESS")
        proxy = env.get("LINKUP_TRUSTED_PROXY", "0").strip().lower()
        if proxy not in ("0", "1", "true", "false", "yes", "no", ""):
            raise ValueError(f"LINKUP_TRUSTED_PROXY: expected 1 or 0, got {proxy!r}")
        return cls(viewer, address, proxy in ("1", "true", "yes"))


class ClaimGuard:
    """Both limits together: a claim needs a token from its viewer's bucket and its address's."""

    def __init__(self, limits: ClaimLimits) -> None:
        self.limits = limits
        self._viewers = TokenBuckets(limits.viewer) if limits.viewer else None
        self._addresses = TokenBuckets(limits.address) if limits.address else None

    def address_of(self, peer: str | None, forwarded_for: str | None) -> str:
        return client_address(peer, forwarded_for, self.limits.trusted_proxy)

    def check(self, viewer_id: str, address: str, now: float) -> float | None:
        """None when the claim may go on, else seconds to wait before retrying.

        The viewer's bucket is checked first so one viewer hammering does not drain the
        tokens of everyone behind the same address.
        """
        if self._viewers is not None and not self._viewers.allow(viewer_id, now):
            return self._viewers.retry_after(viewer_id, now)
        if self._addresses is not None and not self._addresses.allow(address, now):
            return self._addresses.retry_after(address, now)
        return None
