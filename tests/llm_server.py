"""A real OpenAI-compatible chat-completions server for the LLM tests, on 127.0.0.1:0 in its own thread."""
from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable

from aiohttp import web

Reply = Callable[[dict], str]


class ChatServer:
    """Answers POST /v1/chat/completions with `reply(request_body)` as the assistant's message.

    `delay_s` holds every reply that long (a slow model); `status` other than 200 answers an error;
    `requests` keeps every body and `headers` every request's headers, for the tests to inspect.
    """

    def __init__(self, reply: Reply | str = "好的") -> None:
        self.reply: Reply = reply if callable(reply) else (lambda _body, text=reply: text)
        self.delay_s = 0.0
        self.status = 200
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def _start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        runner = web.AppRunner(app, shutdown_timeout=0.2)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.status != 200:
            return web.json_response({"error": {"message": "model overloaded"}}, status=self.status)
        text = self.reply(body)
        return web.json_response({
            "id": "chatcmpl-test", "object": "chat.completion", "model": body.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        })

    def user_message(self, i: int = -1) -> dict:
        """The JSON the client sent as the user message of request i."""
        return json.loads(self.requests[i]["messages"][-1]["content"])

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
