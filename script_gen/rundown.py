"""The show's rundown: a YAML file of products and segments, validated into frozen data.

Every problem becomes one line naming the file, the field and what is wrong, so the
person editing the YAML can fix it without reading a traceback. docs/rundown.md is the
reference for the format.
"""
from __future__ import annotations

import difflib
import json
import math
import os
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import yaml

from avatar.voice.base import VoiceSettings

MAX_PRICE = Decimal(100_000_000)
MAX_STOCK = 100_000_000
MAX_SCRIPT_LINES = 200


class RundownError(ValueError):
    """str(err) is ONE line: 'FILE: path.to.field: what is wrong'."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        super().__init__(f"{source}: {field}: {problem}")
        self.source = source
        self.field = field
        self.problem = problem


def format_yuan(amount: Decimal) -> str:
    """How a price is shown: 199, 19.9, 0.5 (no trailing zeros, no exponent)."""
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass(frozen=True)
class Coupon:
    amount: Decimal  # yuan off
    min_spend: Decimal  # threshold; 0 means 无门槛

    def label(self) -> str:
        """The tag shown on cards and read by the host: 满199减20 / 无门槛减20."""
        if self.min_spend == 0:
            return f"无门槛减{format_yuan(self.amount)}"
        return f"满{format_yuan(self.min_spend)}减{format_yuan(self.amount)}"


@dataclass(frozen=True)
class Product:
    id: str
    name: str
    category: str
    price: Decimal  # original price (划线价)
    live_price: Decimal  # 直播间到手价, 0 < live_price <= price
    selling_points: tuple[str, ...]
    specs: tuple[tuple[str, str], ...]  # ordered (key, value) pairs
    stock: int
    gifts: tuple[str, ...]
    after_sale: tuple[str, ...]
    coupon: Coupon | None


@dataclass(frozen=True)
class FlashSale:
    batch: str  # coupon batch id
    stock: int  # > 0
    per_viewer_limit: int  # >= 1
    countdown_after: int | None  # countdown spoken right after script line N (from 1); None: builder's choice
    coupon: Coupon | None  # defaults to the product's coupon


@dataclass(frozen=True)
class Segment:
    product_id: str
    script: tuple[str, ...] | None  # written lines; None means generate
    flash_sale: FlashSale | None


@dataclass(frozen=True)
class HostConfig:
    avatar: str = "default"  # an avatar pack name under assets/hosts/ or a path
    voice: VoiceSettings = VoiceSettings()


@dataclass(frozen=True)
class Rundown:
    title: str
    host: HostConfig
    products: tuple[Product, ...]
    segments: tuple[Segment, ...]
    source: str  # file name used in error messages

    def product(self, product_id: str) -> Product:
        for product in self.products:
            if product.id == product_id:
                return product
        raise KeyError(product_id)

    def link_no(self, product_id: str) -> int:
        """Link numbers follow the order products are first presented (1号链接, 2号链接...)."""
        order = list(dict.fromkeys(s.product_id for s in self.segments))
        if product_id not in order:
            raise KeyError(product_id)
        return order.index(product_id) + 1


def load_rundown(path: str | os.PathLike[str]) -> Rundown:
    source = os.fspath(path)
    try:
        with open(source, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise RundownError(source, "file", f"cannot read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise RundownError(source, "file", f"not UTF-8 text (bad byte at offset {e.start})") from None
    return parse_rundown(_load_yaml(text, source), source)


def parse_rundown(data: object, source: str) -> Rundown:
    """Validate already-loaded YAML data; raises RundownError for the first problem found."""
    try:
        return _rundown(data, source)
    except _Invalid as e:
        raise RundownError(source, e.field, e.problem) from None


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


def _load_yaml(text: str, source: str) -> object:
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}" if mark else "file"
        problem = _one_line(e.problem or e.context or "unreadable")
        raise RundownError(source, where, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise RundownError(source, "file", f"invalid YAML: {_one_line(str(e))}") from None
    except RecursionError:
        raise RundownError(source, "file", "invalid YAML: nested too deeply") from None
    except (ValueError, OverflowError) as e:  # PyYAML builds dates like 2024-13-45 with datetime
        raise RundownError(source, "file", f"invalid YAML value: {_one_line(str(e))}") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- validation -------------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(field, problem)
        self.field = field
        self.problem = problem


_ID_RE = re.compile(r"[a-z0-9_-]+")
_NUMBER_TEXT_RE = re.compile(r"\d+(\.\d+)?")
_VOICE_ENGINES = ("offline", "edge")


def _show(value: object) -> str:
    """A value as the error message quotes it, kept short and on one line."""
    if isinstance(value, str):
        shown = json.dumps(value, ensure_ascii=False)
        return shown if len(shown) <= 42 else shown[:40] + '…"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        shown = repr(value)
        return shown if len(shown) <= 24 else shown[:22] + "…"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _mapping(
    value: object, path: str, required: tuple[str, ...], optional: tuple[str, ...], keep_null: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The mapping's fields; an optional field set to null counts as left out (unless in keep_null)."""
    where = path or "document"
    if not isinstance(value, dict):
        raise _Invalid(where, f"must be a mapping with fields {', '.join(required + optional)}; got {_show(value)}")
    known = required + optional
    for key in value:
        if not isinstance(key, str):
            raise _Invalid(where, f"field names must be text, got {_show(key)}")
        if key not in known:
            near = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {near[0]}?)" if near else f" (known: {', '.join(known)})"
            raise _Invalid(_join(path, _field_name(key)), f"unknown field{hint}")
    for key in required:
        if key not in value:
            raise _Invalid(_join(path, key), "missing (required)")
    return {k: v for k, v in value.items() if v is not None or k in required or k in keep_null}


def _field_name(key: str) -> str:
    """A key as it appears in a field path; odd keys are quoted so the message stays one line."""
    return key if re.fullmatch(r"[\w-]{1,40}", key) else _show(key)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _list(value: object, path: str, *, non_empty: bool) -> list[Any]:
    if not isinstance(value, list):
        raise _Invalid(path, f"must be a list, got {_show(value)}")
    if non_empty and not value:
        raise _Invalid(path, "must not be empty")
    return value


def _text(value: object, path: str, max_len: int) -> str:
    """Single-line text, stripped; empty or overlong text is a mistake in a rundown."""
    if not isinstance(value, str):
        raise _Invalid(path, f"must be text, got {_show(value)}")
    text = value.strip()
    if not text:
        raise _Invalid(path, "must not be empty")
    if any(ord(c) < 32 or c in "\x7f\u2028\u2029" for c in text):
        raise _Invalid(path, "must be a single line (no line breaks or control characters)")
    if len(text) > max_len:
        raise _Invalid(path, f"is {len(text)} characters long, at most {max_len} allowed")
    return text


def _texts(value: object, path: str, max_len: int, *, non_empty: bool) -> tuple[str, ...]:
    items = _list(value, path, non_empty=non_empty)
    return tuple(_text(item, f"{path}[{i}]", max_len) for i, item in enumerate(items))


def _int(value: object, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(path, f"must be a whole number, got {_show(value)}")
    if not low <= value <= high:
        raise _Invalid(path, f"must be between {low} and {high}, got {_show(value)}")
    return value


def _money(value: object, path: str, *, allow_zero: bool = False) -> Decimal:
    """Yuan amounts: int, decimal or numeric text; at most 2 decimals (fen)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _Invalid(path, f"must be a number, got {_show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Invalid(path, f"must be a number, got {_show(value)}")
    if isinstance(value, str) and not _NUMBER_TEXT_RE.fullmatch(value.strip()):
        raise _Invalid(path, f"must be a number, got {_show(value)}")
    amount = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    if amount < 0 or (amount == 0 and not allow_zero):
        raise _Invalid(path, f"must be {'>= 0' if allow_zero else '> 0'}, got {_show(value)}")
    if amount > MAX_PRICE:
        raise _Invalid(path, f"must be at most {MAX_PRICE}, got {_show(value)}")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise _Invalid(path, f"must have at most 2 decimal places, got {_show(value)}")
    return amount


def _rundown(data: object, source: str) -> Rundown:
    if data is None:
        raise _Invalid("document", "is empty; expected a mapping with title, host, products, segments")
    doc = _mapping(data, "", ("title", "products", "segments"), ("host",))
    title = _text(doc["title"], "title", 100)
    host = _host(doc.get("host", {}), "host")
    products = tuple(
        _product(item, f"products[{i}]") for i, item in enumerate(_list(doc["products"], "products", non_empty=True))
    )
    first_index: dict[str, int] = {}
    for i, product in enumerate(products):
        if product.id in first_index:
            first = first_index[product.id]
            raise _Invalid(f"products[{i}].id", f'duplicate id "{product.id}" (also products[{first}])')
        first_index[product.id] = i
    by_id = {p.id: p for p in products}
    segments = tuple(
        _segment(item, f"segments[{i}]", by_id)
        for i, item in enumerate(_list(doc["segments"], "segments", non_empty=True))
    )
    return Rundown(title=title, host=host, products=products, segments=segments, source=source)


def _host(value: object, path: str) -> HostConfig:
    doc = _mapping(value, path, (), ("avatar", "voice"))
    avatar = _text(doc["avatar"], f"{path}.avatar", 200) if "avatar" in doc else HostConfig.avatar
    voice = _voice(doc["voice"], f"{path}.voice") if "voice" in doc else VoiceSettings()
    return HostConfig(avatar=avatar, voice=voice)


def _voice(value: object, path: str) -> VoiceSettings:
    doc = _mapping(value, path, (), ("engine", "name", "rate", "pitch", "volume"))
    engine = doc.get("engine", "offline")
    if engine not in _VOICE_ENGINES:
        raise _Invalid(f"{path}.engine", f"must be one of {', '.join(_VOICE_ENGINES)}, got {_show(engine)}")
    name = doc.get("name", "")
    if not isinstance(name, str):
        raise _Invalid(f"{path}.name", f"must be text, got {_show(name)}")
    return VoiceSettings(
        engine=engine,
        name=_text(name, f"{path}.name", 100) if name.strip() else "",
        rate=_int(doc.get("rate", 0), f"{path}.rate", -50, 100),
        pitch=_int(doc.get("pitch", 0), f"{path}.pitch", -50, 50),
        volume=_int(doc.get("volume", 0), f"{path}.volume", -50, 50),
    )


def _product(value: object, path: str) -> Product:
    doc = _mapping(
        value,
        path,
        ("id", "name", "category", "price", "live_price", "selling_points", "stock"),
        ("specs", "gifts", "after_sale", "coupon"),
    )
    product_id = _text(doc["id"], f"{path}.id", 40)
    if not _ID_RE.fullmatch(product_id):
        raise _Invalid(f"{path}.id", f"may use only a-z, 0-9, - and _; got {_show(product_id)}")
    price = _money(doc["price"], f"{path}.price")
    live_price = _money(doc["live_price"], f"{path}.live_price")
    if live_price > price:
        raise _Invalid(
            f"{path}.live_price", f"must not exceed price ({format_yuan(price)}), got {format_yuan(live_price)}"
        )
    coupon = doc.get("coupon")
    return Product(
        id=product_id,
        name=_text(doc["name"], f"{path}.name", 60),
        category=_text(doc["category"], f"{path}.category", 20),
        price=price,
        live_price=live_price,
        selling_points=_texts(doc["selling_points"], f"{path}.selling_points", 100, non_empty=True),
        specs=_specs(doc.get("specs", {}), f"{path}.specs"),
        stock=_int(doc["stock"], f"{path}.stock", 0, MAX_STOCK),
        gifts=_texts(doc.get("gifts", []), f"{path}.gifts", 60, non_empty=False),
        after_sale=_texts(doc.get("after_sale", []), f"{path}.after_sale", 60, non_empty=False),
        coupon=None if coupon is None else _coupon(coupon, f"{path}.coupon", live_price),
    )


def _specs(value: object, path: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise _Invalid(path, f"must be a mapping of name: value, got {_show(value)}")
    pairs = []
    for key, item in value.items():
        if not isinstance(key, str):
            raise _Invalid(path, f"spec names must be text, got {_show(key)}")
        name = _text(key, f"{path}.{_field_name(key)}", 20)
        where = f"{path}.{name}"
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise _Invalid(where, f"must be text or a number, got {_show(item)}")
        if isinstance(item, float):
            if not math.isfinite(item):
                raise _Invalid(where, f"must be text or a number, got {_show(item)}")
            item = format(Decimal(repr(item)), "f")
        pairs.append((name, _text(str(item), where, 50)))
    return tuple(pairs)


def _coupon(value: object, path: str, live_price: Decimal) -> Coupon:
    doc = _mapping(value, path, ("amount",), ("min_spend",))
    amount = _money(doc["amount"], f"{path}.amount")
    min_spend = _money(doc.get("min_spend", 0), f"{path}.min_spend", allow_zero=True)
    # The coupon must leave something to pay on the order it applies to.
    floor, what = (live_price, "live_price") if min_spend <= live_price else (min_spend, "min_spend")
    if amount >= floor:
        raise _Invalid(
            f"{path}.amount", f"must be less than {what} ({format_yuan(floor)}), got {format_yuan(amount)}"
        )
    return Coupon(amount=amount, min_spend=min_spend)


def _segment(value: object, path: str, products: dict[str, Product]) -> Segment:
    doc = _mapping(value, path, ("product",), ("script", "flash_sale"))
    product_id = doc["product"]
    if not isinstance(product_id, str) or product_id not in products:
        known = list(products)
        near = difflib.get_close_matches(product_id, known, n=1) if isinstance(product_id, str) else []
        hint = f"did you mean {near[0]}?" if near else f"known: {', '.join(known)}"
        raise _Invalid(f"{path}.product", f"unknown product {_show(product_id)} ({hint})")
    script = _script(doc.get("script", "generate"), f"{path}.script")
    flash = doc.get("flash_sale")
    return Segment(
        product_id=product_id,
        script=script,
        flash_sale=None if flash is None else _flash_sale(flash, f"{path}.flash_sale", products[product_id], script),
    )


def _script(value: object, path: str) -> tuple[str, ...] | None:
    if value == "generate":
        return None
    if not isinstance(value, list):
        raise _Invalid(path, f'must be "generate" or a list of lines, got {_show(value)}')
    lines = _texts(value, path, 200, non_empty=True)
    if len(lines) > MAX_SCRIPT_LINES:
        raise _Invalid(path, f"has {len(lines)} lines, at most {MAX_SCRIPT_LINES} allowed")
    return lines


def _flash_sale(value: object, path: str, product: Product, script: tuple[str, ...] | None) -> FlashSale:
    doc = _mapping(
        value, path, ("batch", "stock"), ("per_viewer_limit", "countdown_after", "coupon"), keep_null=("coupon",)
    )
    stock = _int(doc["stock"], f"{path}.stock", 1, MAX_STOCK)
    if stock > product.stock:
        raise _Invalid(f"{path}.stock", f"{stock} is more than the product's stock ({product.stock})")
    countdown_after = doc.get("countdown_after")
    if countdown_after is not None:
        last = len(script) if script is not None else MAX_SCRIPT_LINES
        countdown_after = _int(countdown_after, f"{path}.countdown_after", 1, last)
    if "coupon" not in doc:
        coupon = product.coupon
    elif doc["coupon"] is None:
        coupon = None  # explicitly no coupon for this flash sale
    else:
        coupon = _coupon(doc["coupon"], f"{path}.coupon", product.live_price)
    return FlashSale(
        batch=_text(doc["batch"], f"{path}.batch", 64),
        stock=stock,
        per_viewer_limit=_int(doc.get("per_viewer_limit", 1), f"{path}.per_viewer_limit", 1, stock),
        countdown_after=countdown_after,
        coupon=coupon,
    )
