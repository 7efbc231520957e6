"""The aiohttp server: REST API, pages, HLS files and the viewers' websocket.

I/O at the edges only: the show runs in `studio.live`, claims are decided in
`studio.deals` and made durable by `studio.claims_store`, fan-out is `studio.hub`.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import orjson
import yaml
from aiohttp import web

from avatar.voice.factory import voice_chain
from avatar.voice.preflight import preflight, rundown_lines
from avatar.voice.profile import VoiceProfile
from script_gen.answer import AnswerQueue, FlashSaleState, LiveFacts
from script_gen.lint import lint
from script_gen.llm import LlmClient, LlmConfig, phrase_answer
from script_gen.rundown import Rundown, RundownError, parse_rundown
from studio.auth import Identity, Role, TokenError, Tokens
from studio.backend import EVENTS_KEPT, build_backends
from studio.claims_store import ClaimsUnavailable
from studio.deals import Batch, ClaimRequest, ClaimResult
from studio.feedback import Feedback, claim_answer, deal_event
from studio.hub import Client
from studio.live import LiveShow
from studio.live_timeline import LiveEvent
from studio.moderation import CommentPolicy
from studio.payload import PayloadError, take
from studio.ratelimit import ClaimGuard, ClaimLimits
from studio.render import ASSETS, build_scripts, card_for
from studio.reservations import Reservations
from studio.rtmp import check_rtmp_url
from studio.schedule import Slot, ToastThrottle, due, mask_nickname
from studio.viewer_socket import ViewerSocket

log = logging.getLogger("linkup.server")
WEB = ASSETS / "web"
STUDIO: web.AppKey["Studio"] = web.AppKey("studio")
ACTIONS = ("go_live", "pause", "resume", "skip", "link_up", "say", "end")


@dataclass
class Stream:
    id: str
    title: str
    rundown: Rundown
    starts_at: float | None = None
    show: LiveShow | None = None
    ended: bool = False
    events: list[dict] = field(default_factory=list)  # every event so far, for late joiners
    comment_times: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    reservations: int = 0
    brand_id: str | None = None  # whose voice the host speaks with (the brand page's voice profile)
    preflight: dict[str, Any] | None = None  # the last voice preflight: progress, then per-line report
    answers: AnswerQueue | None = None  # viewers' questions, merged, for the host

    def comments_per_min(self, now: float) -> int:
        while self.comment_times and self.comment_times[0] < now - 60:
            self.comment_times.popleft()
        return len(self.comment_times)

    @property
    def status(self) -> str:
        if self.ended:
            return "ended"
        return "live" if self.show is not None else "scheduled"


@dataclass
class Config:
    data_dir: Path
    voice_cache: Path | None = None
    resolution: str = "720p"
    secret: bytes | None = None
    redis_url: str | None = None  # set: claims, rooms and streams are shared with other processes (docs/scaling.md)
    node: str | None = None  # this process's name among them (a stable one replays its own pending orders)
    redis_idle_timeout: float = 30.0  # seconds before another process takes over a dead one's pending orders
    llm: LlmConfig | None = None  # a language model writes scripts and words answers (docs/llm.md); None: offline


class Studio:
    """Everything live in one process: streams, their shows, the hub and the deals."""

    def __init__(self, config: Config) -> None:
        self.config = config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.llm = None if config.llm is None else LlmClient(config.llm)
        self.tokens = Tokens(config.secret)
        self.streams: dict[str, Stream] = {}
        backends = build_backends(config)  # embedded (SQLite, this process) unless config.redis_url
        self.hub = backends.hub
        self.claims = backends.claims
        self.deals = backends.claims.deals  # read view: batches, stock left, open times, button state
        self.store = backends.claims.store
        self.bus = backends.bus  # room-wide messages: local Hub, or every process's on Redis
        self.cluster = backends.cluster
        self.comments = CommentPolicy()
        self.reservations = Reservations(config.data_dir / "reservations.sqlite3")
        self.toasts = ToastThrottle()
        self.claim_guard = ClaimGuard(ClaimLimits.from_env())
        self.feedback = Feedback(self.bus.publish)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._scheduler: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def background(self, job: Awaitable[None]) -> None:
        """Run `job` on the loop; kept referenced until done, cancelled on close."""
        task = asyncio.ensure_future(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        await self.hub.start()
        await self.claims.start()
        await self.bus.start()
        if self.cluster is not None:
            await self.cluster.start(self)
        self._scheduler = asyncio.create_task(self._run_schedule())

    async def _run_schedule(self) -> None:
        """Scheduled streams go live by themselves when their time comes."""
        while True:
            slots = [Slot(s.id, s.starts_at, s.status) for s in self.streams.values()]
            for stream_id in due(slots, time.time()):
                try:
                    await self.go_live(self.streams[stream_id])
                except Exception:  # one broken stream must not stop the others from starting
                    log.exception("stream %s could not go live", stream_id)
                    self.streams[stream_id].ended = True
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        pending = [*self._tasks, *([self._scheduler] if self._scheduler else [])]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        for stream in self.streams.values():
            if stream.show is not None:
                await stream.show.stop()
        if self.cluster is not None:
            await self.cluster.close()
        self.feedback.close()  # no trailing deal update after the rooms are gone
        await self.hub.close()
        await self.bus.close()
        await self.claims.close()
        self.reservations.close()
        if self.llm is not None:
            await self.llm.close()

    async def add_stream(self, rundown: Rundown, stream_id: str | None = None, starts_at: float | None = None,
                         brand_id: str | None = None) -> Stream:
        """Raises ValueError when a flash-sale batch id already belongs to another stream."""
        stream = Stream(stream_id or secrets.token_hex(4), rundown.title, rundown, starts_at, brand_id=brand_id)
        batches = [
            Batch(seg.flash_sale.batch, stream.id, seg.product_id, seg.flash_sale.stock,
                  seg.flash_sale.per_viewer_limit, seg.flash_sale.coupon.label() if seg.flash_sale.coupon else "")
            for seg in rundown.segments if seg.flash_sale is not None
        ]
        for batch in batches:
            known = self.deals.batches.get(batch.batch)
            if known is not None and known.stream_id != stream.id:
                raise ValueError(f"flash_sale.batch {batch.batch!r} belongs to stream {known.stream_id!r}: use a new batch id")
        if self.cluster is not None:  # shared with every process (ValueError: the id or a batch is taken)
            await self.cluster.announce(stream, batches)
        stream.reservations = await self.reservations.count(stream.id)
        self.streams[stream.id] = stream
        for batch in batches:
            await self.claims.add_batch(batch)  # a restarted stream keeps its batches and claims
        return stream

    async def go_live(self, stream: Stream) -> None:
        if stream.show is not None or stream.ended:
            return
        if self.cluster is not None and self.cluster.forward_go_live(stream):
            return  # its show runs on the process that created it
        show = LiveShow(stream.id, stream.rundown, self.config.data_dir / "hls" / stream.id,
                        voice_cache=self.config.voice_cache, resolution=self.config.resolution,
                        record_dir=self.config.data_dir / "recordings",
                        voice=self.voice_of(stream), pack_dir=await asyncio.to_thread(self.host_of, stream), llm=self.llm,
                        on_event=lambda ev: self._from_render_thread(stream, ev))
        stream.show = show
        await show.start()
        self.bus.publish(stream.id, {"type": "status", "status": "live"})

    async def answer(self, stream: Stream, nickname: str, question: str) -> None:
        """A viewer's question goes to the host, answered from the facts after the current line.

        Repeats within the answer window are merged: the answer is spoken once, naming those who
        asked before it was queued; chatter gets a short acknowledgement at most. Answers are built
        from product data and pass the ad-law linter.
        """
        show = stream.show
        if show is None or show.status != "live":
            return
        queue = stream.answers
        if queue is None:
            queue = stream.answers = AnswerQueue(stream.rundown, show.current_product)
        queue.product_id = show.current_product
        queue.live = self.live_facts(stream)
        reply = queue.offer(nickname, question, time.monotonic())
        if reply is None:
            return
        names = "、".join(f"@{n}" for n in queue.askers(reply))
        text = (await phrase_answer(self.llm, reply, stream.rundown, queue.live)).value  # checked, else offline
        await show.command("say", text=f"{names} {text}")

    def live_facts(self, stream: Stream) -> LiveFacts:
        rd = stream.rundown
        batches = [b for b in self.deals.batches.values() if b.stream_id == stream.id]
        return LiveFacts(
            links={p.id: rd.link_no(p.id) for p in rd.products if any(s.product_id == p.id for s in rd.segments)},
            flash_sales={b.product_id: FlashSaleState(self.deals.left(b.batch), b.per_viewer_limit)
                         for b in batches if self.deals.open_at(b.batch) is not None},
        )

    def voice_of(self, stream: Stream) -> VoiceProfile:
        """The voice the host speaks a stream with: its brand's (chosen in the brand page), else the rundown's."""
        if stream.brand_id is None:
            return VoiceProfile.from_settings(stream.rundown.host.voice)
        from studio.voice_api import (
            load_voice_profile,  # voice_api builds on this module's helpers
        )

        return load_voice_profile(self.config.data_dir, stream.brand_id)

    def host_of(self, stream: Stream) -> Path | None:
        """The host pack a stream is drawn with: its brand's active host (brand page), else None (the rundown's)."""
        if stream.brand_id is None:
            return None
        from studio.host_api import active_pack  # imported here: host_api builds on this module's helpers

        return active_pack(self.config.data_dir, stream.brand_id)

    def _from_render_thread(self, stream: Stream, event: LiveEvent) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self._on_event, stream, event)

    def _on_event(self, stream: Stream, event: LiveEvent) -> None:
        payload: dict[str, Any] = {"kind": event.kind, "media_time": event.media_time, "product_id": event.product_id}
        if event.value is not None:
            payload["value"] = event.value
        if event.text is not None:
            payload["text"] = event.text
        batches = self.claims.cue(stream.id, event.kind, event.product_id, event.media_time)
        if batches:  # link_up: the batches it opened; hide_card: the batches it ended
            payload["batches"] = batches
        if event.kind == "hide_card":  # every viewer's claim button closes with the card
            for batch in batches:
                self.feedback.update(stream.id, deal_event(batch, "closed", self.deals.left(batch),
                                                           self.deals.granted(batch), event.media_time))
        stream.events.append(payload)
        del stream.events[:-EVENTS_KEPT]  # a looping show must not grow every hello without end
        self.bus.publish(stream.id, {"type": "event", "event": payload}, history=True)

    def describe(self, stream: Stream) -> dict[str, Any]:
        return {
            "id": stream.id,
            "title": stream.title,
            "status": stream.status,
            "starts_at": stream.starts_at,
            "hls_url": f"/hls/{stream.id}/index.m3u8",
            "ws_url": f"/ws/{stream.id}",
            "watch_url": f"/watch/{stream.id}",
            "reservations": stream.reservations,
        }

    def details(self, stream: Stream) -> dict[str, Any]:
        rd = stream.rundown
        products = []
        for seg in rd.segments:
            card = card_for(rd.product(seg.product_id), seg, rd.link_no(seg.product_id))
            products.append({"id": card.product_id, "name": card.name, "price": card.price,
                             "live_price": card.live_price, "coupon": card.coupon, "link_no": card.link_no})
        batches = [
            {"batch": b.batch, "product_id": b.product_id, "stock": b.stock, "left": self.deals.left(b.batch),
             "per_viewer_limit": b.per_viewer_limit, "coupon": b.coupon, "open_at": self.deals.open_at(b.batch)}
            for b in self.deals.batches.values() if b.stream_id == stream.id
        ]
        show = stream.show
        stats = {"viewers": self.hub.count(stream.id), "comments_per_min": stream.comments_per_min(time.monotonic())}
        answer = {**self.describe(stream), "products": products, "batches": batches, "stats": stats,
                  "media_time": show.media_time if show else None, "media_epoch": show.media_epoch if show else None,
                "voice_failovers": list(show.failovers)[-10:] if show else []}
        if show is not None and not stream.ended:
            answer["rtmp_status"] = show.rtmp_status
            answer["recording"] = show.recording.name if show.recording else None
        return answer


# ---------------------------------------------------------------- HTTP edges

def error(status: int, message: str) -> web.HTTPException:
    cls = {400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden,
           404: web.HTTPNotFound, 409: web.HTTPConflict}[status]
    return cls(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


@web.middleware
async def json_errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Every error a client sees is JSON with a message; a bug is logged and answered 500, never a traceback page."""
    try:
        return await handler(request)
    except PayloadError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
        return web.json_response({"error": exc.reason}, status=exc.status, headers=headers)
    except Exception:
        log.exception("error serving %s %s", request.method, request.path)
        return web.json_response({"error": "internal error"}, status=500)


def identity(request: web.Request, *roles: Role) -> Identity:
    studio: Studio = request.app[STUDIO]
    header = request.headers.get("Authorization", "")
    token = header[7:] if header.startswith("Bearer ") else request.query.get("token", "")
    if not token:
        raise error(401, "a token is required (Authorization: Bearer <token>)")
    try:
        who = studio.tokens.verify(token)
    except TokenError as exc:
        raise error(401, str(exc)) from None
    if roles and who.role not in roles:
        raise error(403, f"this needs a {' or '.join(roles)} token, not a {who.role} token")
    return who


async def body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise error(400, "body must be JSON") from None


def stream_of(request: web.Request) -> Stream:
    studio: Studio = request.app[STUDIO]
    stream = studio.streams.get(request.match_info["stream_id"])
    if stream is None:
        raise error(404, f"no stream {request.match_info['stream_id']!r}")
    return stream


async def new_viewer(request: web.Request) -> web.Response:
    fields = take(await body(request), {"nickname": str})
    nickname = fields["nickname"].strip()
    if not 1 <= len(nickname) <= 20:
        raise error(400, "nickname: 1 to 20 characters")
    studio: Studio = request.app[STUDIO]
    # the host says it aloud ("@昵称") and burns it into the video: the comment policy's masking applies
    nickname = studio.comments.clean_nickname(nickname)
    who = Identity("viewer", "v-" + secrets.token_hex(6), nickname)
    return web.json_response({"token": studio.tokens.issue(who), "viewer_id": who.subject, "nickname": nickname})


async def list_streams(request: web.Request) -> web.Response:
    studio: Studio = request.app[STUDIO]
    return web.json_response([studio.describe(s) for s in studio.streams.values()])


async def get_stream(request: web.Request) -> web.Response:
    studio: Studio = request.app[STUDIO]
    return web.json_response(studio.details(stream_of(request)))


async def create_stream(request: web.Request) -> web.Response:
    """A buyer schedules a stream from a rundown (YAML text, see docs/rundown.md)."""
    identity(request, "buyer")
    studio: Studio = request.app[STUDIO]
    fields = take(await body(request), {"rundown": str}, {"starts_at": (int, float), "id": str, "override_reason": str,
                                                         "brand_id": str})
    try:
        rundown = parse_rundown(yaml.safe_load(fields["rundown"]), "rundown")
    except yaml.YAMLError as exc:
        raise error(400, f"rundown: not valid YAML ({str(exc).splitlines()[0]})") from None
    except RundownError as exc:
        raise error(400, str(exc)) from None
    stream_id = fields.get("id")
    if stream_id is not None and (not stream_id.isascii() or not stream_id.replace("-", "").isalnum() or len(stream_id) > 32):
        raise error(400, "id: letters, digits and '-' only, at most 32")
    if stream_id in studio.streams:
        raise error(409, f"stream {stream_id!r} exists already")
    brand_id = fields.get("brand_id")
    if brand_id is not None and not (1 <= len(brand_id) <= 64 and brand_id.isprintable() and brand_id.strip() == brand_id):
        raise error(400, "brand_id: 1 to 64 printable characters, no surrounding spaces")
    if fields.get("starts_at") is not None:  # it will go on air by itself: check the words now
        check_ad_law(script_lines(rundown), fields.get("override_reason"), f"scheduled stream {stream_id or '(new)'}")
    try:
        stream = await studio.add_stream(rundown, stream_id, fields.get("starts_at"), brand_id)
    except ValueError as exc:
        raise error(409, str(exc)) from None
    return web.json_response(studio.details(stream), status=201)


async def reserve(request: web.Request) -> web.Response:
    """预约: a viewer asks to be reminded; only a scheduled stream takes reservations."""
    who = identity(request, "viewer")
    studio: Studio = request.app[STUDIO]
    stream = stream_of(request)
    if stream.status != "scheduled":
        raise error(409, f"the stream is {stream.status}: reservations are for scheduled streams")
    stream.reservations = await studio.reservations.reserve(stream.id, who.subject)
    return web.json_response({"reserved": True, "reservations": stream.reservations})


def script_lines(rundown: Rundown) -> list[str]:
    """What the host will say in the show's first pass (generated lines are clean by construction;
    written ones are the brand's and may not be)."""
    return [line.text for script in build_scripts(rundown, 0) for line in script.lines]


def check_ad_law(lines: list[str], override_reason: str | None, what: str) -> None:
    """Refuse (409, with the findings) to put words with ad-law findings on air, unless a buyer
    overrides with a reason, which is logged."""
    findings = lint(lines)
    if not findings:
        return
    if override_reason and override_reason.strip():
        log.warning("%s: on air over %d ad-law finding(s) (%s); override reason: %s", what, len(findings),
                    ", ".join(f.text for f in findings), override_reason.strip())
        return
    first = findings[0]
    message = (f"the script has {len(findings)} ad-law finding(s), e.g. line {first.line}: {first.text!r} "
               f"({first.rule}) -> {first.suggestion!r}; fix it or send override_reason")
    raise web.HTTPConflict(text=json.dumps({"error": message, "findings": [f.as_json() for f in findings]},
                                           ensure_ascii=False), content_type="application/json")


async def start_preflight(request: web.Request) -> web.Response:
    """Voice every scripted line before the show (into the show's cache); the console polls the report."""
    identity(request, "buyer")
    studio: Studio = request.app[STUDIO]
    stream = stream_of(request)
    if stream.preflight is not None and not stream.preflight["done"]:
        raise error(409, "a preflight is already running")
    profile = studio.voice_of(stream)
    texts = rundown_lines(stream.rundown)
    state: dict[str, Any] = {"done": False, "voiced": 0, "total": len(texts), "lines": []}
    stream.preflight = state

    def progress(voiced: int, total: int) -> None:
        state["voiced"] = voiced

    async def run() -> None:
        try:
            reports = await preflight(voice_chain(profile, studio.config.voice_cache), texts, progress)
            state["lines"] = [{"text": r.text, "engine": r.engine, "fell_back": r.fell_back,
                               "reasons": list(r.reasons), "seconds": round(r.seconds, 2)} for r in reports]
        except Exception as exc:  # every engine failed for a line: say so, never a silent 500
            log.exception("preflight of stream %s failed", stream.id)
            state["error"] = str(exc)
        finally:
            state["done"] = True

    studio.background(run())
    return web.json_response(state, status=202)


async def get_preflight(request: web.Request) -> web.Response:
    identity(request, "buyer")
    stream = stream_of(request)
    if stream.preflight is None:
        raise error(404, "no preflight yet: POST to start one")
    return web.json_response(stream.preflight)


async def control(request: web.Request) -> web.Response:
    who = identity(request, "buyer")
    studio: Studio = request.app[STUDIO]
    stream = stream_of(request)
    fields = take(await body(request), {"action": str}, {"product_id": str, "text": str, "override_reason": str})
    action = fields["action"]
    if action not in ACTIONS:
        raise error(400, f"action: one of {', '.join(ACTIONS)}")
    product_id = fields.get("product_id")
    if product_id is not None and product_id not in {p.id for p in stream.rundown.products}:
        raise error(400, f"product_id: no product {product_id!r} in this stream")
    if action == "say" and not (fields.get("text") or "").strip():
        raise error(400, "text: required for say")
    if stream.ended:
        raise error(409, "the stream has ended")
    if action in ("go_live", "say"):
        lines = [fields["text"]] if action == "say" else script_lines(stream.rundown)
        check_ad_law(lines, fields.get("override_reason"), f"stream {stream.id} {action} by {who.subject}")
    if action == "go_live":
        await studio.go_live(stream)
    elif stream.show is None:
        raise error(409, "the stream is not live yet: go_live first")
    else:
        try:
            await stream.show.command(action, product_id=product_id, text=fields.get("text"))
        except (ValueError, KeyError) as exc:  # e.g. a product with no segment to skip or link up to
            raise error(400, str(exc).strip("'\"")) from None
        except RuntimeError as exc:  # the show stopped (ended, or its render failed)
            raise error(409, str(exc)) from None
        if action == "end":
            stream.ended = True
            studio.bus.publish(stream.id, {"type": "status", "status": "ended"})
    return web.json_response({"ok": True, "status": stream.status})


async def outputs(request: web.Request) -> web.Response:
    """The buyer starts (a URL) or stops (null) pushing the live stream to an RTMP server."""
    identity(request, "buyer")
    stream = stream_of(request)
    data = await body(request)
    fields = take(data, {}, {"rtmp_url": str})
    if "rtmp_url" not in data:
        raise error(400, "missing field: rtmp_url")
    url = fields.get("rtmp_url")
    if url is not None:
        try:
            check_rtmp_url(url)
        except ValueError as exc:
            raise error(400, str(exc)) from None
    if stream.show is None or stream.ended:
        raise error(409, "the stream is not live")
    try:
        await stream.show.set_rtmp(url)
    except RuntimeError as exc:
        raise error(409, str(exc)) from None
    return web.json_response({"rtmp_status": stream.show.rtmp_status})


async def viewer_socket(request: web.Request) -> web.StreamResponse:
    stream = stream_of(request)
    who = identity(request, "viewer")
    studio: Studio = request.app[STUDIO]
    # text messages are handled as they are parsed (no task wakes per claim); one encoded frame serves every viewer
    ws = ViewerSocket(lambda text: handle_viewer_message(studio, stream, client, text),
                      max_msg_size=4096, compress=False)
    client = Client(ws, who.subject, who.name, request.transport,
                    studio.claim_guard.address_of(request.remote, request.headers.get("X-Forwarded-For")))
    await ws.prepare(request)
    studio.hub.join(stream.id, client)
    studio.hub.send(client, {"type": "hello", "viewer": {"id": who.subject, "nickname": who.name},
                             "stream": studio.details(stream), "events": stream.events})
    try:
        async for _ in ws:  # only control and binary frames come this way: they need nothing from us
            pass
    finally:
        studio.hub.leave(stream.id, client)
    return ws


def handle_viewer_message(studio: Studio, stream: Stream, client: Client, raw: str) -> None:
    """Never waits: answers to questions run in the background and claims are answered once durable."""
    try:
        data = orjson.loads(raw)  # 0.7 us against json.loads's 3.1 us: every claim of a storm is parsed here
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "comment":
            fields = take(data, {"type": str, "text": str})
            verdict = studio.comments.check(client.viewer_id, fields["text"], time.monotonic())
            if not verdict.ok:
                studio.hub.send(client, {"type": "error", "message": verdict.error})
                return
            stream.comment_times.append(time.monotonic())
            studio.bus.comment(stream.id, {"id": secrets.token_hex(6), "viewer_id": client.viewer_id,
                                           "nickname": client.nickname, "text": verdict.text, "ts": time.time()})
            studio.background(studio.answer(stream, client.nickname, verdict.text))  # the viewer's claims never wait on it
        elif kind == "like":
            fields = take(data, {"type": str}, {"count": int})
            studio.bus.like(stream.id, max(1, min(50, fields.get("count", 1))))
        elif kind == "claim":
            request_id, batch = data.get("request_id"), data.get("batch")
            if len(data) != 3 or type(request_id) is not str or type(batch) is not str:  # the storm's hot path skips take()
                fields = take(data, {"type": str, "request_id": str, "batch": str})  # which names what is wrong
                request_id, batch = fields["request_id"], fields["batch"]
            claim(studio, stream, client, request_id, batch)
        else:
            raise PayloadError("type: one of comment, like, claim")
    except (json.JSONDecodeError, PayloadError) as exc:
        studio.hub.send(client, {"type": "error", "message": str(exc) if isinstance(exc, PayloadError) else "message must be JSON"})


def claim(studio: Studio, stream: Stream, client: Client, request_id: str, batch: str) -> None:
    """Decided now, answered once durable: the socket goes back to reading at once, no task waits per claim."""
    request_id = request_id[:64]
    media_time = stream.show.media_time if stream.show is not None else 0.0
    # request ids are chosen by clients: scope them to the viewer so two viewers never share an answer
    req = ClaimRequest(f"{client.viewer_id}:{request_id}", client.viewer_id, stream.id, batch, media_time)
    wait = studio.claim_guard.check(client.viewer_id, client.address, time.monotonic())
    if wait is not None:  # not an answer: nothing is decided or stored, the same request id may come again
        studio.hub.send(client, {"type": "claim_result", "request_id": request_id, "ok": False,
                                 "reason": "rate_limited", "retry_after": round(wait, 3)})
        return
    # answered only once durable (SQLite, or Redis's AOF)
    studio.claims.submit(req, functools.partial(answer_claim, studio, stream, client, request_id, batch, media_time))


def answer_claim(studio: Studio, stream: Stream, client: Client, request_id: str, batch: str, media_time: float,
                 outcome: ClaimResult | ClaimsUnavailable) -> None:
    if isinstance(outcome, ClaimsUnavailable):  # nothing acknowledged: the same request id may be sent again
        studio.hub.send(client, {"type": "error", "message": str(outcome)})
        return
    studio.hub.send_text(client, claim_answer(request_id, outcome.ok, outcome.reason, outcome.coupon))
    if outcome.ok:
        left = studio.deals.left(batch)  # now, not at this claim's decision: updates never go backwards
        if stream.show is not None:
            stream.show.set_stock(studio.deals.batches[batch].product_id, left)
        studio.feedback.update(stream.id, deal_event(batch, studio.deals.state(batch, media_time), left,
                                                     studio.deals.granted(batch), media_time))
        if studio.toasts.allow(stream.id, time.monotonic()):
            toast = f"{mask_nickname(client.nickname)} 抢到了 {outcome.coupon or '优惠券'}"
            studio.bus.publish(stream.id, {"type": "event", "event": {"kind": "toast", "text": toast, "media_time": media_time}})


async def page(request: web.Request) -> web.FileResponse:
    name = request.match_info.get("page", "watch")
    return web.FileResponse(WEB / f"{name}.html")


async def index(request: web.Request) -> web.StreamResponse:
    studio: Studio = request.app[STUDIO]
    live = [s for s in studio.streams.values() if s.status == "live"] or list(studio.streams.values())
    if not live:
        return web.Response(text="LinkUp: no streams yet", content_type="text/plain")
    raise web.HTTPFound(f"/watch/{live[0].id}")


async def hls_file(request: web.Request) -> web.StreamResponse:
    stream = stream_of(request)
    name = request.match_info["name"]
    if "/" in name or name.startswith(".") or not name.endswith((".m3u8", ".m4s", ".mp4")):
        raise error(404, "no such file")
    path = request.app[STUDIO].config.data_dir / "hls" / stream.id / name
    if not path.is_file():
        raise error(404, "no such segment (yet)")
    playlist = name.endswith(".m3u8")
    headers = {"Cache-Control": "no-cache" if playlist else "max-age=60",
               "Content-Type": "application/vnd.apple.mpegurl" if playlist else "video/mp4"}
    return web.FileResponse(path, headers=headers)  # sent without blocking the loop


def build_app(studio: Studio) -> web.Application:
    app = web.Application(middlewares=[json_errors], client_max_size=64 * 1024)
    app[STUDIO] = studio
    app.router.add_get("/", index)
    app.router.add_post("/api/viewers", new_viewer)
    app.router.add_get("/api/streams", list_streams)
    app.router.add_post("/api/streams", create_stream)
    app.router.add_get("/api/streams/{stream_id}", get_stream)
    app.router.add_post("/api/streams/{stream_id}/control", control)
    app.router.add_post("/api/streams/{stream_id}/reserve", reserve)
    app.router.add_post("/api/streams/{stream_id}/preflight", start_preflight)
    app.router.add_get("/api/streams/{stream_id}/preflight", get_preflight)
    app.router.add_post("/api/streams/{stream_id}/outputs", outputs)
    app.router.add_get("/ws/{stream_id}", viewer_socket)
    app.router.add_get("/hls/{stream_id}/{name}", hls_file)
    app.router.add_get("/watch/{stream_id}", page)
    app.router.add_get("/{page:console}", page)
    from studio.brand_api import (
        add_brand_routes,  # here: brand_api builds on this module's helpers
    )

    add_brand_routes(app)
    from studio.voice_api import add_voice_routes

    add_voice_routes(app)
    from studio.host_api import add_host_routes

    add_host_routes(app)
    app.router.add_static("/static", WEB)

    async def on_startup(app: web.Application) -> None:
        await studio.start()

    async def on_cleanup(app: web.Application) -> None:
        await studio.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
