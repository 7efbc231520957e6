"""A viewer's question in the websocket to the first audio sample of the host's answer in the stream.

Runs a real server in-process on loopback with the demo show live, asks questions over the viewer
websocket and waits for the event the render thread emits on the frame where the answer's first
sample plays (a `gesture` event carrying the answer's text). The host stops at a clause or word
end, answers, then goes on with the rest of its line; so the figure depends on where in a line the
question lands: questions are spread over the show, each 1-6 s after the previous answer
is over (answers asked while the host is answering queue behind it, which this does not measure).
Bar: <= 2 s.

The host stops at the next clause end when it is within 0.5 s, else at the next word end (and says
the interrupted clause again after the answer). With --llm-url/--llm-model the answers are worded
by that model (docs/llm.md), which has 1.2 s of the budget.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from script_gen.llm import LlmConfig, add_llm_options, llm_from_args
from script_gen.rundown import load_rundown
from studio.render import DEMO_RUNDOWN
from studio.server import Config, Studio, build_app

QUESTIONS = ["多少钱？", "有优惠券吗", "怎么买", "还有货吗", "有赠品吗", "能七天无理由吗", "是正品吗", "你是真人吗"]


async def main(rounds: int, llm: LlmConfig | None = None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        studio = Studio(Config(data_dir=Path(tmp) / "data", voice_cache=Path(tmp) / "voice", llm=llm))
        runner = web.AppRunner(build_app(studio))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        stream = await studio.add_stream(load_rundown(DEMO_RUNDOWN), "demo")
        await studio.go_live(stream)
        await stream.show.wait_first_segment(15)
        rng = random.Random(1)
        waits = []
        try:
            async with aiohttp.ClientSession() as http:
                for i in range(rounds):
                    nickname = f"观众{i}"
                    async with http.post(f"{base}/api/viewers", json={"nickname": nickname}) as r:
                        token = (await r.json())["token"]
                    async with http.ws_connect(f"{base}/ws/demo?token={token}") as ws:
                        # after the previous answer is over, land anywhere in a selling line
                        while stream.show.answering:
                            await asyncio.sleep(0.05)
                        await asyncio.sleep(rng.uniform(1.0, 6.0))
                        asked = time.perf_counter()
                        await ws.send_json({"type": "comment", "text": QUESTIONS[i % len(QUESTIONS)]})
                        while True:
                            msg = await asyncio.wait_for(ws.receive_json(), 30)
                            event = msg.get("event", {})
                            if event.get("kind") == "gesture" and event.get("text", "").startswith(f"@{nickname}"):
                                waits.append(time.perf_counter() - asked)
                                break
                    await asyncio.sleep(31 if i % len(QUESTIONS) == len(QUESTIONS) - 1 else 0)  # answers merge for 30 s
        finally:
            await runner.cleanup()  # closes the studio (and its model client)
    return {
        "waits_s": [round(w, 2) for w in waits],
        "question_to_answer_audio_s": {
            "p50": round(float(np.percentile(waits, 50)), 2),
            "p90": round(float(np.percentile(waits, 90)), 2),
            "max": round(max(waits), 2),
        },
        "rounds": rounds,
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="4 rounds")
    add_llm_options(ap)
    args = ap.parse_args()
    result = asyncio.run(main(4 if args.quick else args.rounds, llm_from_args(args)))
    print(f"question -> first sample of the answer: {result['question_to_answer_audio_s']} s")
    print(json.dumps(result, ensure_ascii=False))
