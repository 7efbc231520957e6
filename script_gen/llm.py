"""An optional language model that writes product scripts and phrases answers; the offline default needs none.

Any OpenAI-compatible chat endpoint (POST {url}/v1/chat/completions, a configured model, an
optional API key from LINKUP_LLM_KEY). The model only words things: the facts come from the
product data, and what it writes is checked before anything is spoken: the ad-law linter,
figures/discounts/promises only from the data (script_gen.facts), no claim to be human, no
countdown or 上链接 of its own (our code places the cues), short lines. Whatever fails a check,
takes too long (answers must start within the 2 s bar) or cannot be fetched falls back to the
offline generator/answer, with the reason logged. docs/llm.md describes it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import aiohttp
from yarl import URL

from script_gen.answer import Answer, LiveFacts
from script_gen.builder import segment_script
from script_gen.facts import (
    COUNTDOWN_WORDS,
    LINK_UP_WORDS,
    allowed_figures,
    price_ratios,
    problems,
)
from script_gen.intents import is_chatter
from script_gen.lint import lint
from script_gen.rundown import Product, Rundown, format_yuan
from script_gen.script import Script

log = logging.getLogger("linkup.llm")

ANSWER_TIMEOUT_S = 1.2  # an answer must start within 2 s of the question: the model gets 1.2 of them
SCRIPT_TIMEOUT_S = 30.0  # a segment's script is written a segment ahead of being spoken
CONNECT_TIMEOUT_S = 1.0
MAX_LINE = 40  # characters: a subtitle's two lines
MAX_ANSWER = 60
MIN_SCRIPT_LINES, MAX_SCRIPT_LINES = 3, 12

T = TypeVar("T")


class LlmConfigError(ValueError):
    """A bad --llm-url/--llm-model (or LINKUP_LLM_*): one line naming the option."""


class LlmError(Exception):
    """The endpoint could not answer (unreachable, slow, an error status, a malformed reply)."""


@dataclass(frozen=True)
class LlmConfig:
    url: str  # base URL; requests go to {url}/v1/chat/completions
    model: str
    api_key: str | None = None
    answer_timeout_s: float = ANSWER_TIMEOUT_S
    script_timeout_s: float = SCRIPT_TIMEOUT_S

    @property
    def endpoint(self) -> str:
        return f"{self.url.rstrip('/').removesuffix('/v1')}/v1/chat/completions"

    @classmethod
    def from_options(cls, url: str | None, model: str | None, env: Mapping[str, str] = os.environ) -> LlmConfig | None:
        """Flags win over LINKUP_LLM_URL / LINKUP_LLM_MODEL; no URL at all means no model (the offline default)."""
        url = url or env.get("LINKUP_LLM_URL") or None
        model = model or env.get("LINKUP_LLM_MODEL") or None
        if url is None:
            if model is not None:
                raise LlmConfigError("--llm-model needs --llm-url (or LINKUP_LLM_URL)")
            return None
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise LlmConfigError(f"--llm-url {url!r}: not an http(s) URL")
        if model is None:
            raise LlmConfigError("--llm-url needs --llm-model (or LINKUP_LLM_MODEL)")
        return cls(url=url, model=model, api_key=env.get("LINKUP_LLM_KEY") or None)


def add_llm_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--llm-url", help="OpenAI-compatible chat endpoint base URL (env LINKUP_LLM_URL); "
                                          "default: no model, the offline generator")
    parser.add_argument("--llm-model", help="model name for --llm-url (env LINKUP_LLM_MODEL); key: env LINKUP_LLM_KEY")


def llm_from_args(args: argparse.Namespace) -> LlmConfig | None:
    return LlmConfig.from_options(getattr(args, "llm_url", None), getattr(args, "llm_model", None))


class LlmClient:
    """One keep-alive session to the endpoint (a new TLS handshake per answer would eat the budget)."""

    def __init__(self, config: LlmConfig) -> None:
        self.config = config
        self._session: aiohttp.ClientSession | None = None

    async def chat(self, messages: Sequence[Mapping[str, str]], *, timeout: float, seed: int | None = None,
                   temperature: float = 0.8, max_tokens: int = 600) -> str:
        """The reply's text; LlmError for anything but a well-formed reply within `timeout` seconds."""
        body: dict[str, object] = {"model": self.config.model, "messages": list(messages),
                                   "temperature": temperature, "max_tokens": max_tokens}
        if seed is not None:
            body["seed"] = seed
        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        try:
            async with asyncio.timeout(timeout):
                if self._session is None or self._session.closed:
                    self._session = aiohttp.ClientSession(
                        timeout=aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT_S))
                async with self._session.post(self.config.endpoint, json=body, headers=headers) as resp:
                    raw = await resp.read()
        except TimeoutError:
            raise LlmError(f"no reply within {timeout:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise LlmError(f"{type(exc).__name__}: {exc}") from None
        if resp.status != 200:
            raise LlmError(f"HTTP {resp.status}: {raw[:200].decode('utf-8', 'replace')}")
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LlmError(f"not a chat completion: {raw[:200].decode('utf-8', 'replace')}") from None
        if not isinstance(content, str) or not content.strip():
            raise LlmError("empty reply")
        return content

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@dataclass(frozen=True)
class Written(Generic[T]):
    """What the host will say, and who wrote it: `reason` says why the model's words were not used."""

    value: T
    by_llm: bool
    reason: str | None = None


# -- scripts --------------------------------------------------------------------------------------

SCRIPT_SYSTEM = (
    "你是直播带货的文案助手，为AI数字人主播写一段商品讲解口播稿。要求：\n"
    "1. 按顺序写：开场钩子、用户痛点、卖点（每个卖点一句）、佐证、价格对比（原价和直播间到手价）、优惠券、售后承诺。\n"
    "2. 每行一句，每句不超过30个字，多用逗号断句，共6到10行，只输出稿子本身，不要编号。\n"
    "3. 只能使用给出的数据：不得编造价格、折扣、数字、赠品、售后承诺或功效。\n"
    "4. 遵守广告法：不用“最”“第一”“顶级”“国家级”“唯一”“独家”“首选”“100%”“全网最低”等极限词，不说治疗、功效等医疗用语。\n"
    "5. 不要写倒数、不要说“上链接”、不要说库存和链接号，这些由系统补上。不要说自己是真人。"
)
ANSWER_SYSTEM = (
    "你是直播间AI数字人主播。把给出的事实改写成一句亲切的口语回答，不超过40个字，只输出回答本身。"
    "只能使用事实和商品数据里的数字和信息，不得添加价格、折扣、赠品或售后承诺；"
    "不用“最”“第一”“顶级”“唯一”“100%”等广告法禁用词；不说自己是真人；不要以@开头。"
)


def product_facts(product: Product, link_no: int | None = None) -> dict[str, object]:
    """The facts the model may use, as the data states them (and the figures computed exactly from it)."""
    facts: dict[str, object] = {
        "name": product.name, "category": product.category,
        "original_price": format_yuan(product.price), "live_price": format_yuan(product.live_price),
        "selling_points": list(product.selling_points), "specs": {k: v for k, v in product.specs},
        "gifts": list(product.gifts), "after_sale": list(product.after_sale),
    }
    if product.price > product.live_price:
        facts["saving"] = format_yuan(product.price - product.live_price)
    if product.coupon is not None:
        facts["coupon"] = product.coupon.label()
        if product.coupon.min_spend <= product.live_price:
            facts["price_after_coupon"] = format_yuan(product.live_price - product.coupon.amount)
    if link_no is not None:
        facts["link_no"] = link_no
    return facts


_LIST_MARK = re.compile(r"^\s*(?:[-*•·]+|\d{1,2}\s*[.、)）:：]|[（(]\d{1,2}[)）]|第[一二三四五六七八九十]+[句行]\s*[:：])\s*")
_MENTIONS = re.compile(r"^(?:\s*@[^\s，,：:！!。]{1,20}[\s，,：:！!。]+)+")  # the show puts the askers' @昵称 in front itself
_SENTENCE = re.compile(r"(?<=[。！？!?])")


def script_lines(reply: str) -> list[str]:
    """The model's reply as script lines: a JSON list or one line per line, without list marks or quotes;
    a line over MAX_LINE is split at its sentence ends."""
    text = reply.strip()
    if text.startswith("```"):
        text = text.strip("`").partition("\n")[2]
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    raw = [str(x) for x in parsed] if isinstance(parsed, list) else text.splitlines()
    lines = []
    for line in raw:
        line = _LIST_MARK.sub("", line).strip().strip("\"“”'「」*").strip()
        if not line:
            continue
        lines += [part for part in _SENTENCE.split(line) if part.strip()] if len(line) > MAX_LINE else [line]
    return lines


def script_problems(lines: Sequence[str], product: Product, rundown: Rundown, k: int) -> list[str]:
    """Why the model's lines may not be spoken (empty: they may)."""
    segment = rundown.segments[k % len(rundown.segments)]
    allowed = allowed_figures(product, segment.flash_sale, rundown.link_no(product.id))
    ratios = price_ratios(product, segment.flash_sale)
    found = []
    if not MIN_SCRIPT_LINES <= len(lines) <= MAX_SCRIPT_LINES:
        found.append(f"{len(lines)} lines (want {MIN_SCRIPT_LINES} to {MAX_SCRIPT_LINES})")
    for i, line in enumerate(lines, start=1):
        where = f"line {i} {line!r}"
        if len(line) > MAX_LINE:
            found.append(f"{where}: over {MAX_LINE} characters")
        found += [f"{where}: ad law: {f.rule} {f.text!r}" for f in lint([line])]
        found += [f"{where}: {p}" for p in problems(line, product, allowed, ratios)]
        if COUNTDOWN_WORDS.search(line) or LINK_UP_WORDS.search(line):
            found.append(f"{where}: countdown/上链接 are placed by the show, not written")
    return found


async def write_segment_script(llm: LlmClient | None, rundown: Rundown, k: int, seed: int = 0) -> Written[Script]:
    """segment_script(rundown, k, seed), its selling lines written by the model when one is configured.

    Written segments (the rundown's own lines) and every failure keep the offline script.
    """
    segment = rundown.segments[k % len(rundown.segments)]
    if llm is None or segment.script is not None:
        return Written(segment_script(rundown, k, seed), by_llm=False)
    product = rundown.product(segment.product_id)
    messages = [
        {"role": "system", "content": SCRIPT_SYSTEM},
        {"role": "user", "content": json.dumps(product_facts(product), ensure_ascii=False)},
    ]
    try:
        reply = await llm.chat(messages, timeout=llm.config.script_timeout_s, seed=seed + k)
    except LlmError as exc:
        return _offline_script(rundown, k, seed, f"endpoint: {exc}")
    lines = script_lines(reply)
    found = script_problems(lines, product, rundown, k)
    if found:
        return _offline_script(rundown, k, seed, "; ".join(found[:5]))
    return Written(segment_script(rundown, k, seed, body=lines), by_llm=True)


def _offline_script(rundown: Rundown, k: int, seed: int, reason: str) -> Written[Script]:
    product_id = rundown.segments[k % len(rundown.segments)].product_id
    log.warning("llm script for segment %d (%s) not used, offline script instead: %s", k, product_id, reason)
    return Written(segment_script(rundown, k, seed), by_llm=False, reason=reason)


async def write_scripts(config: LlmConfig | None, rundown: Rundown, seed: int = 0) -> list[Script]:
    """Every segment's script for an offline render (the model writes them all at once)."""
    if config is None:
        return [segment_script(rundown, k, seed) for k in range(len(rundown.segments))]
    llm = LlmClient(config)
    try:
        written = await asyncio.gather(*(write_segment_script(llm, rundown, k, seed) for k in range(len(rundown.segments))))
    finally:
        await llm.close()
    return [w.value for w in written]


# -- answers --------------------------------------------------------------------------------------

async def phrase_answer(llm: LlmClient | None, reply: Answer, rundown: Rundown, live: LiveFacts | None = None) -> Written[str]:
    """The model's wording of an offline answer (`reply.text` holds its facts), or that answer itself.

    The AI disclosure is said word for word and chatter gets the short acknowledgement: neither is
    given to the model.
    """
    if llm is None or reply.intent == "ai_disclosure" or is_chatter(reply.question):
        return Written(reply.text, by_llm=False)
    product = rundown.product(reply.product_id)
    try:
        link_no: int | None = (live.links.get(product.id) if live else None) or rundown.link_no(product.id)
    except KeyError:
        link_no = None
    facts = {"question": reply.question, "facts": reply.text, "product": product_facts(product, link_no)}
    messages = [{"role": "system", "content": ANSWER_SYSTEM},
                {"role": "user", "content": json.dumps(facts, ensure_ascii=False)}]
    try:
        text = (await llm.chat(messages, timeout=llm.config.answer_timeout_s, temperature=0.7, max_tokens=120)).strip()
    except LlmError as exc:
        return _offline_answer(reply, f"endpoint: {exc}")
    text = _MENTIONS.sub("", _LIST_MARK.sub("", text).strip().strip("\"“”'「」")).strip()
    found = answer_problems(text, reply, product, rundown, link_no)
    if found:
        return _offline_answer(reply, "; ".join(found[:5]))
    return Written(text, by_llm=True)


def answer_problems(text: str, reply: Answer, product: Product, rundown: Rundown, link_no: int | None) -> list[str]:
    """Why the model's answer may not be spoken (empty: it may)."""
    found = []
    if not text or len(text) > MAX_ANSWER or "\n" in text:
        found.append(f"not one line of 1 to {MAX_ANSWER} characters")
    if text.startswith("@"):
        found.append("names a viewer itself (the show adds the @昵称)")
    found += [f"ad law: {f.rule} {f.text!r}" for f in lint([text])]
    flash = next((s.flash_sale for s in rundown.segments if s.product_id == product.id and s.flash_sale), None)
    allowed = allowed_figures(product, flash, link_no, extra=[reply.text])
    found += problems(text, product, allowed, price_ratios(product, flash), facts=[reply.text])
    if COUNTDOWN_WORDS.search(text):
        found.append("a countdown is placed by the show, not written")
    return found


def _offline_answer(reply: Answer, reason: str) -> Written[str]:
    log.warning("llm answer to %r not used, offline answer instead: %s", reply.question, reason)
    return Written(reply.text, by_llm=False, reason=reason)
