"""Scheduling and toasts: pure rules."""
from __future__ import annotations

from studio.schedule import Slot, ToastThrottle, due, mask_nickname


def test_only_scheduled_streams_whose_time_has_come_are_due():
    slots = [Slot("a", 100.0, "scheduled"), Slot("b", 200.0, "scheduled"), Slot("c", 50.0, "live"),
             Slot("d", None, "scheduled"), Slot("e", 10.0, "ended")]
    assert due(slots, 99.9) == []
    assert due(slots, 100.0) == ["a"]
    assert due(slots, 500.0) == ["a", "b"]


def test_nicknames_are_masked_in_toasts():
    assert mask_nickname("张三丰") == "张**"
    assert mask_nickname("A") == "A**"
    assert mask_nickname("") == "***"


def test_toasts_are_throttled_per_stream():
    t = ToastThrottle(per_second=2)
    assert t.allow("s", 0.0) and not t.allow("s", 0.2) and t.allow("s", 0.5)
    assert t.allow("other", 0.2)
