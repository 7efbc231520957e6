"""Product facts + segment -> a Script the host can read, with cues pinned to characters.

Generated lines are assembled from script_gen.phrases using only figures from the product
data (or figures computed exactly from it: the saving, the price after a coupon), so the
host never promises what the shop did not.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from script_gen import phrases
from script_gen.normalize import normalize
from script_gen.rundown import Coupon, FlashSale, Product, Rundown, Segment, format_yuan
from script_gen.script import Cue, Line, Script

COUNTDOWN_PAUSE_MS = 200
MAX_SPEC_LINE = 40  # characters; more specs go on a further line


def make_line(text: str, cues: Sequence[Cue] = (), pause_after_ms: int = 400) -> Line:
    """A Line whose speech is the voice-friendly rewrite of its display text."""
    speech, index = normalize(text)
    return Line(text=text, speech=speech, speech_index=index, cues=tuple(cues), pause_after_ms=pause_after_ms)


def build_script(
    product: Product, segment: Segment, *, link_no: int, seed: int = 0, body: Sequence[str] | None = None
) -> Script:
    """Same inputs and seed give the same Script; the seed only changes wording.

    `body`, for a generated segment, replaces the generated selling lines (hook to coupon) with
    lines written elsewhere (a language model, checked by script_gen.llm); the closing (stock,
    call to action), the countdown and every cue are still ours.
    """
    rng = random.Random(f"{seed}:{product.id}")
    flash = segment.flash_sale
    if segment.script is None:
        body = list(body) if body is not None else _body(product, rng)
        texts = body + _closing(product, flash, link_no, rng)
        countdown_at = len(body)
    else:
        texts = list(segment.script)
        countdown_at = len(texts)
    if flash is not None:
        if flash.countdown_after is not None:
            countdown_at = min(flash.countdown_after, len(texts))
        texts[countdown_at:countdown_at] = [phrases.COUNTDOWN_TEXT, _flash_announcement(flash, link_no, rng)]
    last = len(texts) - 1
    lines = []
    for i, text in enumerate(texts):
        is_countdown = flash is not None and i == countdown_at
        cues = _countdown_cues(text, product.id) if is_countdown else []
        if i == 0:
            cues.insert(0, Cue("show_card", 0, product.id))
        if i == last:
            cues.append(Cue("hide_card", len(text), product.id))
        pause = COUNTDOWN_PAUSE_MS if is_countdown else _pause_after(text, final=i == last)
        line = make_line(text, cues, pause)
        lines.append(_beat_each_digit(line) if is_countdown else line)
    return Script(product_id=product.id, lines=tuple(lines))


def _beat_each_digit(line: Line) -> Line:
    """A host counts down with a beat on every digit: speak 三！二！一！ rather than a quick list.

    One character replaces one, so the display -> speech index stays valid.
    """
    return replace(line, speech=line.speech.replace("、", "！").replace("，", "！"))


def _pause_after(text: str, *, final: bool) -> int:
    """Breath after a sentence, a longer one after a question or the segment's end."""
    if final or text.endswith(("？", "?")):
        return 600
    return 500 if text.endswith(("！", "。", "!", ".")) else 400


def _countdown_cues(text: str, product_id: str) -> list[Cue]:
    cues = [Cue("countdown", text.index(str(v)), product_id, value=v) for v in (3, 2, 1)]
    return cues + [Cue("link_up", text.index("上"), product_id)]


# Category words -> (hooks, pain points); the first word found in a product's category wins.
CATEGORIES: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    (("3C", "数码", "家电", "电器", "手机", "电脑", "耳机"), phrases.HOOKS_DIGITAL, phrases.PAINS_DIGITAL),
    (("母婴", "婴", "童", "宝宝", "孕"), phrases.HOOKS_BABY, phrases.PAINS_BABY),
    (("美妆", "护肤", "彩妆", "个护", "化妆"), phrases.HOOKS_BEAUTY, phrases.PAINS_BEAUTY),
    (("食品", "零食", "生鲜", "饮料", "酒", "茶", "水果", "粮油"), phrases.HOOKS_FOOD, phrases.PAINS_FOOD),
    (("服饰", "服装", "女装", "男装", "鞋", "内衣", "配饰", "箱包"), phrases.HOOKS_APPAREL, phrases.PAINS_APPAREL),
)


def disclosure_line() -> Line:
    """The host says it is an AI at the start of a show (the law asks, viewers deserve it)."""
    return make_line(phrases.DISCLOSURE, pause_after_ms=500)


def segment_script(rundown: Rundown, k: int, seed: int = 0, body: Sequence[str] | None = None) -> Script:
    """What the host says in the k-th segment played (k counts on through loops of the rundown).

    The show opens with the AI disclosure; segment k is scripted with seed + k, so an offline render,
    a live show and a voice preflight with the same seed say the same lines. `body`: see build_script.
    """
    segment = rundown.segments[k % len(rundown.segments)]
    product = rundown.product(segment.product_id)
    script = build_script(product, segment, link_no=rundown.link_no(product.id), seed=seed + k, body=body)
    if k == 0:
        script = replace(script, lines=(disclosure_line(), *script.lines))
    return script


def _category_phrases(category: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(hooks, selling-point openers): a category's own, or the generic ones."""
    upper = category.upper()
    for words, hooks, pains in CATEGORIES:
        if any(word.upper() in upper for word in words):
            return hooks, pains
    return phrases.HOOKS, phrases.POINT_OPENERS


def _body(product: Product, rng: random.Random) -> list[str]:
    """Hook, pain point and selling points, specs, gifts, after-sale, price anchoring, coupon."""
    hooks, openers = _category_phrases(product.category)
    body = [rng.choice(hooks).format(name=product.name)]
    body += _selling_points(product.selling_points, openers, rng)
    body += _specs(product.specs, rng)
    if product.gifts:
        body.append(rng.choice(phrases.GIFTS).format(items=_enumerate(product.gifts)))
    if product.after_sale:
        body.append(rng.choice(phrases.AFTER_SALE).format(items="，".join(product.after_sale)))
    body.append(_price_line(product, rng))
    if product.coupon is not None:
        body.append(_coupon_line(product.coupon, product.live_price, rng))
    return body


def _closing(product: Product, flash: FlashSale | None, link_no: int, rng: random.Random) -> list[str]:
    """Urgency from the real stock and the call to action; a flash sale's countdown goes before it."""
    link = str(link_no)
    if flash is not None:
        closing = [rng.choice(phrases.CALLS_TO_ACTION).format(link=link)]
    elif product.stock == 0:
        closing = [rng.choice(phrases.SOLD_OUT), rng.choice(phrases.SOLD_OUT_CALLS).format(link=link)]
    else:
        closing = [
            rng.choice(phrases.URGENCY).format(stock=product.stock),
            rng.choice(phrases.CALLS_TO_ACTION).format(link=link),
        ]
    return closing


def _selling_points(points: Sequence[str], openers: Sequence[str], rng: random.Random) -> list[str]:
    """The first point answers the pain point (or a generic opener); the rest get distinct follow-ups."""
    followups = rng.sample(phrases.POINT_FOLLOWUPS, k=min(len(points) - 1, len(phrases.POINT_FOLLOWUPS)))
    leads = [rng.choice(openers)] + followups
    lines = []
    for i, point in enumerate(points):
        lead = leads[i] if i < len(leads) else ""
        lines.append(lead + point.rstrip("。！!.，,；;") + rng.choice(phrases.POINT_ENDINGS))
    return lines


def _specs(specs: Sequence[tuple[str, str]], rng: random.Random) -> list[str]:
    """Specs read as 续航30小时，重量4.5g, packed into lines of at most MAX_SPEC_LINE."""
    lines: list[str] = []
    lead = rng.choice(phrases.SPEC_LEADS)
    items: list[str] = []
    for key, value in specs:
        item = key + value
        if items and len(lead + "，".join(items + [item]) + "。") > MAX_SPEC_LINE:
            lines.append(lead + "，".join(items) + "。")
            lead, items = rng.choice(phrases.SPEC_MORE_LEADS), []
        items.append(item)
    if items:
        lines.append(lead + "，".join(items) + "。")
    return lines


def _enumerate(items: Sequence[str]) -> str:
    """A、B和C."""
    return items[0] if len(items) == 1 else "、".join(items[:-1]) + "和" + items[-1]


def _price_line(product: Product, rng: random.Random) -> str:
    saving = product.price - product.live_price
    live = format_yuan(product.live_price)
    if saving == 0:
        return rng.choice(phrases.PRICE_ONLY).format(live=live)
    return rng.choice(phrases.PRICE_WITH_SAVING).format(
        price=format_yuan(product.price), live=live, saving=format_yuan(saving)
    )


def _coupon_line(coupon: Coupon, live_price: Decimal, rng: random.Random) -> str:
    """A coupon usable on one item gets its exact after-coupon price; a threshold one does not."""
    if coupon.min_spend <= live_price:
        final = format_yuan(live_price - coupon.amount)
        return rng.choice(phrases.COUPON_ON_ONE).format(label=coupon.label(), final=final)
    return rng.choice(phrases.COUPON_ON_SEVERAL).format(label=coupon.label())


def _flash_announcement(flash: FlashSale, link_no: int, rng: random.Random) -> str:
    values = {"link": link_no, "stock": flash.stock, "limit": flash.per_viewer_limit}
    if flash.coupon is None:
        return rng.choice(phrases.FLASH_PLAIN).format(**values)
    return rng.choice(phrases.FLASH_WITH_COUPON).format(label=flash.coupon.label(), **values)
