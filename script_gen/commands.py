"""`linkup lint` and `linkup answer`: the linter and the answerer from the command line.

Handlers return the exit code; bad use (a missing file, an unknown product) is one line on
stderr and exit 2, the same as the rest of the `linkup` command.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from script_gen.answer import Answer, answer
from script_gen.lint import lint
from script_gen.llm import (
    LlmClient,
    LlmConfig,
    LlmConfigError,
    add_llm_options,
    llm_from_args,
    phrase_answer,
)
from script_gen.rundown import Rundown, RundownError, load_rundown

DEMO_RUNDOWN = Path(__file__).resolve().parent.parent / "assets" / "demo" / "rundown.yaml"


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lint", help="check a script for words China's advertising law forbids (docs/lint.md)")
    p.add_argument("file", help="script file, one line per script line; - for stdin")
    p.add_argument("--json", action="store_true", help="print a JSON array of findings")
    p.set_defaults(run=run_lint)
    p = sub.add_parser("answer", help="answer viewers' questions from a rundown's product facts")
    p.add_argument("text", nargs="?", help="one question")
    p.add_argument("--file", help="questions, one per line; - for stdin")
    p.add_argument("--rundown", default=str(DEMO_RUNDOWN), help="rundown YAML (default: the demo show)")
    p.add_argument("--product", help="product on air (default: the first segment's)")
    p.add_argument("--json", action="store_true", help='one {"question","intent","answer"} object per line')
    add_llm_options(p)
    p.set_defaults(run=run_answer)


def run_lint(args: argparse.Namespace) -> int:
    lines = _read_lines(args.file)
    if lines is None:
        return 2
    findings = lint(lines)
    if args.json:
        print(json.dumps([f.as_json() for f in findings], ensure_ascii=False))
    else:
        for f in findings:
            print(f"{args.file}:{f.line}:{f.start}: {f.rule}: {f.text} -> {f.suggestion}")
    return 1 if findings else 0


def run_answer(args: argparse.Namespace) -> int:
    if (args.text is None) == (args.file is None):
        return _error("answer: give either a question or --file QUESTIONS, not both or neither")
    try:
        rundown = load_rundown(args.rundown)
        llm = llm_from_args(args)
    except (RundownError, LlmConfigError) as exc:
        return _error(str(exc))
    product_id = args.product or rundown.segments[0].product_id
    if product_id not in {p.id for p in rundown.products}:
        return _error(f"--product {product_id}: no such product in {args.rundown}")
    questions = [args.text] if args.file is None else _read_lines(args.file)
    if questions is None:
        return 2
    results = [answer(q, rundown, product_id) for q in (q.strip() for q in questions) if q]
    texts = [r.text for r in results] if llm is None else asyncio.run(_phrased(llm, results, rundown))
    for result, text in zip(results, texts, strict=True):
        if args.json:
            print(json.dumps({"question": result.question, "intent": result.intent, "answer": text}, ensure_ascii=False))
        else:
            print(f"{result.question}\n  [{result.intent}] {text}")
    return 0


async def _phrased(config: LlmConfig, results: list[Answer], rundown: Rundown) -> list[str]:
    """The model's wording of each answer, one question at a time (as a live host would take them)."""
    client = LlmClient(config)
    try:
        return [(await phrase_answer(client, r, rundown)).value for r in results]
    finally:
        await client.close()


def _read_lines(name: str) -> list[str] | None:
    """The file's lines (stdin for -), or None after saying why it cannot be read."""
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8-sig")
    except OSError as exc:
        _error(f"{name}: cannot read: {exc.strerror or exc}")
        return None
    except UnicodeDecodeError as exc:
        _error(f"{name}: not UTF-8 text (bad byte at offset {exc.start})")
        return None
    return text.splitlines()


def _error(message: str) -> int:
    print(f"linkup: error: {message}", file=sys.stderr)
    return 2
