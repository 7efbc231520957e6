"""Arabic numbers -> Mandarin readings, written out so the voice never sees a digit.

Cardinals follow spoken usage: 十 not 一十 at the start (12 -> 十二, but 110 -> 一百一十),
one 零 per run of missing places (105 -> 一百零五, 10001 -> 一万零一), and 两 for a leading
2 before 千/万/亿 (2000 -> 两千, 22000 -> 两万两千, 200 -> 二百).
"""
from __future__ import annotations

DIGITS = "零一二三四五六七八九"
MAX_INT = 10**16 - 1  # 9999万亿: the largest number with a plain reading

_PLACES = ((1000, "千"), (100, "百"), (10, "十"), (1, ""))


def int_to_chinese(n: int, *, liang: bool = False) -> str:
    """Cardinal reading of 0 <= n <= MAX_INT; `liang` reads a lone 2 as 两 (2件 -> 两件)."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_INT:
        raise ValueError(f"no Chinese reading for {n!r}")
    if n == 0:
        return "零"
    if n == 2 and liang:
        return "两"
    return _cardinal(n, leading=True)


def digits_to_chinese(digits: str) -> str:
    """Digit-by-digit reading for model numbers, years and phone numbers ("850" -> 八五零)."""
    out = []
    for ch in digits:
        if ch == ".":
            out.append("点")
        elif ch.isdigit() and ch.isascii():
            out.append(DIGITS[int(ch)])
        else:
            raise ValueError(f"not a digit string: {digits!r}")
    return "".join(out)


def decimal_to_chinese(number: str, *, liang: bool = False) -> str:
    """Reading of "105", "19.9", "0.05" or "10,000"; the fraction is read digit by digit."""
    whole, dot, frac = number.replace(",", "").partition(".")
    if not whole.isascii() or not whole.isdigit() or (dot and not (frac.isascii() and frac.isdigit())):
        raise ValueError(f"not a decimal number: {number!r}")
    head = int_to_chinese(int(whole), liang=liang and not dot)
    return f"{head}点{digits_to_chinese(frac)}" if dot else head


def _cardinal(n: int, leading: bool) -> str:
    for size, unit, zero_below in ((10**8, "亿", 10**7), (10**4, "万", 1000)):
        if n >= size:
            high, low = divmod(n, size)
            head = "两" if high == 2 else _cardinal(high, leading)
            if not low:
                return head + unit
            return head + unit + ("零" if low < zero_below else "") + _cardinal(low, leading=False)
    return _section(n, leading)


def _section(n: int, leading: bool) -> str:
    """0 < n < 10000, with 零 for gaps; `leading` drops the 一 of a starting 十 (十二, not 一十二)."""
    if leading and 10 <= n < 20:
        return "十" + (DIGITS[n - 10] if n > 10 else "")
    out: list[str] = []
    gap = False
    for size, unit in _PLACES:
        digit = n // size % 10
        if not digit:
            gap = bool(out)
            continue
        if gap:
            out.append("零")
            gap = False
        out.append(("两" if digit == 2 and size == 1000 else DIGITS[digit]) + unit)
        if n % size == 0:
            break
    return "".join(out)
