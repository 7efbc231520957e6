"""Overlays burnt into the video: what a viewer would see, checked on pixels."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from overlay.anim import BURST_FRAMES
from overlay.layout import Rect, make_layout
from overlay.renderer import OverlayRenderer
from overlay.state import BannerInfo, CardInfo, OverlayState, StockInfo
from overlay.text import ELLIPSIS, fit, measure, wrap

SIZES = [(1280, 720), (1920, 1080)]
CARD = CardInfo("cup", "德国进口不锈钢保温杯 大容量男女学生便携水杯 500ml", "399", "199", "满199减20", 3)
STOCK = StockInfo(37, 100)
SUBTITLE = "这款保温杯采用316不锈钢内胆，24小时保温保冷，今天直播间只要199元"
LONG_SUBTITLE = "宝宝们看过来，" * 40


@pytest.fixture(scope="module")
def r720() -> OverlayRenderer:
    return OverlayRenderer(1280, 720)


def grey(w: int = 1280, h: int = 720) -> np.ndarray:
    return np.full((h, w, 3), 128, np.uint8)


def drawn(r: OverlayRenderer, state: OverlayState) -> np.ndarray:
    frame = grey(r.layout.width, r.layout.height)
    r.draw(frame, state)
    return frame


def crop(frame: np.ndarray, rect: Rect) -> np.ndarray:
    return frame[rect.y:rect.bottom, rect.x:rect.right]


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mask of pixels that differ."""
    return np.any(a != b, axis=2)


def bbox_of_changes(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(changed(a, b))
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


@pytest.mark.parametrize("w,h", SIZES)
def test_label_on_every_frame(w: int, h: int) -> None:
    r = OverlayRenderer(w, h)
    frame = drawn(r, OverlayState())
    lay = r.layout
    region = crop(frame, lay.label)
    assert changed(region, crop(grey(w, h), lay.label)).mean() > 0.5
    # White text on a darkened pill: both must be there to be readable.
    assert (region.min(axis=2) > 235).sum() > 0.02 * region.shape[0] * region.shape[1]
    assert (region.max(axis=2) < 80).sum() > 0.2 * region.shape[0] * region.shape[1]
    x0, y0, x1, y1 = bbox_of_changes(frame, grey(w, h))
    assert x0 >= lay.label.x and y0 >= lay.label.y and x1 <= lay.label.right and y1 <= lay.label.bottom


def test_label_also_with_everything_else_on(r720: OverlayRenderer) -> None:
    state = OverlayState(card=CARD, card_age=30, stock=STOCK, burst_age=10, subtitle=SUBTITLE)
    alone = crop(drawn(r720, OverlayState()), r720.layout.label)
    assert np.array_equal(crop(drawn(r720, state), r720.layout.label), alone)


@pytest.mark.parametrize("w,h", SIZES)
def test_layout_inside_frame_and_clear_of_face(w: int, h: int) -> None:
    lay = make_layout(w, h)
    rects = [lay.label, lay.card, lay.stock, lay.effects, lay.subtitle, lay.banner]
    for rect in rects:
        assert rect.w > 0 and rect.h > 0
        assert rect.inside(w, h), rect
        assert not rect.intersects(lay.face), rect
    assert not any(lay.banner.intersects(r) for r in (lay.label, lay.card, lay.stock, lay.effects, lay.subtitle))
    assert lay.face == Rect(round(0.22 * w), round(0.08 * h), round(0.52 * w) - round(0.22 * w),
                            round(0.55 * h) - round(0.08 * h))
    assert lay.card.x >= 0.68 * w and lay.card.y >= 0.13 * h and lay.stock.bottom <= 0.71 * h
    assert lay.stock.y >= lay.card.bottom
    assert lay.effects.center == lay.card.center


def test_card_draws_on_the_right_and_never_on_the_face(r720: OverlayRenderer) -> None:
    lay = r720.layout
    base = grey()
    for age in (0, 3, 7, 30):
        frame = drawn(r720, OverlayState(card=CARD, card_age=age, stock=STOCK))
        assert np.array_equal(crop(frame, lay.face), crop(base, lay.face)), age
    frame = drawn(r720, OverlayState(card=CARD, card_age=30))
    assert changed(crop(frame, lay.card), crop(base, lay.card)).mean() > 0.9
    # Cream card body, red header strip, red live price.
    body = crop(frame, lay.card).reshape(-1, 3).astype(int)
    assert ((body[:, 0] > 225) & (body[:, 1] > 235) & (body[:, 2] > 245)).mean() > 0.4
    header = frame[lay.card.y + 5:lay.card.y + round(0.06 * 720), lay.card.x:lay.card.right].reshape(-1, 3)
    assert (header[:, 2].astype(int) - header[:, 0]).mean() > 100
    x0, y0, x1, y1 = bbox_of_changes(frame, drawn(r720, OverlayState()))
    assert x0 > lay.face.right and y0 > lay.label.bottom and y1 < lay.subtitle.y


def test_card_slides_in(r720: OverlayRenderer) -> None:
    region = r720.layout.card
    early = crop(drawn(r720, OverlayState(card=CARD, card_age=0)), region)
    settled = crop(drawn(r720, OverlayState(card=CARD, card_age=20)), region)
    later = crop(drawn(r720, OverlayState(card=CARD, card_age=200)), region)
    assert np.array_equal(settled, later)
    # At age 0 the card is still faint: it is much closer to the grey background.
    assert np.abs(early.astype(int) - 128).mean() < 0.6 * np.abs(settled.astype(int) - 128).mean()


def test_live_price_is_in_the_card(r720: OverlayRenderer) -> None:
    region = r720.layout.card
    a = crop(drawn(r720, OverlayState(card=CARD, card_age=30)), region)
    cheaper = CardInfo(CARD.product_id, CARD.name, CARD.price, "159", CARD.coupon, CARD.link_no)
    b = crop(drawn(r720, OverlayState(card=cheaper, card_age=30)), region)
    diff = changed(a, b)
    assert diff.sum() > 200
    # Only the price row changed: not the header and not the product name.
    ys = np.nonzero(diff.any(axis=1))[0]
    assert ys.min() > 0.35 * region.h and ys.max() < 0.85 * region.h


def test_stock_bar_fill_follows_what_is_left(r720: OverlayRenderer) -> None:
    lay = r720.layout

    def red_in_bar(left: int) -> int:
        frame = drawn(r720, OverlayState(stock=StockInfo(left, 100)))
        band = crop(frame, lay.stock)[round(0.6 * lay.stock.h):round(0.85 * lay.stock.h)].astype(int)
        red = (band[..., 2] > 200) & (band[..., 2] - band[..., 0] > 120)
        return int(red.any(axis=0).sum())

    full, three_quarters, quarter, empty = red_in_bar(100), red_in_bar(75), red_in_bar(25), red_in_bar(0)
    assert empty == 0
    assert full > 0.8 * lay.stock.w
    assert three_quarters / full == pytest.approx(0.75, abs=0.05)
    assert quarter / full == pytest.approx(0.25, abs=0.05)


def test_stock_text_changes_with_count(r720: OverlayRenderer) -> None:
    lay = r720.layout
    a = crop(drawn(r720, OverlayState(stock=StockInfo(37, 100))), lay.stock)
    b = crop(drawn(r720, OverlayState(stock=StockInfo(36, 100))), lay.stock)
    text_rows = slice(0, round(0.55 * lay.stock.h))
    assert changed(a[text_rows], b[text_rows]).sum() > 20


def test_countdown_digits_differ_and_pop(r720: OverlayRenderer) -> None:
    lay = r720.layout
    base = dict(card=CARD, card_age=30, stock=STOCK)
    three = drawn(r720, OverlayState(**base, countdown=3, countdown_age=10))
    two = drawn(r720, OverlayState(**base, countdown=2, countdown_age=10))
    fx = lay.effects
    assert changed(crop(three, fx), crop(two, fx)).sum() > 2000
    # The digit is white on a red medallion centred on the card.
    cx, cy = fx.center
    centre = three[cy - 60:cy + 60, cx - 60:cx + 60].reshape(-1, 3).astype(int)
    assert (centre.min(axis=1) > 240).mean() > 0.1
    assert ((centre[:, 2] > 150) & (centre[:, 2] - centre[:, 0] > 80)).mean() > 0.3
    popping = drawn(r720, OverlayState(**base, countdown=3, countdown_age=0))
    settled = drawn(r720, OverlayState(**base, countdown=3, countdown_age=5))
    no_countdown = drawn(r720, OverlayState(**base))
    big = changed(popping, no_countdown).sum()
    small = changed(settled, no_countdown).sum()
    assert big > 1.3 * small
    for frame in (three, two, popping):
        assert np.array_equal(crop(frame, lay.face), crop(grey(), lay.face))


def test_burst_is_red_and_gold_then_gone(r720: OverlayRenderer) -> None:
    lay = r720.layout
    fx = lay.effects
    for age in (0, 2, 10, 30):
        frame = drawn(r720, OverlayState(card=CARD, card_age=30, burst_age=age))
        assert np.array_equal(crop(frame, lay.face), crop(grey(), lay.face)), age
    inner = Rect(fx.x + fx.w // 5, fx.y + fx.h // 5, fx.w * 3 // 5, fx.h * 3 // 5)
    region = crop(drawn(r720, OverlayState(burst_age=12)), inner).reshape(-1, 3).astype(float)
    b, g, r = region.mean(axis=0)
    assert r > 200 and r - b > 100 and g > b  # warm red/gold, nothing like the grey it covers
    red = (region[:, 2] > 150) & (region[:, 1] < 90) & (region[:, 0] < 90)
    gold = (region[:, 2] > 200) & (region[:, 1] > 150) & (region[:, 0] < 150)
    assert red.mean() > 0.1 and gold.mean() > 0.1
    plain = drawn(r720, OverlayState())
    assert np.array_equal(drawn(r720, OverlayState(burst_age=BURST_FRAMES)), plain)
    fading = crop(drawn(r720, OverlayState(burst_age=BURST_FRAMES - 3)), fx)
    assert 0 < np.abs(fading.astype(int) - 128).mean() < 0.5 * np.abs(region - 128).mean()


@pytest.mark.parametrize("w,h", SIZES)
@pytest.mark.parametrize("text", [SUBTITLE, "好", LONG_SUBTITLE, "Apple iPhone 15 Pro Max 256GB 官方正品 " * 6])
def test_subtitle_stays_in_band(w: int, h: int, text: str) -> None:
    r = OverlayRenderer(w, h)
    band = r.layout.subtitle
    without = drawn(r, OverlayState())
    frame = drawn(r, OverlayState(subtitle=text))
    x0, y0, x1, y1 = bbox_of_changes(frame, without)
    assert band.x <= x0 and band.y <= y0 and x1 <= band.right and y1 <= band.bottom
    region = crop(frame, band)
    assert (region.min(axis=2) > 240).sum() > 20  # white text
    assert (region.max(axis=2) < 30).sum() > 20  # dark outline
    if text is SUBTITLE:
        assert (x1 - x0) > 0.6 * w  # long enough to read, one line


def test_two_subtitles_look_different(r720: OverlayRenderer) -> None:
    band = r720.layout.subtitle
    a = crop(drawn(r720, OverlayState(subtitle="三、二、一，上链接！")), band)
    b = crop(drawn(r720, OverlayState(subtitle="库存不多了，抓紧下单")), band)
    assert changed(a, b).sum() > 500


def test_same_state_draws_the_same_pixels(r720: OverlayRenderer) -> None:
    rng = np.random.default_rng(7)
    background = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    states = [
        OverlayState(card=CARD, card_age=4, stock=STOCK, subtitle=SUBTITLE),
        OverlayState(card=CARD, card_age=40, stock=STOCK, countdown=1, countdown_age=2),
        OverlayState(card=CARD, card_age=60, burst_age=44, subtitle=LONG_SUBTITLE),
    ]
    fresh = OverlayRenderer(1280, 720)
    for state in states:
        a, b, c = background.copy(), background.copy(), background.copy()
        r720.draw(a, state)
        r720.draw(b, state)
        fresh.draw(c, state)
        assert np.array_equal(a, b) and np.array_equal(a, c)
        assert not np.array_equal(a, background)


def test_wrong_frame_size_is_refused(r720: OverlayRenderer) -> None:
    with pytest.raises(ValueError):
        r720.draw(grey(1920, 1080), OverlayState())


def test_wrapping_rules() -> None:
    def width(s: str) -> int:
        return measure(s, 24)

    lines = wrap("Apple iPhone 15 Pro Max 256GB 官方正品", 200, 5, width)
    assert lines is not None and "".join(lines).replace(" ", "") == "AppleiPhone15ProMax256GB官方正品"
    assert all(width(line) <= 200 for line in lines)
    assert "Pro Max 256GB" in lines  # words are not split
    lines = wrap("今天的价格真的很便宜，买到就是赚到！", measure("今天的价格真的很便宜", 24), 3, width)
    assert lines is not None and not any(line.startswith(("，", "！")) for line in lines)
    assert wrap("一二三四五六七八九十" * 5, 100, 2, width) is None
    px, lines = fit("一二三四五六七八九十" * 5, 200, 2, [24, 20])
    assert px == 20 and len(lines) == 2 and lines[-1].endswith(ELLIPSIS)
    assert all(measure(line, 20) <= 200 for line in lines)


def test_save_examples(r720: OverlayRenderer) -> None:
    states = {
        "/tmp/overlay_card.png": OverlayState(card=CARD, card_age=30, stock=STOCK, subtitle=SUBTITLE),
        "/tmp/overlay_countdown.png": OverlayState(card=CARD, card_age=60, stock=STOCK, countdown=2,
                                                   countdown_age=10, subtitle="最后三秒，准备好了吗？"),
        "/tmp/overlay_burst.png": OverlayState(card=CARD, card_age=90, stock=StockInfo(100, 100), burst_age=12,
                                               subtitle="上链接！宝宝们赶紧拍！"),
        "/tmp/overlay_banner.png": OverlayState(card=CARD, card_age=30, stock=STOCK, banner=BANNER,
                                                subtitle=f"{BANNER.who} {BANNER.text}"),
    }
    for path, state in states.items():
        frame = drawn(r720, state)
        assert cv2.imwrite(path, frame)
        assert np.array_equal(cv2.imread(path), frame)


BANNER = BannerInfo("@小王、@小李", "这款耳机直播间到手价199元，领券后179元，拍1号链接就行！")


def gold(region: np.ndarray) -> np.ndarray:
    """Pixels of the banner's gold tag (BGR ~ (60, 204, 255))."""
    b, g, r = (region[..., i].astype(int) for i in range(3))
    return (b < 120) & (g > 170) & (g < 235) & (r > 225)


@pytest.mark.parametrize("w,h", SIZES)
@pytest.mark.parametrize("banner", [BANNER, BannerInfo("@a", "好"), BannerInfo("@" + "长昵称" * 20, LONG_SUBTITLE)])
def test_answer_banner_shows_who_asked_and_the_answer_in_its_box(w: int, h: int, banner: BannerInfo) -> None:
    r = OverlayRenderer(w, h)
    box = r.layout.banner
    without = drawn(r, OverlayState())
    frame = drawn(r, OverlayState(banner=banner))
    x0, y0, x1, y1 = bbox_of_changes(frame, without)
    assert box.x <= x0 and box.y <= y0 and x1 <= box.right and y1 <= box.bottom
    region = crop(frame, box)
    assert gold(region).sum() > 0.002 * box.w * box.h  # the "@昵称" tag
    assert (region.min(axis=2) > 235).sum() > 30  # white answer text on the dark panel
    assert (region.max(axis=2) < 70).sum() > 0.1 * (x1 - x0) * (y1 - y0)


def test_banners_differ_by_asker_and_answer_and_stay_clear_of_everything_else(r720: OverlayRenderer) -> None:
    box = r720.layout.banner
    a = crop(drawn(r720, OverlayState(banner=BANNER)), box)
    b = crop(drawn(r720, OverlayState(banner=BannerInfo("@小张", BANNER.text))), box)
    c = crop(drawn(r720, OverlayState(banner=BannerInfo(BANNER.who, "有的，送耳机保护套和防丢挂绳。"))), box)
    top = slice(0, round(0.3 * box.h))
    assert changed(a[top], b[top]).sum() > 200 and changed(a[top.stop:], c[top.stop:]).sum() > 500
    full = OverlayState(card=CARD, card_age=30, stock=STOCK, subtitle=SUBTITLE)
    with_banner = drawn(r720, dataclasses.replace(full, banner=BANNER))
    outside = np.ones((720, 1280), bool)
    outside[box.y:box.bottom, box.x:box.right] = False
    assert np.array_equal(with_banner[outside], drawn(r720, full)[outside])  # card, stock, subtitle untouched
