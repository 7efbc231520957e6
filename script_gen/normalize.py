"""Display text -> what the voice should say, with a position index between the two.

Mandarin voices read Chinese characters well and digits, currency signs and Latin unit
symbols badly, so every number is written out in characters, with the reading its context
calls for (price, discount, percentage, year, time, model number...). Subtitles keep the
display text; cues are pinned to display positions and timed through the index.

Readings (docs/rundown.md lists them with examples):
  ¥199 / 199元 -> 一百九十九元      8.5折 / 85折 -> 八五折       50% -> 百分之五十
  2024年 -> 二零二四年              20:00 -> 二十点              3-5天 -> 三到五天
  2件 -> 两件, 第2件 -> 第二件      K850 / X1 / 3C -> K八五零 / X一 / 三C
  4.5g -> 四点五克, 256GB -> 二百五十六G, 5000mAh -> 五千毫安时
A number standing apart from letters ("iPhone 15") is a cardinal (十五); digits glued to
Latin letters, numbers with a leading 0 and runs of 11+ digits are read digit by digit.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from script_gen.numbers import decimal_to_chinese, digits_to_chinese, int_to_chinese

Piece = tuple[int, str]  # (display characters consumed, their speech)

# Full-width digits, letters and signs scan as ASCII (same length, so positions hold).
_ASCII = str.maketrans(
    {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F) if chr(c - 0xFEE0).isalnum() or chr(c - 0xFEE0) in "%.:+-~"}
)

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_RANGE_SEP = r"\s*[-~～—–]\s*"
_TIME = r"([01]?\d|2[0-4])[:：]([0-5]\d)"

_TIME_RE = re.compile(rf"{_TIME}(?:{_RANGE_SEP}{_TIME})?", re.ASCII)
_PHONE_RE = re.compile(r"\d{3,4}-\d{3,4}-\d{4}|0\d{2,3}-\d{7,8}|\d{11,}(?!\.\d)", re.ASCII)
_MONEY_RE = re.compile(rf"[¥￥]\s*({_NUM})(?:{_RANGE_SEP}({_NUM}))?", re.ASCII)
_PERCENT_RE = re.compile(rf"({_NUM})\s*[%％]", re.ASCII)
_DISCOUNT_RE = re.compile(r"(\d)(?:\.(\d)|(\d))?折", re.ASCII)
_YEAR_RE = re.compile(r"(19\d\d|20\d\d)年", re.ASCII)
_NUMBER_RE = re.compile(_NUM, re.ASCII)
_RANGE_RE = re.compile(rf"({_NUM}){_RANGE_SEP}({_NUM})", re.ASCII)
_ALNUM_RE = re.compile(r"[A-Za-z0-9]+(?:\.\d+[A-Za-z0-9]*)*", re.ASCII)
_DIGITS_RE = re.compile(r"[0-9]+")

# Latin unit -> (reading, whether a lone 2 before it is 两). Longest first.
_UNITS: dict[str, tuple[str, bool]] = {
    "mAh": ("毫安时", False), "kHz": ("千赫兹", False), "MHz": ("兆赫兹", False),
    "GHz": ("吉赫兹", False), "Hz": ("赫兹", False), "kg": ("公斤", True), "KG": ("公斤", True),
    "mg": ("毫克", True), "ml": ("毫升", True), "mL": ("毫升", True), "ML": ("毫升", True),
    "cm": ("厘米", True), "mm": ("毫米", True), "km": ("公里", True), "kW": ("千瓦", True),
    "dB": ("分贝", False), "GB": ("G", False), "TB": ("T", False), "MB": ("M", False),
    "min": ("分钟", True), "°C": ("摄氏度", False), "℃": ("摄氏度", False), "g": ("克", True),
    "L": ("升", True), "W": ("瓦", False), "V": ("伏", False), "h": ("小时", True), "m": ("米", True),
    "G": ("G", False), "T": ("T", False), "s": ("秒", True),
}
_UNIT_RE = re.compile(
    r"\s*(" + "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True)) + r")(?![A-Za-z])", re.ASCII
)

# After these a lone 2 is 两 (两件, 两万, 两点): measure words and magnitudes.
_LIANG_AFTER = tuple(
    "件个份台瓶盒支双条袋包张套年天次位只款片颗粒斤箱罐杯本把块根种周顿桶副对组节层岁步色倍米升克元点万千亿百"
) + ("小时", "分钟")


def normalize(text: str) -> tuple[str, tuple[int, ...]]:
    """(speech, index): index[i] is where display character i's reading starts in speech."""
    scan = text.translate(_ASCII)
    pieces: list[Piece] = []
    number_end = -2  # where the last number token ended
    i = 0
    while i < len(text):
        got = _token(scan, i)
        if got is None:
            pieces.append((1, _plain(text, scan, i, i - number_end)))
            i += 1
        else:
            pieces.extend(got)
            i += sum(n for n, _ in got)
            number_end = i
    return _assemble(pieces)


def _assemble(pieces: list[Piece]) -> tuple[str, tuple[int, ...]]:
    """Concatenate pieces; characters inside a piece get positions spread over its speech."""
    index: list[int] = []
    pos = 0
    for n, speech in pieces:
        index.extend(pos + k * len(speech) // n for k in range(n))
        pos += len(speech)
    index.append(pos)
    return "".join(s for _, s in pieces), tuple(index)


def _plain(text: str, scan: str, i: int, since_number: int) -> str:
    """`since_number`: characters since the last number token ended (0: right after it)."""
    ch, nxt = scan[i], scan[i + 1:i + 2]
    if ch == "+" and since_number == 0 and nxt.isdigit():
        return "加"  # 1+1 -> 一加一
    if ch == "/" and since_number <= 1 and nxt and _is_cjk(nxt):
        return "每"  # 30元/斤, 5g/袋 -> 三十元每斤, 五克每袋
    return text[i]


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def _token(scan: str, i: int) -> list[Piece] | None:
    """The reading of the number-bearing token starting at i, or None for a plain character."""
    ch = scan[i]
    prev = scan[i - 1] if i else ""
    if ch in "¥￥":
        return _money(scan, i)
    if ch.isascii() and ch.isalpha() and not (prev.isascii() and prev.isalnum()):
        return _letters(scan, i)
    if not (ch.isascii() and ch.isdigit()):
        return None
    if prev.isascii() and prev.isalnum():  # digits left over after a unit or a grouped number
        return _spell(_DIGITS_RE.match(scan, i).group())
    for rule in _DIGIT_RULES:
        got = rule(scan, i)
        if got is not None:
            return got
    return None


def _money(scan: str, i: int) -> list[Piece] | None:
    m = _MONEY_RE.match(scan, i)
    if m is None:
        return None
    yuan = "" if scan.startswith(("元", "块"), m.end()) else "元"
    sign = m.start(1) - i
    if m.group(2) is None:
        return [(sign, ""), (len(m.group(1)), _money_amount(m.group(1), liang=True) + yuan)]
    sep = m.start(2) - m.end(1)
    return [
        (sign, ""),
        (len(m.group(1)), _money_amount(m.group(1), liang=True)),
        (sep, "到"),
        (len(m.group(2)), _money_amount(m.group(2), liang=True) + yuan),
    ]


def _money_amount(number: str, *, liang: bool) -> str:
    """Prices drop trailing fraction zeros: ¥19.90 -> 十九点九元, ¥199.00 -> 一百九十九元."""
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return decimal_to_chinese(number, liang=liang)


def _letters(scan: str, i: int) -> list[Piece] | None:
    """A Latin word with digits glued in is a model name: digits one by one (X1 -> X一)."""
    m = _ALNUM_RE.match(scan, i)
    if m is None or not any(c.isdigit() for c in m.group()):
        return None
    return _spell(m.group())


def _spell(word: str) -> list[Piece]:
    """Digits one by one; letters kept; a decimal point is 点, a thousands comma is silent."""
    return [(1, digits_to_chinese(c) if c.isdigit() or c == "." else "" if c == "," else c) for c in word]


def _time(scan: str, i: int) -> list[Piece] | None:
    m = _TIME_RE.match(scan, i)
    if m is None or scan[m.end():m.end() + 1].isdigit():
        return None
    first = _clock(m.group(1), m.group(2))
    if m.group(3) is None:
        return [(m.end() - i, first)]
    return [(m.start(3) - i, first + "到"), (m.end() - m.start(3), _clock(m.group(3), m.group(4)))]


def _clock(hour: str, minute: str) -> str:
    """20:00 -> 二十点, 8:30 -> 八点三十, 8:05 -> 八点零五, 2:00 -> 两点."""
    spoken = int_to_chinese(int(hour), liang=True) + "点"
    m = int(minute)
    if m == 0:
        return spoken
    return spoken + ("零" if m < 10 else "") + int_to_chinese(m)


def _phone(scan: str, i: int) -> list[Piece] | None:
    m = _PHONE_RE.match(scan, i)
    if m is None or scan[m.end():m.end() + 1].isdigit():
        return None
    return [(1, "" if c == "-" else digits_to_chinese(c)) for c in m.group()]


def _percent(scan: str, i: int) -> list[Piece] | None:
    m = _PERCENT_RE.match(scan, i)
    if m is None:
        return None
    return [(len(m.group(1)), "百分之" + decimal_to_chinese(m.group(1))), (m.end() - m.end(1), "")]


def _discount(scan: str, i: int) -> list[Piece] | None:
    """8.5折 and 85折 are both 八五折; 7折 is 七折."""
    m = _DISCOUNT_RE.match(scan, i)
    if m is None:
        return None
    return [(1, digits_to_chinese(c)) if c.isdigit() else (1, "") for c in m.group()[:-1]] + [(1, "折")]


def _year(scan: str, i: int) -> list[Piece] | None:
    m = _YEAR_RE.match(scan, i)
    return None if m is None else _spell(m.group(1)) + [(1, "年")]


def _number(scan: str, i: int) -> list[Piece] | None:
    """A cardinal, a range (3-5天 -> 三到五天), with its Latin unit when one follows."""
    m = _RANGE_RE.match(scan, i)
    if m is None or _digit_by_digit(m.group(1)) or _digit_by_digit(m.group(2)):
        m = _NUMBER_RE.match(scan, i)
    assert m is not None  # _token only calls this at a digit
    end = m.end()
    unit = _UNIT_RE.match(scan, end)
    if unit is None and scan[end:end + 1].isascii() and scan[end:end + 1].isalpha():
        return _spell(_ALNUM_RE.match(scan, i).group())  # 3C, 4K: glued to letters
    numbers = [m.group(1), m.group(2)] if m.re is _RANGE_RE else [m.group()]
    if _digit_by_digit(numbers[0]):
        return _spell(numbers[0])
    after = scan[unit.end():] if unit else scan[end:]
    liang = (_UNITS[unit.group(1)][1] if unit else after.startswith(_LIANG_AFTER)) and not scan[i - 1:i] == "第"
    read = _money_amount if not unit and after.startswith(("元", "块")) else decimal_to_chinese
    pieces = [(len(numbers[0]), read(numbers[0], liang=liang))]
    if len(numbers) > 1:
        pieces += [(m.start(2) - m.end(1), "到"), (len(numbers[1]), read(numbers[1], liang=liang))]
    if unit:
        pieces.append((unit.end() - end, _UNITS[unit.group(1)][0]))
    return pieces


def _digit_by_digit(number: str) -> bool:
    """A leading 0 (007) or a number too long for a cardinal reads digit by digit."""
    whole = number.split(".")[0].replace(",", "")
    return (len(whole) > 1 and whole[0] == "0") or len(whole) > 10


_DIGIT_RULES: tuple[Callable[[str, int], list[Piece] | None], ...] = (
    _time, _phone, _percent, _discount, _year, _number,
)
