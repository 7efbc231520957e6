from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from script_gen.normalize import normalize
from script_gen.numbers import decimal_to_chinese, digits_to_chinese, int_to_chinese


@pytest.mark.parametrize(
    ("n", "spoken"),
    [
        (0, "零"), (1, "一"), (2, "二"), (10, "十"), (11, "十一"), (19, "十九"), (20, "二十"),
        (99, "九十九"), (100, "一百"), (101, "一百零一"), (105, "一百零五"), (110, "一百一十"),
        (111, "一百一十一"), (200, "二百"), (999, "九百九十九"), (1000, "一千"), (1001, "一千零一"),
        (1010, "一千零一十"), (1100, "一千一百"), (2000, "两千"), (2200, "两千二百"),
        (10000, "一万"), (10001, "一万零一"), (10010, "一万零一十"), (10100, "一万零一百"),
        (11000, "一万一千"), (12000, "一万两千"), (20000, "两万"), (100000, "十万"),
        (100100, "十万零一百"), (110000, "十一万"), (220000, "二十二万"), (1000000, "一百万"),
        (1001000, "一百万一千"), (1000100, "一百万零一百"), (10000000, "一千万"),
        (12345678, "一千二百三十四万五千六百七十八"), (100000000, "一亿"), (100000001, "一亿零一"),
        (100100000, "一亿零一十万"), (200000000, "两亿"), (110000000, "一亿一千万"),
        (123456789012, "一千二百三十四亿五千六百七十八万九千零一十二"),
        (10**12, "一万亿"), (2 * 10**12, "两万亿"), (10**13, "十万亿"),
    ],
)
def test_int_to_chinese(n: int, spoken: str) -> None:
    assert int_to_chinese(n) == spoken


def test_int_to_chinese_liang_only_for_a_lone_two() -> None:
    assert int_to_chinese(2, liang=True) == "两"
    assert int_to_chinese(12, liang=True) == "十二"
    assert int_to_chinese(22, liang=True) == "二十二"


@pytest.mark.parametrize("bad", [-1, 10**16, True, 1.5])
def test_int_to_chinese_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        int_to_chinese(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("number", "spoken"),
    [("19.9", "十九点九"), ("0.5", "零点五"), ("0.05", "零点零五"), ("3.0", "三点零"), ("10,000", "一万"),
     ("1,234.5", "一千二百三十四点五"), ("105", "一百零五")],
)
def test_decimal_to_chinese(number: str, spoken: str) -> None:
    assert decimal_to_chinese(number) == spoken


def test_digits_to_chinese() -> None:
    assert digits_to_chinese("850") == "八五零"
    assert digits_to_chinese("2024") == "二零二四"
    with pytest.raises(ValueError):
        digits_to_chinese("8a")


@pytest.mark.parametrize(
    ("text", "speech"),
    [
        ("¥199", "一百九十九元"), ("￥19.9", "十九点九元"), ("199元", "一百九十九元"), ("¥19.90", "十九点九元"),
        ("¥199.00", "一百九十九元"), ("¥2", "两元"), ("¥99-199", "九十九到一百九十九元"),
        ("5折", "五折"), ("8.5折", "八五折"), ("85折", "八五折"), ("7折", "七折"),
        ("1、2、3", "一、二、三"), ("3、2、1，上链接！", "三、二、一，上链接！"),
        ("50%", "百分之五十"), ("99.9%", "百分之九十九点九"),
        ("4.5g", "四点五克"), ("2kg", "两公斤"), ("500ml", "五百毫升"), ("500mL", "五百毫升"), ("1.5L", "一点五升"),
        ("5000mAh", "五千毫安时"), ("65W", "六十五瓦"), ("30h", "三十小时"), ("30小时", "三十小时"),
        ("2cm", "两厘米"), ("3mm", "三毫米"), ("256GB", "二百五十六G"), ("1TB", "一T"), ("60Hz", "六十赫兹"),
        ("15.6英寸", "十五点六英寸"), ("5000 mAh", "五千毫安时"), ("42dB", "四十二分贝"),
        ("2件", "两件"), ("第2件", "第二件"), ("12件", "十二件"), ("2个", "两个"), ("2小时", "两小时"),
        ("2万件", "两万件"), ("1.5万", "一点五万"), ("2号链接", "二号链接"), ("2.5kg", "二点五公斤"),
        ("10000", "一万"), ("2000", "两千"), ("105", "一百零五"), ("1100", "一千一百"), ("1,000,000", "一百万"),
        ("2024年", "二零二四年"), ("质保2年", "质保两年"),
        ("X1", "X一"), ("K850", "K八五零"), ("IPX4", "IPX四"), ("3C", "三C"), ("USB3.0", "USB三点零"),
        ("iPhone 15", "iPhone 十五"), ("蓝牙5.3", "蓝牙五点三"),
        ("20:00", "二十点"), ("8:30", "八点三十"), ("8:05", "八点零五"), ("2:00", "两点"),
        ("20:00-22:00", "二十点到二十二点"),
        ("3-5天", "三到五天"), ("2-3天", "两到三天"), ("3~5天", "三到五天"),
        ("买1送1", "买一送一"), ("1+1", "一加一"), ("满199减20", "满一百九十九减二十"),
        ("30元/斤", "三十元每斤"), ("好/坏", "好/坏"),
        ("13800138000", "一三八零零一三八零零零"), ("400-820-8820", "四零零八二零八八二零"), ("007", "零零七"),
        ("２件", "两件"),
        ("声屿 X1 主动降噪耳机，今天¥199！", "声屿 X一 主动降噪耳机，今天一百九十九元！"),
        ("家人们，上链接啦！", "家人们，上链接啦！"),
    ],
)
def test_normalize_reads(text: str, speech: str) -> None:
    assert normalize(text)[0] == speech


def test_index_points_at_each_characters_reading() -> None:
    speech, index = normalize("3、2、1，上链接！")
    assert [speech[index[i]] for i in range(len("3、2、1，上链接！"))] == list("三、二、一，上链接！")
    speech, index = normalize("原价¥399，到手¥199")
    assert speech == "原价三百九十九元，到手一百九十九元"
    assert index[2] == 2  # ¥ starts the reading of the price
    assert speech[index[6]:index[7]] == "，"
    assert speech[index[9]:] == "一百九十九元"
    speech, index = normalize("K850耳机")
    assert [speech[index[i]] for i in range(6)] == list("K八五零耳机")


_TEXT = st.text(alphabet="0123456789０１２¥￥.,:：%％-~+/ 年件折第元小时万号gkmlLWhAHzBGTXKiPho上链接，、！", max_size=40)


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_index_is_valid_and_no_digit_reaches_the_voice(text: str) -> None:
    speech, index = normalize(text)
    assert len(index) == len(text) + 1
    assert index[0] == 0 and index[-1] == len(speech)
    assert all(a <= b for a, b in zip(index, index[1:]))
    assert not any(c in "0123456789０１２" for c in speech), (text, speech)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_any_text_normalizes(text: str) -> None:
    speech, index = normalize(text)
    assert len(index) == len(text) + 1 and index[-1] == len(speech)
