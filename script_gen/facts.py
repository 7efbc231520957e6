"""What the host may state about a product: the figures and promises its data supports.

The offline generator only fills templates from the data; text written by a language model
is checked here before it is spoken: every price, discount, percentage and count it states
must be one the data gives (or one computed exactly from it: the saving, the price after a
coupon), and every after-sale or gift promise must be one the product makes. Pure functions.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal

from script_gen.rundown import FlashSale, Product

_CN_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
_CN_BIG = {"万": 10_000, "亿": 100_000_000}
_CN = "[零〇一二两三四五六七八九十百千万亿]+"
_D = "[零〇一二三四五六七八九]"
_ARABIC = r"\d+(?:\.\d+)?"
_ASCII = str.maketrans({chr(c): chr(c - 0xFEE0) for c in range(0xFF10, 0xFF1A)} | {"．": ".", "％": "%", "￥": "¥"})

# 9块9 / 九块九 / 六十九点九元 / 三毛: money, read as one figure
_MONEY_ARABIC = re.compile(rf"({_ARABIC})\s*(?:块钱|块|元)(\d)(?![\d.])")
_MONEY_CN = re.compile(rf"({_CN})(?:点({_D}+))?(块钱|块|元|毛|角)({_D})?")
# 5折 / 8.5折 / 85折 / 五折 / 八五折 / 八点五折, and 半价: discounts, checked as ratios
_DISCOUNT = re.compile(rf"(\d(?:\.\d)?|\d\d|{_D}(?:点?{_D})?)\s*折|半价")
# 原价三百九十九 / 只要一百九十九 / 立减二十: a price said without 元
_PRICE_CN = re.compile(rf"(?:价|只要|仅需|仅|才|减|省|券后|到手|便宜)[是了就只要才仅]*({_CN})")
_PERCENT_CN = re.compile(rf"百分之({_CN})")
# counts a host quotes: 还剩五百份, 限两件 (a lone 一 is an article, 一件 / 一份, not a figure)
_COUNT_CN = re.compile(rf"({_CN})(件|份|台|单|盒|瓶|袋|支|套|箱|罐|双|条|组|张|包|天|年|个月|小时|克|毫升)")

# Promises a host may make only when the product's data makes them.
PROMISES = (
    "价保", "保价", "无理由", "退换", "包退", "包换", "上门", "包邮", "顺丰", "运费险", "假一赔", "正品", "保修",
    "只换不修", "包赔", "赠品", "赠送", "加送", "再送", "还送", "买一送一", "以旧换新", "分期", "免息",
)
_GIFT_WORDS = ("赠品", "赠送", "加送", "再送", "还送")
# The host is an AI and says so; generated text may never deny it.
_HUMAN_CLAIM = re.compile(r"(?:我|主播|本人)(?:可)?(?:是|就是|也是)(?:个)?真人|真人主播|不是(?:AI|ai|机器人|数字人|虚拟)")
# Cues are placed by our code (the countdown, 上链接): generated text must not say them unplaced.
COUNTDOWN_WORDS = re.compile(r"[3三]\s*[、，,！!\s]\s*[2二]\s*[、，,！!\s]\s*[1一]|倒数|倒计时")
LINK_UP_WORDS = re.compile(r"上链接|开抢|开价")


def cn_number(text: str) -> int:
    """Chinese numerals -> int: 一百九十九, 两万两千, 十二, and the spoken 一百五 (150)."""
    total = section = number = 0
    last_unit = 1
    after_unit = False
    for ch in text:
        if ch in _CN_DIGIT:
            number = _CN_DIGIT[ch]
            after_unit = after_unit and ch not in "零〇"
        elif ch in _CN_UNIT:
            last_unit = _CN_UNIT[ch]
            section += (number or 1) * last_unit
            number, after_unit = 0, True
        elif ch in _CN_BIG:
            total = (total + section + number) * _CN_BIG[ch]
            section = number = 0
            last_unit, after_unit = _CN_BIG[ch], True
        else:
            raise ValueError(f"not a Chinese numeral: {text!r}")
    if number and after_unit and last_unit >= 100:  # 一百五 = 150, 两千五 = 2500
        number *= last_unit // 10
    return total + section + number


def _cn_digits(text: str) -> Decimal:
    """八五 -> 0.85-style digit strings read one by one (for fractions: 点九 -> 9)."""
    return Decimal("".join(str(_CN_DIGIT[c]) for c in text))


def figures(text: str) -> list[Decimal]:
    """Every price, percentage and count `text` states (discounts aside: see `discounts`)."""
    text = _DISCOUNT.sub(" ", text.translate(_ASCII).replace(",", ""))
    found: list[Decimal] = []

    def money_arabic(m: re.Match[str]) -> str:
        found.append(Decimal(m.group(1)) + Decimal(m.group(2)) / 10)
        return " "

    def money_cn(m: re.Match[str]) -> str:
        value = Decimal(cn_number(m.group(1)))
        if m.group(2):
            value += Decimal("0." + str(_cn_digits(m.group(2))).zfill(len(m.group(2))))
        if m.group(3) in ("毛", "角"):
            value /= 10
        elif m.group(4):
            value += Decimal(_CN_DIGIT[m.group(4)]) / 10
        found.append(value)
        return " "

    def cardinal(m: re.Match[str]) -> str:  # 百分之五十, or a price said without 元
        found.append(Decimal(cn_number(m.group(1))))
        return " "

    def count(m: re.Match[str]) -> str:
        value = cn_number(m.group(1))
        if value >= 2:
            found.append(Decimal(value))
        return " "

    text = _MONEY_ARABIC.sub(money_arabic, text)
    text = _MONEY_CN.sub(money_cn, text)
    text = _PRICE_CN.sub(cardinal, text)
    text = _PERCENT_CN.sub(cardinal, text)
    text = _COUNT_CN.sub(count, text)
    found += [Decimal(n) for n in re.findall(_ARABIC, text)]
    return found


def discounts(text: str) -> list[Decimal]:
    """The price ratios `text` claims: 5折 -> 0.5, 八五折 -> 0.85, 半价 -> 0.5."""
    out = []
    for m in _DISCOUNT.finditer(text.translate(_ASCII)):
        token = m.group(1)
        if token is None:
            out.append(Decimal("0.5"))
            continue
        token = token.replace("点", ".")
        if not token[0].isdigit():
            token = "".join(str(_CN_DIGIT[c]) if c in _CN_DIGIT else c for c in token)
        value = Decimal(token)
        out.append(value / 100 if value >= 10 else value / 10)
    return out


def allowed_figures(product: Product, flash: FlashSale | None = None, link_no: int | None = None,
                    extra: Iterable[str] = ()) -> frozenset[Decimal]:
    """Every figure the host may quote about `product`: the data's own and those computed exactly from it.

    `extra` are further texts whose figures count as facts (an answer built from the live state).
    """
    found = {product.price, product.live_price, product.price - product.live_price, Decimal(product.stock)}
    if link_no is not None:
        found.add(Decimal(link_no))
    coupons = [product.coupon]
    if flash is not None:
        found |= {Decimal(flash.stock), Decimal(flash.per_viewer_limit)}
        coupons.append(flash.coupon)
    for coupon in filter(None, coupons):
        found |= {coupon.amount, coupon.min_spend, product.live_price - coupon.amount}
    for text in (*data_texts(product), *extra):
        found |= set(figures(text))
    return frozenset(found)


def data_texts(product: Product) -> tuple[str, ...]:
    """The product's own words: what a promise or a figure may be taken from."""
    return (product.name, product.category, *product.selling_points, *product.gifts, *product.after_sale,
            *(k + v for k, v in product.specs))


def price_ratios(product: Product, flash: FlashSale | None = None) -> tuple[Decimal, ...]:
    """Live price / original price, also after a coupon usable on one item."""
    finals = [product.live_price]
    for coupon in filter(None, (product.coupon, flash.coupon if flash else None)):
        if coupon.min_spend <= product.live_price:
            finals.append(product.live_price - coupon.amount)
    return tuple(final / product.price for final in finals)


def problems(text: str, product: Product, allowed: frozenset[Decimal], ratios: Iterable[Decimal],
             facts: Iterable[str] = ()) -> list[str]:
    """Why `text` may not be spoken about `product` (empty: it may): figures, discounts and promises the
    data does not support, and any claim to be a human. `facts` are texts whose promises also count."""
    found: list[str] = []
    for figure in figures(text):
        if figure not in allowed:
            found.append(f"figure {figure} is not in the product data")
    ratios = tuple(ratios)
    for ratio in discounts(text):
        # a whole 折 may round the real ratio (199/399 is 5折); 8.5折 must be exact to a point
        tolerance = Decimal("0.01") if (ratio * 10) % 1 == 0 else Decimal("0.005")
        if not any(abs(ratio - real) < tolerance for real in ratios):
            found.append(f"discount {ratio} is not the product's")
    known = "".join((*data_texts(product), *facts, *(_GIFT_WORDS if product.gifts else ())))
    for word in PROMISES:
        if word in text and word not in known:
            found.append(f"promise {word!r} is not in the product data")
    if _HUMAN_CLAIM.search(text):
        found.append("claims to be a human (the host is an AI)")
    return found
