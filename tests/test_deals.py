"""Flash-sale decisions: the pure core."""
from __future__ import annotations

import gc
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.deals import CLOSE_GRACE, Batch, ClaimRequest, ClaimResult, Deals

B1 = Batch("b1", "s1", "p1", 2, 1, "满199减20")
B2 = Batch("b2", "s1", "p2", 3, 2, "立减30")
OTHER = Batch("x", "s2", "p3", 1, 1, "满99减10")  # another stream's batch
BATCHES = (B1, B2, OTHER)
NAMES = ("b1", "b2", "b1", "b2", "x", "ghost")  # claims go mostly to real batches
VIEWERS = 3
RIDS = 36


def req(rid: str, viewer: str, batch: str, t: float = 10.0, stream: str = "s1") -> ClaimRequest:
    return ClaimRequest(rid, viewer, stream, batch, t)


def fresh() -> Deals:
    deals = Deals()
    for b in BATCHES:
        deals.add_batch(b)
    return deals


def test_before_link_up_refused_then_same_request_id_succeeds() -> None:
    deals = fresh()
    assert deals.decide(req("r1", "v0", "b1", 4.0)) == ClaimResult("r1", False, "not_open", left=2)
    deals.open("b1", 5.0)
    # the claimer's player is still before the link-up frame
    assert deals.decide(req("r1", "v0", "b1", 4.96)).reason == "not_open"
    assert deals.decide(req("r1", "v0", "b1", 5.0)) == ClaimResult("r1", True, coupon="满199减20", left=1)
    assert deals.granted("b1") == 1


def test_final_answers_are_repeated_even_when_the_state_changed() -> None:
    deals = fresh()
    deals.open("b1", 0.0)
    first = deals.decide(req("r1", "v0", "b1"))
    deals.close("b1")
    assert deals.decide(req("r1", "v0", "b1")) == first
    assert deals.decide(req("r2", "v1", "b1")) == ClaimResult("r2", False, "closed", left=1)
    assert deals.granted("b1") == 1 and deals.left("b1") == 1


def test_a_storms_answers_leave_nothing_for_the_garbage_collector_to_walk() -> None:
    """Every answer is kept for the life of the process; kept as tracked objects, a storm's hundreds of
    thousands of them made each full collection pause the event loop for tens of milliseconds."""
    deals = Deals()
    deals.add_batch(Batch("big", "s1", "p1", 3_000, 1, "满199减20"))
    deals.open("big", 0.0)
    gc.collect()
    before = len(gc.get_objects())
    answers = [deals.decide(req(f"r{i}", f"v{i}", "big")) for i in range(5_000)]  # 3,000 granted, 2,000 sold out
    del answers
    gc.collect()
    assert len(gc.get_objects()) - before < 100
    assert deals.answered("r7") == ClaimResult("r7", True, coupon="满199减20", left=2_992)
    assert deals.decide(req("r4999", "v4999", "big")) == ClaimResult("r4999", False, "sold_out", left=0)


def test_refusals() -> None:
    deals = fresh()
    deals.open("b1", 0.0)
    deals.open("x", 0.0)
    assert deals.decide(req("a", "v0", "ghost")).reason == "unknown_batch"
    assert deals.decide(req("b", "v0", "x")).reason == "unknown_batch"  # batch of stream s2
    assert deals.decide(req("c", "v0", "b1")).ok
    assert deals.decide(req("d", "v0", "b1")) == ClaimResult("d", False, "limit_reached", left=1)
    assert deals.decide(req("e", "v1", "b1")) == ClaimResult("e", True, coupon="满199减20", left=0)
    assert deals.decide(req("f", "v2", "b1")) == ClaimResult("f", False, "sold_out", left=0)
    assert deals.left("b1") == 0 and deals.granted("b1") == 2


def test_second_link_up_keeps_first_time_and_closed_batch_cannot_reopen() -> None:
    deals = fresh()
    deals.open("b2", 3.0)
    deals.open("b2", 9.0)
    assert deals.open_at("b2") == 3.0
    assert deals.decide(req("r", "v0", "b2", 4.0)).ok
    deals.close("b2")
    with pytest.raises(ValueError):
        deals.open("b2", 12.0)


def test_restore_rejects_grants_beyond_stock_or_limit() -> None:
    deals = fresh()
    with pytest.raises(ValueError):
        deals.restore("b1", {"v0": 1, "v1": 1, "v2": 1}, {})
    with pytest.raises(ValueError):
        deals.restore("b1", {"v0": 2}, {})
    with pytest.raises(ValueError):
        deals.restore("ghost", {"v0": 1}, {})


def test_add_batch_twice_with_other_terms_is_refused() -> None:
    deals = fresh()
    deals.add_batch(B1)
    with pytest.raises(ValueError):
        deals.add_batch(Batch("b1", "s1", "p1", 99, 1, "满199减20"))
    assert deals.left("b1") == 2


# An op is (kind, index, t). Claims: request index i always means the same attempt, by viewer
# i % 3 on batch NAMES[(i // 3) % 6]. Open and close: batch BATCHES[i % 3].
KINDS = ("claim",) * 12 + ("open",) * 2 + ("close", "end", "restart")
OPS = st.tuples(st.sampled_from(KINDS), st.integers(0, RIDS - 1), st.sampled_from([0.0, 1.0, 2.0, 3.0]))


class Harness:
    """Drives Deals like the server would and records what viewers were told (the store's rows)."""

    def __init__(self) -> None:
        self.deals = fresh()
        self.open_at: dict[str, float] = {}
        self.closed: set[str] = set()
        self.ends: dict[str, float] = {}  # end times (media seconds)
        self.told: dict[str, ClaimResult] = {}  # final answers, by request id
        self.batch_of: dict[str, str] = {}
        self.viewer_of: dict[str, str] = {}

    def oks(self, batch: str) -> Counter[str]:
        return Counter(self.viewer_of[r] for r, a in self.told.items() if a.ok and self.batch_of[r] == batch)

    def open(self, batch: str, t: float) -> None:
        if batch in self.closed:
            with pytest.raises(ValueError):
                self.deals.open(batch, t)
            return
        self.deals.open(batch, t)
        self.open_at.setdefault(batch, t)

    def close(self, batch: str) -> None:
        self.deals.close(batch)
        self.closed.add(batch)

    def end(self, batch: str, t: float) -> None:
        self.deals.end_at(batch, t)
        self.ends.setdefault(batch, t)

    def ended(self, batch: str, t: float) -> bool:
        return batch in self.closed or (batch in self.ends and t >= self.ends[batch])

    def claim(self, i: int, t: float) -> None:
        rid, viewer, batch = f"r{i}", f"v{i % VIEWERS}", NAMES[(i // VIEWERS) % len(NAMES)]
        b = next((b for b in BATCHES if b.batch == batch), None)
        before = self.oks(batch)[viewer], sum(self.oks(batch).values())
        result = self.deals.decide(req(rid, viewer, batch, t))
        assert result.request_id == rid
        if rid in self.told:
            assert result == self.told[rid]
            return
        if result.ok:
            assert b is not None and not self.ended(batch, t) and t >= self.open_at[batch]
            assert result.coupon == b.coupon
        elif result.reason == "not_open":
            assert batch not in self.open_at or t < self.open_at[batch]
        elif result.reason == "limit_reached":
            assert b is not None and before[0] == b.per_viewer_limit
        elif result.reason == "sold_out":
            assert b is not None and before[1] == b.stock
        elif result.reason == "closed":
            assert self.ended(batch, t)
        else:
            assert result.reason == "unknown_batch" and (b is None or b.stream_id != "s1")
        if result.reason != "not_open":
            self.told[rid] = result
            self.batch_of[rid], self.viewer_of[rid] = batch, viewer

    def restart(self) -> None:
        self.deals = fresh()
        for name in set(NAMES):
            answers = {r: a for r, a in self.told.items() if self.batch_of[r] == name}
            self.deals.restore(name, dict(self.oks(name)), answers)
        for batch, t in self.open_at.items():
            self.deals.open(batch, t)
        for batch in self.closed:
            self.deals.close(batch)
        for batch, t in self.ends.items():
            self.deals.end_at(batch, t)

    def check(self) -> None:
        for b in BATCHES:
            oks = self.oks(b.batch)
            assert self.deals.granted(b.batch) == sum(oks.values()) <= b.stock
            assert self.deals.left(b.batch) == b.stock - self.deals.granted(b.batch) >= 0
            assert all(n <= b.per_viewer_limit for n in oks.values())


@settings(max_examples=300, deadline=None)
@given(st.lists(OPS, min_size=20, max_size=80))
def test_random_interleavings_with_restarts_keep_every_promise(ops: list[tuple[str, int, float]]) -> None:
    h = Harness()
    for kind, i, t in ops:
        if kind == "open":
            h.open(BATCHES[i % 3].batch, t)
        elif kind == "close":
            h.close(BATCHES[i % 3].batch)
        elif kind == "end":
            h.end(BATCHES[i % 3].batch, t)
        elif kind == "claim":
            h.claim(i, t)
        else:
            h.restart()
        h.check()


def test_a_batch_ends_a_grace_period_after_its_card_leaves_the_video() -> None:
    deals = fresh()
    assert deals.cue("s1", "link_up", "p1", 5.0) == ["b1"] and deals.state("b1", 5.0) == "open"
    assert deals.cue("s2", "link_up", "p1", 5.0) == []  # another stream's cue touches nothing here
    assert deals.cue("s1", "hide_card", "p1", 20.0) == ["b1"]
    closes = 20.0 + CLOSE_GRACE
    assert deals.decide(req("late", "v0", "b1", closes - 0.04)).ok  # the viewer's player still shows the card
    assert deals.decide(req("later", "v1", "b1", closes)) == ClaimResult("later", False, "closed", left=1)
    # the button closes with the card and never reopens, though late players' claims are still taken
    assert deals.state("b1", 19.96) == "open" and deals.state("b1", 20.0) == "closed"
    assert deals.state("b1", closes - 1) == "closed" and deals.state("b1", closes) == "closed"
    # a looping show links the product up again: the ended batch stays ended, and is not offered
    assert deals.cue("s1", "link_up", "p1", 60.0) == [] and deals.open_at("b1") == 5.0
    assert deals.cue("s1", "hide_card", "p2", 61.0) == []  # b2 never opened: nothing to end
    assert deals.state("b2", 61.0) == "waiting"
