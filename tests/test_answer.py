"""Viewer questions: intents, answers from the data and live state, merging, and `linkup answer`."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from script_gen import commands
from script_gen.answer import AnswerQueue, FlashSaleState, LiveFacts, answer
from script_gen.intents import INTENTS, classify, is_chatter
from script_gen.lint import lint
from script_gen.rundown import load_rundown

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "data" / "intent_corpus.tsv"


@pytest.fixture(scope="module")
def demo():
    return load_rundown(REPO / "assets" / "demo" / "rundown.yaml")


def corpus() -> list[tuple[str, str]]:
    rows = [line.split("\t") for line in CORPUS.read_text(encoding="utf-8").splitlines() if line and line[0] != "#"]
    return [(intent, question) for intent, question in rows]


def test_intent_accuracy_on_the_corpus() -> None:
    rows = corpus()
    assert len(rows) >= 150 and {intent for intent, _ in rows} == set(INTENTS)
    right = sum(classify(question) == intent for intent, question in rows)
    print(f"intent corpus: {len(rows)} questions, accuracy {right / len(rows):.3f}")
    assert right / len(rows) >= 0.90


def test_every_corpus_answer_passes_the_linter(demo) -> None:
    for _, question in corpus():
        for product in demo.products:
            assert lint([answer(question, demo, product.id).text]) == [], question


def test_answers_quote_the_data(demo) -> None:
    def text(q: str, live: LiveFacts | None = None) -> str:
        return answer(q, demo, "x1-earbuds", live).text

    assert text("多少钱") == "声屿 X1 主动降噪耳机原价¥399，直播间到手价¥199，领满199减20的券后¥179，拍1号链接。"
    assert "满199减20" in text("有券吗") and "¥179" in text("有券吗")
    assert "1号链接" in text("怎么买")
    assert "2000件" in text("还有货吗")
    assert "耳机保护套" in text("送什么") and "防丢挂绳" in text("送什么")
    assert "七天无理由退换" in text("可以退货吗")
    assert text("多重") == "声屿 X1 主动降噪耳机：单耳重量4.5g。"
    assert "详情页" in text("包邮吗") and "包邮" not in text("包邮吗")  # no invented shipping promise
    assert "AI数字人" in text("你是真人吗")
    assert is_chatter("主播好") and text("主播好") == "欢迎来到直播间！"
    live = LiveFacts(stock={"x1-earbuds": 0}, links={"x1-earbuds": 7}, coupons={"x1-earbuds": None})
    assert "抢光" in text("还有货吗", live) and "7号链接" in text("怎么买", live)
    assert "没有优惠券" in text("有券吗", live)
    flash = LiveFacts(flash_sales={"x1-earbuds": FlashSaleState(left=12, per_viewer_limit=1)})
    assert "秒杀还剩12份" in text("还有吗", flash)


def test_a_question_about_another_product_is_answered_for_it(demo) -> None:
    serum = answer("精华多少钱", demo, "x1-earbuds")
    assert serum.product_id == "bose-serum" and "¥259" in serum.text and "2号链接" in serum.text
    nuts = answer("坚果保质期多久", demo, "x1-earbuds")
    assert (nuts.product_id, nuts.intent) == ("daily-nuts", "spec") and "180天" in nuts.text
    assert answer("美妆那个有赠品吗", demo, "daily-nuts").product_id == "bose-serum"
    assert answer("多少钱", demo, "daily-nuts").product_id == "daily-nuts"


def test_queue_merges_repeats_and_rate_limits_chatter(demo) -> None:
    queue = AnswerQueue(demo, "x1-earbuds", window_s=30)
    first = queue.offer("小王", "多少钱", now=0)
    assert first is not None and first.intent == "price"
    assert queue.offer("小李", "这个多少钱啊", now=5) is None
    assert queue.offer("小李", "价格多少", now=6) is None
    assert queue.askers(first) == ("小王", "小李")
    other_product = queue.offer("阿珍", "精华多少钱", now=7)
    assert other_product is not None and other_product.product_id == "bose-serum"
    assert queue.offer("小赵", "多少钱", now=31) is not None  # the window has passed
    hello = queue.offer("a", "主播好", now=40)
    assert hello is not None and len(hello.text) <= 10
    assert queue.offer("b", "来了来了", now=41) is None and queue.offer("c", "666", now=50) is None
    assert queue.offer("d", "哈哈哈", now=71) is not None


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="linkup")
    commands.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.run(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_answer_json_lines(tmp_path: Path, capsys) -> None:
    code, out, _ = run(["answer", "--json", "多少钱"], capsys)
    assert code == 0
    assert json.loads(out) == {"question": "多少钱", "intent": "price",
                               "answer": "声屿 X1 主动降噪耳机原价¥399，直播间到手价¥199，领满199减20的券后¥179，拍1号链接。"}
    questions = tmp_path / "q.txt"
    questions.write_text("有赠品吗\n\n你是真人吗\n", encoding="utf-8")
    code, out, _ = run(["answer", "--json", "--product", "daily-nuts", "--file", str(questions)], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["intent"] for r in rows] == ["gift", "ai_disclosure"]
    assert "密封收纳罐" in rows[0]["answer"]
    code, out, _ = run(["answer", "怎么买"], capsys)
    assert code == 0 and "1号链接" in out


def test_cli_answer_bad_use(tmp_path: Path, capsys) -> None:
    for argv, named in ((["answer", "--file", str(tmp_path / "none.txt")], "none.txt"),
                        (["answer", "--rundown", str(tmp_path / "x.yaml"), "hi"], "x.yaml"),
                        (["answer", "--product", "ghost", "hi"], "ghost"),
                        (["answer"], "question")):
        code, out, err = run(argv, capsys)
        assert code == 2 and out == "" and len(err.splitlines()) == 1 and named in err, argv


def test_held_out_questions_meet_the_bar() -> None:
    """Questions written by another engineer who never saw our patterns (tests/data/heldout_questions.tsv):
    accuracy >= 90%. Its labels are the issue's ten intents, so our `ai_disclosure` counts as `other`."""
    path = Path(__file__).parent / "data" / "heldout_questions.tsv"
    rows = [line.split("\t", 1) for line in path.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    assert len(rows) >= 100 and {intent for intent, _ in rows} <= set(INTENTS)
    said = [(intent, classify(text).replace("ai_disclosure", "other")) for intent, text in rows]
    accuracy = sum(a == b for a, b in said) / len(said)
    print(f"held-out questions: {len(rows)}, intent accuracy {accuracy:.3f}")
    assert accuracy >= 0.90
