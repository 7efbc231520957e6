from __future__ import annotations

import copy
import os
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avatar.voice.base import VoiceSettings
from script_gen.rundown import (
    Coupon,
    RundownError,
    format_yuan,
    load_rundown,
    parse_rundown,
)

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo" / "rundown.yaml"

BASE: dict[str, Any] = {
    "title": "测试专场",
    "products": [
        {
            "id": "a1",
            "name": "声屿 X1 耳机",
            "category": "3C",
            "price": 399,
            "live_price": 199,
            "selling_points": ["降噪"],
            "stock": 100,
            "coupon": {"amount": 20, "min_spend": 199},
        },
        {"id": "b2", "name": "坚果", "category": "食品", "price": 59.9, "live_price": "39.90",
         "selling_points": ["好吃"], "stock": 5},
    ],
    "segments": [{"product": "a1"}, {"product": "b2", "script": ["第一句", "第二句"]}],
}


def base() -> dict[str, Any]:
    return copy.deepcopy(BASE)


def error_of(data: object) -> str:
    with pytest.raises(RundownError) as caught:
        parse_rundown(data, "show.yaml")
    return str(caught.value)


def test_demo_rundown_loads() -> None:
    rundown = load_rundown(DEMO)
    assert rundown.source == str(DEMO)
    assert len(rundown.products) == 3 and len(rundown.segments) == 3
    assert len({p.category for p in rundown.products}) == 3
    assert [rundown.link_no(s.product_id) for s in rundown.segments] == [1, 2, 3]
    written = [s for s in rundown.segments if s.script is not None]
    assert len(written) == 1 and 5 <= len(written[0].script) <= 6
    assert written[0].flash_sale is not None and written[0].flash_sale.countdown_after is not None
    assert sum(s.script is None for s in rundown.segments) == 2
    assert rundown.host.voice == VoiceSettings(engine="offline")


def test_parsed_values() -> None:
    rundown = parse_rundown(base(), "show.yaml")
    a1, b2 = rundown.products
    assert a1.price == Decimal(399) and a1.live_price == Decimal(199)
    assert b2.price == Decimal("59.9") and b2.live_price == Decimal("39.90")
    assert a1.coupon == Coupon(Decimal(20), Decimal(199))
    assert a1.gifts == () and a1.after_sale == () and a1.specs == ()
    assert rundown.segments[0].script is None and rundown.segments[1].script == ("第一句", "第二句")
    assert rundown.host.avatar == "default" and rundown.host.voice == VoiceSettings()
    assert rundown.product("b2") is b2
    with pytest.raises(KeyError):
        rundown.product("zz")


def test_specs_keep_order_and_numbers_become_text() -> None:
    data = base()
    data["products"][0]["specs"] = {"重量": 4.5, "续航": "30小时", "蓝牙": "5.3", "颗数": 2}
    specs = parse_rundown(data, "s").products[0].specs
    assert specs == (("重量", "4.5"), ("续航", "30小时"), ("蓝牙", "5.3"), ("颗数", "2"))


def test_flash_sale_defaults_to_product_coupon_and_null_removes_it() -> None:
    data = base()
    data["segments"][0]["flash_sale"] = {"batch": "B1", "stock": 50}
    data["segments"][1]["flash_sale"] = {"batch": "B2", "stock": 1, "coupon": None}
    rundown = parse_rundown(data, "s")
    first, second = (s.flash_sale for s in rundown.segments)
    assert first.coupon == rundown.products[0].coupon and first.per_viewer_limit == 1
    assert first.countdown_after is None
    assert second.coupon is None


def test_null_optional_fields_mean_left_out() -> None:
    data = base()
    data["host"] = {"avatar": None, "voice": None}
    data["products"][0].update(specs=None, gifts=None, after_sale=None, coupon=None)
    data["segments"][1] = {"product": "b2", "script": None, "flash_sale": {"batch": "B", "stock": 2,
                                                                          "per_viewer_limit": None}}
    rundown = parse_rundown(data, "s")
    assert rundown.host.avatar == "default" and rundown.host.voice == VoiceSettings()
    a1 = rundown.products[0]
    assert (a1.specs, a1.gifts, a1.after_sale, a1.coupon) == ((), (), (), None)
    assert rundown.segments[1].script is None and rundown.segments[1].flash_sale.per_viewer_limit == 1
    data["products"][0]["name"] = None
    assert error_of(data) == "show.yaml: products[0].name: must be text, got null"


def test_link_numbers_follow_first_presentation() -> None:
    data = base()
    data["products"].append(dict(data["products"][1], id="c3"))
    data["segments"] = [{"product": "b2"}, {"product": "a1"}, {"product": "b2"}, {"product": "c3"}]
    rundown = parse_rundown(data, "s")
    assert [rundown.link_no(p) for p in ("b2", "a1", "c3")] == [1, 2, 3]


@pytest.mark.parametrize(
    ("amount", "min_spend", "label"),
    [("20", "199", "满199减20"), ("20", "0", "无门槛减20"), ("20.00", "199.0", "满199减20"),
     ("5.5", "99.9", "满99.9减5.5"), ("10", "100", "满100减10")],
)
def test_coupon_label(amount: str, min_spend: str, label: str) -> None:
    assert Coupon(Decimal(amount), Decimal(min_spend)).label() == label


def test_format_yuan() -> None:
    assert [format_yuan(Decimal(s)) for s in ("199", "19.90", "0.50", "100", "1E+2")] == ["199", "19.9", "0.5", "100", "100"]


def _set(path: list[Any], value: object) -> dict[str, Any]:
    data = base()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def _drop(path: list[Any]) -> dict[str, Any]:
    data = base()
    node = data
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_set(["products", 1, "live_price"], "abc"), 'show.yaml: products[1].live_price: must be a number, got "abc"'),
        (_set(["products", 0, "live_price"], 499), "show.yaml: products[0].live_price: must not exceed price (399), got 499"),
        (_set(["products", 0, "price"], 0), "show.yaml: products[0].price: must be > 0, got 0"),
        (_set(["products", 0, "price"], 19.999), "show.yaml: products[0].price: must have at most 2 decimal places, got 19.999"),
        (_set(["products", 0, "price"], True), "show.yaml: products[0].price: must be a number, got true"),
        (_set(["products", 0, "price"], float("nan")), "show.yaml: products[0].price: must be a number, got nan"),
        (_set(["products", 0, "stock"], -1), "show.yaml: products[0].stock: must be between 0 and 100000000, got -1"),
        (_set(["products", 0, "stock"], 2.5), "show.yaml: products[0].stock: must be a whole number, got 2.5"),
        (_set(["products", 1, "id"], "a1"), 'show.yaml: products[1].id: duplicate id "a1" (also products[0])'),
        (_set(["products", 1, "id"], "B 2"), 'show.yaml: products[1].id: may use only a-z, 0-9, - and _; got "B 2"'),
        (_set(["products", 0, "name"], "  "), "show.yaml: products[0].name: must not be empty"),
        (_set(["products", 0, "name"], 2024), "show.yaml: products[0].name: must be text, got 2024"),
        (_set(["products", 0, "selling_points"], []), "show.yaml: products[0].selling_points: must not be empty"),
        (_set(["products", 0, "selling_points"], "降噪"), 'show.yaml: products[0].selling_points: must be a list, got "降噪"'),
        (_set(["products", 0, "selling_points", 0], None), "show.yaml: products[0].selling_points[0]: must be text, got null"),
        (_set(["products", 0, "gifts"], ["a\nb"]),
         "show.yaml: products[0].gifts[0]: must be a single line (no line breaks or control characters)"),
        (_set(["products", 0, "specs"], ["a"]), "show.yaml: products[0].specs: must be a mapping of name: value, got a list"),
        (_set(["products", 0, "specs"], {"重量": [1]}), "show.yaml: products[0].specs.重量: must be text or a number, got a list"),
        (_set(["products", 0, "coupon", "amount"], 0), "show.yaml: products[0].coupon.amount: must be > 0, got 0"),
        (_set(["products", 0, "coupon", "amount"], 199),
         "show.yaml: products[0].coupon.amount: must be less than live_price (199), got 199"),
        (_set(["products", 0, "coupon"], {"amount": 300, "min_spend": 300}),
         "show.yaml: products[0].coupon.amount: must be less than min_spend (300), got 300"),
        (_set(["products", 0, "coupon"], {"amount": 5, "min_spnd": 10}),
         "show.yaml: products[0].coupon.min_spnd: unknown field (did you mean min_spend?)"),
        (_drop(["products", 0, "category"]), "show.yaml: products[0].category: missing (required)"),
        (_set(["products"], []), "show.yaml: products: must not be empty"),
        (_set(["segments"], []), "show.yaml: segments: must not be empty"),
        (_set(["segments", 0, "product"], "a11"), 'show.yaml: segments[0].product: unknown product "a11" (did you mean a1?)'),
        (_set(["segments", 0, "product"], "zzz"), 'show.yaml: segments[0].product: unknown product "zzz" (known: a1, b2)'),
        (_set(["segments", 0, "flash_sal"], {}), "show.yaml: segments[0].flash_sal: unknown field (did you mean flash_sale?)"),
        (_set(["segments", 0, "script"], "write"), 'show.yaml: segments[0].script: must be "generate" or a list of lines, got "write"'),
        (_set(["segments", 1, "script"], ["ok", ""]), "show.yaml: segments[1].script[1]: must not be empty"),
        (_set(["segments", 1, "script"], ["长" * 201]),
         "show.yaml: segments[1].script[0]: is 201 characters long, at most 200 allowed"),
        (_set(["segments", 0, "flash_sale"], {"batch": "B", "stock": 0}),
         "show.yaml: segments[0].flash_sale.stock: must be between 1 and 100000000, got 0"),
        (_set(["segments", 0, "flash_sale"], {"batch": "B", "stock": 101}),
         "show.yaml: segments[0].flash_sale.stock: 101 is more than the product's stock (100)"),
        (_set(["segments", 0, "flash_sale"], {"stock": 10}), "show.yaml: segments[0].flash_sale.batch: missing (required)"),
        (_set(["segments", 0, "flash_sale"], {"batch": "B", "stock": 10, "per_viewer_limit": 0}),
         "show.yaml: segments[0].flash_sale.per_viewer_limit: must be between 1 and 10, got 0"),
        (_set(["segments", 1, "flash_sale"], {"batch": "B", "stock": 1, "countdown_after": 3}),
         "show.yaml: segments[1].flash_sale.countdown_after: must be between 1 and 2, got 3"),
        (_set(["host"], {"voice": {"engine": "siri"}}), 'show.yaml: host.voice.engine: must be one of offline, edge, got "siri"'),
        (_set(["host"], {"voice": {"rate": 101}}), "show.yaml: host.voice.rate: must be between -50 and 100, got 101"),
        (_set(["host"], {"voice": {"pitch": -51}}), "show.yaml: host.voice.pitch: must be between -50 and 50, got -51"),
        (_set(["host"], {"avtar": "x"}), "show.yaml: host.avtar: unknown field (did you mean avatar?)"),
        (_set(["host"], {"zz\nzz": 1}), 'show.yaml: host."zz\\nzz": unknown field (known: avatar, voice)'),
        (_set([3], 1), "show.yaml: document: field names must be text, got 3"),
        (_drop(["title"]), "show.yaml: title: missing (required)"),
        (None, "show.yaml: document: is empty; expected a mapping with title, host, products, segments"),
        ([1, 2], "show.yaml: document: must be a mapping with fields title, products, segments, host; got a list"),
        ("hello", 'show.yaml: document: must be a mapping with fields title, products, segments, host; got "hello"'),
    ],
)
def test_validation_errors_name_the_field(data: object, message: str) -> None:
    assert error_of(data) == message


def _write(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "show.yaml"
    path.write_bytes(content)
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "document: is empty"),
        (b"- 1\n- 2\n", "document: must be a mapping with fields"),
        (b"42\n", "document: must be a mapping with fields title, products, segments, host; got 42"),
        (b"title: x\nproducts: [\n", "line 3: invalid YAML"),
        (b"title: a\ntitle: b\n", "line 2: invalid YAML: duplicate key 'title'"),
        (b"title: [a\n  b: c: d\n", "invalid YAML"),
        (b"\xff\xfe\x00garbage\x81", "file: not UTF-8 text"),
        (b"\x00\x01\x02", "invalid YAML"),
        (b"title: 2024-13-45\n", "file: invalid YAML value"),
    ],
)
def test_load_rundown_bad_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(RundownError) as caught:
        load_rundown(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_load_rundown_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RundownError, match=r"nope\.yaml: file: cannot read: No such file or directory$"):
        load_rundown(tmp_path / "nope.yaml")


def test_yaml_error_reports_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "title: x\nproducts:\n  - id: a\n   name: b\n".encode())
    with pytest.raises(RundownError) as caught:
        load_rundown(path)
    assert str(caught.value).startswith(f"{path}: line 4: invalid YAML: ")


_FIELD_NAMES = st.sampled_from(
    ["title", "host", "avatar", "voice", "engine", "name", "rate", "pitch", "volume", "products", "segments", "id",
     "category", "price", "live_price", "selling_points", "specs", "stock", "gifts", "after_sale", "coupon",
     "amount", "min_spend", "product", "script", "flash_sale", "batch", "per_viewer_limit", "countdown_after"]
)
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.sampled_from(["generate", "offline", "a1", "3C", "19.9", "-1"]), st.binary(max_size=4),
    st.dates(),
)
_YAMLISH = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(_FIELD_NAMES, _SCALARS.filter(lambda v: not isinstance(v, float))), inner, max_size=6),
    ),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_YAMLISH)
def test_fuzz_parse_rundown_raises_only_rundown_error(data: object) -> None:
    try:
        parse_rundown(data, "fuzz.yaml")
    except RundownError as e:
        assert str(e).startswith("fuzz.yaml: ") and "\n" not in str(e)


def _mutations(draw: st.DrawFn) -> dict[str, Any]:
    """The valid BASE with one value somewhere replaced by arbitrary data: reaches deep checks."""
    data = base()
    node: Any = data
    path = draw(st.sampled_from([
        ["title"], ["products", 0, "price"], ["products", 0, "coupon"], ["products", 1, "specs"],
        ["segments", 0, "flash_sale"], ["segments", 1, "script"], ["host"], ["products", 0, "selling_points"],
        ["segments", 0, "product"], ["products", 0, "coupon", "min_spend"],
    ]))
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = draw(_YAMLISH)
    return data


@settings(max_examples=500, deadline=None)
@given(st.composite(_mutations)())
def test_fuzz_mutated_rundown_raises_only_rundown_error(data: dict[str, Any]) -> None:
    try:
        rundown = parse_rundown(data, "fuzz.yaml")
    except RundownError as e:
        assert str(e).startswith("fuzz.yaml: ") and "\n" not in str(e)
    else:
        assert rundown.products[0].live_price <= rundown.products[0].price


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=60), st.text(alphabet=":-[]{}&*!|>'\"#%@`,? \n\tabc12", max_size=60).map(str.encode)))
def test_fuzz_load_rundown_raises_only_rundown_error(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "f.yaml")
        with open(path, "wb") as f:
            f.write(content)
        try:
            load_rundown(path)
        except RundownError as e:
            assert "\n" not in str(e)
