"""The optional language model, against a real OpenAI-compatible chat server on a real port.

Its words are used only when they pass the checks (ad law, figures and promises from the data,
no countdown of its own, no claim to be human); anything else, a slow or a dead endpoint, falls
back to the offline script/answer with the reason logged.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import time
from decimal import Decimal

import pytest

from script_gen.answer import answer
from script_gen.builder import segment_script
from script_gen.facts import (
    allowed_figures,
    cn_number,
    discounts,
    figures,
    price_ratios,
    problems,
)
from script_gen.lint import lint
from script_gen.llm import (
    LlmClient,
    LlmConfig,
    LlmConfigError,
    phrase_answer,
    script_lines,
    write_scripts,
    write_segment_script,
)
from script_gen.phrases import COUNTDOWN_TEXT
from script_gen.rundown import load_rundown
from studio.cli import main
from studio.render import DEMO_RUNDOWN, RenderOptions, prepare_show
from tests.llm_server import ChatServer

GOOD_SCRIPT = """1. 打工人注意啦，声屿X1主动降噪耳机来了！
2. 地铁里太吵，听歌总要把音量开很大？
3. 42dB主动降噪，地铁里也能安静听歌。
4. 单次续航8小时，配合充电盒能用30小时。
5. 单耳重量4.5g，戴一整天也轻松。
6. 原价399，今天直播间到手价199，直接省200！
7. 还有满199减20的券，券后只要179。
8. 七天无理由退换，一年只换不修，放心拍。"""
GOOD_LINES = [line[3:] for line in GOOD_SCRIPT.splitlines()]
NUTS_LINES = ["囤货党看过来，山野记每日坚果来啦！", "六种坚果果干搭配，每天一袋刚刚好。", "原价129.9，今天到手69.9元，坏果包赔。"]


def by_product(body: dict) -> str:
    """The earbuds' script, or the nuts' when the nuts are asked for."""
    return "\n".join(NUTS_LINES) if "坚果" in body["messages"][-1]["content"] else GOOD_SCRIPT


@pytest.fixture(scope="module")
def demo():
    return load_rundown(DEMO_RUNDOWN)


@pytest.fixture
def server():
    s = ChatServer(GOOD_SCRIPT)
    yield s
    s.close()


def client(server: ChatServer, **kw) -> LlmClient:
    return LlmClient(LlmConfig(url=server.url, model="test-model", **kw))


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def written(llm: LlmClient, rundown, k: int = 0, seed: int = 0):
    try:
        return await write_segment_script(llm, rundown, k, seed)
    finally:
        await llm.close()


# -- configuration ----------------------------------------------------------------------------------

def test_config_from_flags_and_environment() -> None:
    env = {"LINKUP_LLM_URL": "http://env:1", "LINKUP_LLM_MODEL": "env-model", "LINKUP_LLM_KEY": "sk-env"}
    assert LlmConfig.from_options(None, None, {}) is None  # the offline default
    assert LlmConfig.from_options(None, None, env) == LlmConfig("http://env:1", "env-model", "sk-env")
    flagged = LlmConfig.from_options("https://api.example.com/v1", "qwen", env)
    assert (flagged.url, flagged.model, flagged.api_key) == ("https://api.example.com/v1", "qwen", "sk-env")
    assert flagged.endpoint == "https://api.example.com/v1/chat/completions"  # a trailing /v1 is not doubled
    assert LlmConfig("http://h:8/", "m").endpoint == "http://h:8/v1/chat/completions"
    with pytest.raises(LlmConfigError, match="--llm-url needs --llm-model"):
        LlmConfig.from_options("http://h:8", None, {})
    with pytest.raises(LlmConfigError, match="--llm-model needs --llm-url"):
        LlmConfig.from_options(None, "m", {})
    with pytest.raises(LlmConfigError, match="--llm-url 'ftp://h': not an http"):
        LlmConfig.from_options("ftp://h", "m", {})


# -- the fact checks --------------------------------------------------------------------------------

def test_figures_are_read_in_digits_and_in_chinese() -> None:
    assert [cn_number(t) for t in ("一百九十九", "两万两千", "十二", "一百五", "一百零五", "三千")] == [
        199, 22000, 12, 150, 105, 3000]
    assert figures("原价399，到手¥199.5，省200") == [Decimal(399), Decimal("199.5"), Decimal(200)]
    assert figures("九块九，三毛，六十九点九元") == [Decimal("9.9"), Decimal("0.3"), Decimal("69.9")]
    assert figures("原价三百九十九，只要一百九十九，还剩五百份，限两件") == [
        Decimal(399), Decimal(199), Decimal(500), Decimal(2)]
    assert figures("一定要试试，这一款一起带走") == []  # 一 as a word, not a figure
    assert discounts("今天5折，明天八五折，后天半价") == [Decimal("0.5"), Decimal("0.85"), Decimal("0.5")]


def test_problems_name_what_the_data_does_not_support(demo) -> None:
    x1 = demo.product("x1-earbuds")
    allowed = allowed_figures(x1, demo.segments[0].flash_sale, 1)
    ratios = price_ratios(x1)
    ok = "原价399，到手一百九十九元，券后179，接近五折，送耳机保护套，七天无理由退换，拍1号链接。"
    assert problems(ok, x1, allowed, ratios) == []
    assert problems("今天只要99元，三折！", x1, allowed, ratios) == [
        "figure 99 is not in the product data", "discount 0.3 is not the product's"]
    assert problems("全国包邮，假一赔十", x1, allowed, ratios)[0] == "promise '包邮' is not in the product data"
    assert problems("我是真人主播哦", x1, allowed, ratios) == ["claims to be a human (the host is an AI)"]


# -- scripts ----------------------------------------------------------------------------------------

def test_a_good_script_is_used_with_our_cues_disclosure_and_closing(server, demo) -> None:
    result = asyncio.run(written(client(server), demo, k=0, seed=5))
    assert result.by_llm and result.reason is None
    texts = [line.text for line in result.value.lines]
    assert texts[0] == segment_script(demo, 0).lines[0].text  # the AI disclosure still opens the show
    assert texts[1:1 + len(GOOD_LINES)] == GOOD_LINES  # the model's lines, list marks taken off
    countdown = result.value.lines[1 + len(GOOD_LINES)]
    assert countdown.text == COUNTDOWN_TEXT  # the countdown and its cues are ours
    assert [c.kind for c in countdown.cues] == ["countdown", "countdown", "countdown", "link_up"]
    assert [c.kind for c in result.value.lines[1].cues] == ["show_card"]
    assert "1号链接" in "".join(texts[1 + len(GOOD_LINES):])  # the closing (link, flash sale) is ours too
    assert all(lint([t]) == [] for t in texts)
    request = server.requests[0]
    assert request["model"] == "test-model" and request["seed"] == 5
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    facts = server.user_message()
    assert (facts["name"], facts["live_price"], facts["original_price"], facts["coupon"]) == (
        "声屿 X1 主动降噪耳机", "199", "399", "满199减20")


@pytest.mark.parametrize("bad_line, why", [
    ("全网最低价，行业第一的降噪耳机！", "ad law"),
    ("今天只要99元，手慢无！", "figure 99"),
    ("下单就送价值59元的充电宝！", "figure 59"),
    ("全国包邮，放心下单。", "promise '包邮'"),
    ("3、2、1，上链接！", "countdown"),
    ("我是真人主播，亲自试过。", "human"),
])
def test_a_script_failing_a_check_falls_back_to_the_offline_one(server, demo, caplog, bad_line, why) -> None:
    lines = GOOD_SCRIPT.splitlines()
    server.reply = lambda _body: "\n".join([*lines[:5], bad_line, *lines[5:]])
    with caplog.at_level(logging.WARNING, logger="linkup.llm"):
        result = asyncio.run(written(client(server), demo, k=0, seed=1))
    assert not result.by_llm and why in result.reason and result.reason.startswith("line 6 ")
    assert result.value == segment_script(demo, 0, 1)
    assert any(why in r.getMessage() and "offline script" in r.getMessage() for r in caplog.records)


def test_another_products_facts_are_refused(server, demo) -> None:
    result = asyncio.run(written(client(server), demo, k=2))  # the earbuds' lines for the nuts' segment
    assert not result.by_llm and "figure 399 is not in the product data" in result.reason


def test_written_segments_are_never_sent_to_the_model(server, demo) -> None:
    result = asyncio.run(written(client(server), demo, k=1))  # the serum segment has the rundown's own lines
    assert not result.by_llm and result.reason is None and server.requests == []


def test_an_unreachable_or_failing_endpoint_falls_back(server, demo) -> None:
    dead = LlmClient(LlmConfig(url=closed_port_url(), model="m"))
    result = asyncio.run(written(dead, demo, k=2))
    assert not result.by_llm and result.reason.startswith("endpoint: ") and result.value == segment_script(demo, 2)
    server.status = 500
    result = asyncio.run(written(client(server), demo, k=2))
    assert not result.by_llm and "HTTP 500" in result.reason


def test_script_lines_take_json_lists_and_split_long_lines() -> None:
    assert script_lines('```json\n["第一句。", "第二句！"]\n```') == ["第一句。", "第二句！"]
    long = "这款耳机降噪很安静，地铁里也能听清。" * 3
    assert script_lines(f"- {long}\n\n* “短句。”") == ["这款耳机降噪很安静，地铁里也能听清。"] * 3 + ["短句。"]


def test_render_scripts_come_from_the_model(server, demo, tmp_path) -> None:
    config = LlmConfig(url=server.url, model="m")
    server.reply = by_product
    scripts = asyncio.run(write_scripts(config, demo))
    assert [line.text for line in scripts[0].lines][1:1 + len(GOOD_LINES)] == GOOD_LINES
    assert scripts[1] == segment_script(demo, 1)  # the rundown's own lines
    show = asyncio.run(prepare_show(demo, RenderOptions(cache_dir=tmp_path / "voice", llm=config)))
    assert [line.text for line in show.scripts[2].lines][:3] == NUTS_LINES
    assert show.timeline.frames > 0


# -- answers ----------------------------------------------------------------------------------------

def phrase(server_or_client, question: str, demo, product: str = "x1-earbuds"):
    llm = server_or_client if isinstance(server_or_client, LlmClient) else client(server_or_client)

    async def go():
        try:
            return await phrase_answer(llm, answer(question, demo, product), demo)
        finally:
            await llm.close()

    return asyncio.run(go())


def test_a_good_answer_is_used_and_gets_the_facts(server, demo) -> None:
    server.reply = lambda _b: "@小王 家人们，这款耳机直播间到手一百九十九元，领券后179，拍1号链接就行！"
    result = phrase(server, "多少钱", demo)
    assert result.by_llm and result.value == "家人们，这款耳机直播间到手一百九十九元，领券后179，拍1号链接就行！"
    sent = server.user_message()
    assert sent["question"] == "多少钱" and "¥199" in sent["facts"] and sent["product"]["link_no"] == 1


@pytest.mark.parametrize("reply, why", [
    ("这是全网最低价，只要199！", "ad law"),
    ("今天只要99元！", "figure 99"),
    ("今天三折，快拍！", "discount"),
    ("拍了包邮哦！", "promise '包邮'"),
    ("不是AI哦，我是真人！", "human"),
])
def test_an_answer_failing_a_check_falls_back(server, demo, caplog, reply, why) -> None:
    server.reply = lambda _b: reply
    with caplog.at_level(logging.WARNING, logger="linkup.llm"):
        result = phrase(server, "多少钱", demo)
    assert not result.by_llm and why in result.reason
    assert result.value == answer("多少钱", demo, "x1-earbuds").text
    assert any("offline answer" in r.getMessage() for r in caplog.records)


def test_a_slow_model_falls_back_within_the_answer_budget(server, demo) -> None:
    server.delay_s = 10
    started = time.monotonic()
    result = phrase(server, "有赠品吗", demo)
    took = time.monotonic() - started
    assert not result.by_llm and "no reply within 1.2 s" in result.reason
    assert took < 1.2 + 0.6  # the answer goes on air well inside the 2 s bar


def test_a_dead_model_falls_back_at_once(demo) -> None:
    result = phrase(LlmClient(LlmConfig(url=closed_port_url(), model="m")), "有赠品吗", demo)
    assert not result.by_llm and result.reason.startswith("endpoint: ")
    assert result.value == answer("有赠品吗", demo, "x1-earbuds").text


def test_disclosure_and_chatter_are_never_given_to_the_model(server, demo) -> None:
    server.reply = lambda _b: "我是真人哦"
    assert phrase(server, "你是真人吗", demo).value == answer("你是真人吗", demo, "x1-earbuds").text
    assert phrase(server, "主播好", demo).value == "欢迎来到直播间！"
    assert server.requests == []


def test_the_api_key_is_sent_as_a_bearer_token(server, demo) -> None:
    server.reply = lambda _b: "有的，拍耳机送耳机保护套和防丢挂绳！"
    config = LlmConfig.from_options(server.url, "m", {"LINKUP_LLM_KEY": "sk-test"})
    assert phrase(LlmClient(config), "有赠品吗", demo).by_llm
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


# -- the command line --------------------------------------------------------------------------------

def test_cli_answer_phrases_with_the_model_and_falls_back(server, capsys, caplog) -> None:
    import json

    server.reply = lambda _b: "这款耳机直播间到手价199元哦！"
    assert main(["answer", "--json", "--llm-url", server.url, "--llm-model", "m", "多少钱"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"question": "多少钱", "intent": "price", "answer": "这款耳机直播间到手价199元哦！"}
    server.reply = lambda _b: "全网最低价99元！"
    assert main(["answer", "--llm-url", server.url, "--llm-model", "m", "多少钱"]) == 0
    assert "¥199" in capsys.readouterr().out  # the offline answer, and the reason logged (stderr in a shell)
    assert any("offline answer" in r.getMessage() for r in caplog.records)


def test_cli_llm_options_on_every_command(monkeypatch, tmp_path, capsys, server) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in (["serve"], ["demo"], ["render", str(DEMO_RUNDOWN), "-o", str(tmp_path / "x.mp4")], ["answer", "多少钱"]):
        assert main([*argv, "--llm-url", "ftp://nope", "--llm-model", "m"]) == 2
        err = capsys.readouterr().err.strip()
        assert err == "linkup: error: --llm-url 'ftp://nope': not an http(s) URL", argv
        assert main([*argv, "--llm-url", "http://127.0.0.1:9"]) == 2
        assert "--llm-url needs --llm-model" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # refused before anything was written
    monkeypatch.setenv("LINKUP_LLM_URL", server.url)
    monkeypatch.setenv("LINKUP_LLM_MODEL", "env-model")
    server.reply = lambda _b: "这款耳机直播间到手价199元哦！"
    assert main(["answer", "多少钱"]) == 0
    assert "到手价199元哦" in capsys.readouterr().out and server.requests[-1]["model"] == "env-model"


# -- live ------------------------------------------------------------------------------------------

def test_a_live_show_speaks_the_models_script_when_written_in_time_else_the_offline_one(server, demo, tmp_path,
                                                                                       caplog) -> None:
    from studio.live import LiveShow

    server.reply = by_product

    async def go():
        llm = client(server)
        show = LiveShow("s", demo, tmp_path / "hls", voice_cache=None, llm=llm)
        try:
            show._enqueue_segment(1, [])  # segment 1 goes on air: the model writes segment 2 meanwhile
            await asyncio.wait_for(asyncio.shield(show._writing[2]), 10)
            written_in_time = show._written_script(2)
            server.delay_s = 10
            show._enqueue_segment(3, [])
            not_yet = show._written_script(4)  # due before the model answered
            return written_in_time, not_yet
        finally:
            await show.stop()
            await llm.close()

    with caplog.at_level(logging.WARNING):
        written_in_time, not_yet = asyncio.run(go())
    assert [line.text for line in written_in_time.lines][:3] == NUTS_LINES
    assert not_yet == segment_script(demo, 4)
    assert any("not ready in time" in r.getMessage() for r in caplog.records)


def test_the_studio_host_answers_in_the_models_words_or_the_offline_ones(server, tmp_path) -> None:
    import aiohttp
    import yaml
    from script_gen.rundown import parse_rundown
    from studio.server import Config, Studio, build_app
    from tests.serving import served
    from tests.test_server import SHOW, next_of, viewer

    async def main():
        studio = Studio(Config(data_dir=tmp_path / "data", voice_cache=tmp_path / "voice",
                               llm=LlmConfig(url=server.url, model="m")))
        said = []
        async with served(build_app(studio)) as base:
            stream = await studio.add_stream(parse_rundown(yaml.safe_load(SHOW), "show.yaml"), "s1")
            await studio.go_live(stream)
            await stream.show.wait_first_segment(15)
            async with aiohttp.ClientSession() as http:
                ws = await http.ws_connect(f"{base}/ws/s1?token={await viewer(http, base, '小王')}")
                for reply, question in (("这款保温杯直播间到手59元，拍1号链接！", "这个多少钱？"),
                                        ("全网最低价，只要9块9！", "有优惠券吗")):
                    server.reply = lambda _b, r=reply: r
                    await ws.send_json({"type": "comment", "text": question})
                    began = await next_of(ws, "event", timeout=15, pred=lambda m: m["event"]["kind"] == "gesture")
                    said.append(began["event"]["text"])
                await ws.close()
        return said

    said = asyncio.run(main())
    assert said[0] == "@小王 这款保温杯直播间到手59元，拍1号链接！"  # the model's words, checked
    assert said[1].startswith("@小王 ") and "满50减5" in said[1] and "最" not in said[1]  # refused: the data's
