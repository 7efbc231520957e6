from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studio.moderation import CommentPolicy, LikeCounter, Verdict


def test_plain_comment_passes_unchanged():
    assert CommentPolicy().check("v1", "这个颜色好看吗？", 0.0) == Verdict(True, "这个颜色好看吗？", None)


def test_html_is_kept_as_literal_text():
    v = CommentPolicy().check("v1", "<script>alert(1)</script> & <b>", 0.0)
    assert v.ok and v.text == "<script>alert(1)</script> & <b>"


def test_whitespace_stripped_and_control_characters_removed():
    v = CommentPolicy().check("v1", "  \t上\x00链\u200b接\u202e吧\n ", 0.0)
    assert v == Verdict(True, "上链接吧", None)
    assert CommentPolicy().check("v1", "第一行\n第二行", 0.0).text == "第一行 第二行"


def test_emoji_sequence_keeps_its_joiner():
    family = "\U0001F468\u200d\U0001F469\u200d\U0001F467"
    assert CommentPolicy().check("v1", family, 0.0).text == family


def test_empty_after_cleaning_is_refused():
    for text in ["", "   ", "\x00\u200b\n"]:
        assert CommentPolicy().check("v1", text, 0.0) == Verdict(False, "", "评论不能为空")


def test_too_long_is_refused_at_101_characters():
    policy = CommentPolicy()
    assert policy.check("v1", "好" * 100, 0.0).ok
    v = policy.check("v1", "好" * 101, 0.0)
    assert (v.ok, v.error) == (False, "评论太长了（最多100字）")
    assert CommentPolicy(max_len=10).check("v1", "好" * 11, 0.0).error == "评论太长了（最多10字）"


def test_banned_words_masked_with_same_length():
    policy = CommentPolicy()
    assert policy.check("v1", "主播是傻逼", 0.0).text == "主播是**"
    assert policy.check("v2", "想要的加微信abc123", 0.0).text == "想要的***abc123"
    assert policy.check("v3", "有事私聊我", 0.0).text == "有事**我"


def test_masking_sees_through_case_width_and_spacing():
    policy = CommentPolicy()
    assert policy.check("v1", "加VX领券", 0.0).text == "加**领券"
    assert policy.check("v2", "加ｖｘ领券", 0.0).text == "加**领券"
    assert policy.check("v3", "加 微 信", 0.0).text == "*****"


def test_latin_words_only_masked_when_standalone():
    policy = CommentPolicy()
    assert policy.check("v1", "usb线有吗", 0.0).text == "usb线有吗"
    assert policy.check("v2", "你个SB", 0.0).text == "你个**"


def test_custom_banned_list_replaces_default():
    policy = CommentPolicy(banned=["贵"])
    assert policy.check("v1", "太贵了 傻逼", 0.0).text == "太*了 傻逼"


def test_rate_limit_per_viewer_with_refill():
    policy = CommentPolicy(per_viewer_per_10s=5)
    assert [policy.check("a", "好", 0.0).ok for _ in range(5)] == [True] * 5
    v = policy.check("a", "好", 0.5)
    assert (v.ok, v.error) == (False, "发言太快了，请稍后再试")
    assert policy.check("b", "好", 0.5).ok  # another viewer is unaffected
    assert policy.check("a", "好", 2.5).ok  # 2 s refill one token
    assert not policy.check("a", "好", 2.6).ok


def test_refused_comments_do_not_spend_the_rate():
    policy = CommentPolicy(per_viewer_per_10s=2)
    for _ in range(10):
        policy.check("a", "好" * 200, 0.0)
        policy.check("a", "   ", 0.0)
    assert [policy.check("a", "好", 0.0).ok for _ in range(3)] == [True, True, False]


def test_idle_viewers_are_forgotten():
    policy = CommentPolicy()
    for i in range(1000):
        policy.check(f"v{i}", "好", 0.0)
    assert policy.tracked_viewers == 1000
    policy.check("late", "好", 30.0)
    assert policy.tracked_viewers == 1
    # a forgotten viewer starts again with a full allowance
    assert [policy.check("v1", "好", 30.0).ok for _ in range(6)] == [True] * 5 + [False]


@given(st.text(max_size=150))
def test_verdict_text_is_clean_and_bounded(text):
    v = CommentPolicy().check("v", text, 0.0)
    assert v.text == v.text.strip()
    assert not any(ord(c) < 32 for c in v.text)
    if v.ok:
        assert 1 <= len(v.text) <= 100 and v.error is None
    else:
        assert v.error is not None


def test_like_counter_reports_only_changes():
    likes = LikeCounter()
    assert likes.take_total_if_changed() is None
    likes.add()
    likes.add(49)
    assert likes.take_total_if_changed() == 50
    assert likes.take_total_if_changed() is None
    likes.add(3)
    assert (likes.take_total_if_changed(), likes.total) == (53, 53)


def test_like_counter_refuses_non_positive():
    likes = LikeCounter()
    for n in (0, -5):
        with pytest.raises(ValueError):
            likes.add(n)
    assert likes.total == 0
