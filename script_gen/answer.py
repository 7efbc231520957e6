"""Answers to viewers' questions, built only from the product data and the live state.

Nothing here invents a fact: a question the data cannot answer (shipping times, say) is
pointed at the product page. Every answer passes the ad-law linter (tests check it). The
caller puts "@昵称" on the banner; AnswerQueue merges the same question asked by many.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from script_gen.intents import classify, is_chatter
from script_gen.rundown import Coupon, Product, Rundown, format_yuan

AI_DISCLOSURE = "我是本直播间的AI数字人主播，不是真人哦，有问题尽管在评论区问我！"
_GREETING = re.compile(r"主播好|你好|大家好|来了|晚上好|早上好|下午好|中午好|hi|hello", re.IGNORECASE)
_TOKEN_SPLIT = re.compile(r"[\s·・/|，,、（）()]+")
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]{2,}")


@dataclass(frozen=True)
class FlashSaleState:
    left: int  # flash-sale units or coupons still to grab
    per_viewer_limit: int


@dataclass(frozen=True)
class LiveFacts:
    """What the show knows right now; a product missing from a mapping falls back to its data."""

    stock: Mapping[str, int] = field(default_factory=dict)  # stock left per product
    links: Mapping[str, int] = field(default_factory=dict)  # link number per product
    coupons: Mapping[str, Coupon | None] = field(default_factory=dict)  # coupon in force (None: none)
    flash_sales: Mapping[str, FlashSaleState] = field(default_factory=dict)  # flash sales now open


@dataclass(frozen=True)
class Answer:
    question: str
    intent: str
    product_id: str
    text: str


def answer(question: str, rundown: Rundown, product_id: str, live: LiveFacts | None = None) -> Answer:
    """product_id is the product on air; a question naming another rundown product is answered for it."""
    live = live or LiveFacts()
    intent = classify(question)
    target = resolve_product(question, rundown, product_id)
    product = rundown.product(target)
    text = _text(intent, question, product, rundown, live)
    return Answer(question=question, intent=intent, product_id=target, text=text)


def resolve_product(question: str, rundown: Rundown, default: str) -> str:
    """The product whose name fragment, brand or category the question names (longest match wins)."""
    best, best_len = default, 0
    for product in rundown.products:
        length = max((len(key) for key in _keys(product) if key.lower() in question.lower()), default=0)
        if length > best_len or (length == best_len and length and product.id == default):
            best, best_len = product.id, length
    return best


def _keys(product: Product) -> set[str]:
    """Name tokens (声屿, X1), every 2+ character piece of Chinese words (耳机, 精华) and the category."""
    keys = {product.category}
    for token in _TOKEN_SPLIT.split(product.name):
        if re.fullmatch(r"[A-Za-z][A-Za-z0-9.-]*", token):
            keys.add(token)
        for run in _CJK_RUN.findall(token):
            keys |= {run[i:j] for i in range(len(run)) for j in range(i + 2, len(run) + 1)}
    return keys


def _text(intent: str, question: str, product: Product, rundown: Rundown, live: LiveFacts) -> str:
    name = product.name
    link = live.links.get(product.id) or _link_no(rundown, product.id)
    link_text = f"拍{link}号链接" if link else "上链接时我提醒大家"
    live_price = format_yuan(product.live_price)
    coupon = live.coupons[product.id] if product.id in live.coupons else product.coupon
    if intent == "ai_disclosure":
        return AI_DISCLOSURE
    if intent == "price":
        text = f"{name}原价¥{format_yuan(product.price)}，直播间到手价¥{live_price}"
        if product.price == product.live_price:
            text = f"{name}直播间到手价¥{live_price}"
        if coupon is not None and coupon.min_spend <= product.live_price:
            text += f"，领{coupon.label()}的券后¥{format_yuan(product.live_price - coupon.amount)}"
        return f"{text}，{link_text}。"
    if intent == "coupon":
        if coupon is None:
            return f"{name}这会儿没有优惠券，直播间到手价¥{live_price}。"
        if coupon.min_spend <= product.live_price:
            final = format_yuan(product.live_price - coupon.amount)
            return f"{name}有{coupon.label()}的券，券后到手¥{final}，先领券再{link_text}。"
        return f"{name}有{coupon.label()}的券，凑够{format_yuan(coupon.min_spend)}元就能用。"
    if intent == "how_to_buy":
        if not link:
            return f"{name}还没上链接，上链接时我提醒大家。"
        return f"点下方小黄车，拍{link}号链接就是{name}。"
    if intent == "stock":
        flash = live.flash_sales.get(product.id)
        if flash is not None and flash.left > 0:
            return f"{name}秒杀还剩{flash.left}份，每人限{flash.per_viewer_limit}份，抓紧！"
        left = live.stock.get(product.id, product.stock)
        if left <= 0:
            return f"{name}现货已经抢光了，先加购物车等补货。"
        return f"{name}现在还有{left}件，看中的{link_text}。"
    if intent == "shipping":
        return f"{name}的发货时间和快递以商品详情页为准，下单后在订单里能看物流。"
    if intent == "spec":
        return _spec_text(question, product)
    if intent == "gift":
        if not product.gifts:
            return f"{name}这次没有赠品，直播间到手价¥{live_price}。"
        return f"拍{name}送{'、'.join(product.gifts)}。"
    if intent == "after_sale":
        if not product.after_sale:
            return f"{name}的售后以商品详情页为准。"
        return f"{name}的售后：{'，'.join(product.after_sale)}。"
    if intent == "authenticity":
        genuine = [p for p in product.after_sale if "正品" in p]
        if genuine:
            return f"{name}有{'，'.join(genuine)}，品牌和店铺资质在商品详情页能查到。"
        return f"{name}的品牌和店铺资质在商品详情页能查到。"
    if is_chatter(question):
        return "欢迎来到直播间！" if _GREETING.search(question) else "谢谢支持！"
    return f"这个问题我记下了，{name}的详细信息可以看商品详情页。"


def _spec_text(question: str, product: Product) -> str:
    """The spec the question names (续航, 多重 -> 重量), or all of them."""
    asked = [(k, v) for k, v in product.specs if k in question or k[-2:] in question or k[:2] in question or ("多重" in question and "重" in k)]
    specs = asked or list(product.specs)
    if not specs:
        return f"{product.name}的详细参数请看商品详情页。"
    return f"{product.name}：{'，'.join(k + v for k, v in specs)}。"


def _link_no(rundown: Rundown, product_id: str) -> int | None:
    try:
        return rundown.link_no(product_id)
    except KeyError:
        return None


class AnswerQueue:
    """Merges repeats: the same intent and product asked within window_s gets one answer.

    Chatter gets at most one acknowledgement per window_s. Pure: the caller passes the time.
    """

    def __init__(self, rundown: Rundown, product_id: str, live: LiveFacts | None = None, window_s: float = 30.0) -> None:
        self.rundown = rundown
        self.product_id = product_id  # the product on air; the caller moves it on
        self.live = live or LiveFacts()
        self.window_s = window_s
        self._last: dict[tuple[str, ...], tuple[float, Answer]] = {}
        self._askers: dict[int, list[str]] = {}

    def offer(self, nickname: str, question: str, now: float) -> Answer | None:
        """The answer to queue for the host, or None when an answer given within the window covers it."""
        result = answer(question, self.rundown, self.product_id, self.live)
        key = self._key(result)
        previous = self._last.get(key)
        if previous is not None and now - previous[0] < self.window_s:
            askers = self._askers[id(previous[1])]
            if nickname not in askers:
                askers.append(nickname)
            return None
        if previous is not None:
            del self._askers[id(previous[1])]  # kept only while its answer is the live one: ids stay unique
        self._last[key] = (now, result)
        self._askers[id(result)] = [nickname]
        return result

    def askers(self, answer: Answer) -> tuple[str, ...]:
        """Everyone whose question this answer covers, first asker first (for the @昵称 banner)."""
        return tuple(self._askers.get(id(answer), ()))

    @staticmethod
    def _key(result: Answer) -> tuple[str, ...]:
        if result.intent == "other":
            return ("chatter",) if is_chatter(result.question) else ("other", result.product_id, result.question.strip())
        if result.intent == "ai_disclosure":
            return ("ai_disclosure",)
        return (result.intent, result.product_id)
