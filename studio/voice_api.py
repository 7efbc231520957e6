"""The brand's voice API: its profile, its recorded lines and a spoken preview.

Each brand's voice lives in data_dir/voices/{brand}/: profile.json and lines/ (the
processed uploads). The recordings folder is always set here, never by the client, so
a brand can only ever read or write its own folder.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path

from aiohttp import BodyPartReader, web

from avatar.voice.atomic import write_atomic
from avatar.voice.factory import make_voice
from avatar.voice.profile import (
    ProfileError,
    VoiceProfile,
    parse_profile,
    profile_fields,
)
from avatar.voice.recorded import load_recording
from avatar.voice.uploads import (
    MAX_BYTES,
    UploadError,
    delete_recording,
    store_recording,
    wav_bytes,
)
from studio.clock import SAMPLE_RATE
from studio.server import STUDIO, body, error, identity

MAX_PREVIEW_CHARS = 200
MAX_TEXT_BYTES = 4096
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def voice_dir(data_dir: Path, brand_id: str) -> Path:
    """The brand's folder; an id that is not a plain name is hashed, so it can never escape data_dir."""
    name = brand_id if _SAFE_ID.fullmatch(brand_id) else hashlib.sha256(brand_id.encode()).hexdigest()[:32]
    return Path(data_dir) / "voices" / name


def load_voice_profile(data_dir: Path, brand_id: str) -> VoiceProfile:
    """The brand's stored profile (the offline voice until it saves one), recordings in its own folder."""
    folder = voice_dir(data_dir, brand_id)
    try:
        doc = json.loads((folder / "profile.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        doc = {}
    return parse_profile({**doc, "recordings": str(folder / "lines")}, f"voice profile of {brand_id}")


def _public(profile: VoiceProfile) -> dict[str, object]:
    """What the brand sees: the server-side recordings path is not its business."""
    fields = profile_fields(profile)
    del fields["recordings"]
    return fields


def _brand(request: web.Request) -> tuple[Path, str]:
    return request.app[STUDIO].config.data_dir, identity(request, "brand").subject


async def get_voice(request: web.Request) -> web.Response:
    data_dir, brand_id = _brand(request)
    return web.json_response(_public(await asyncio.to_thread(load_voice_profile, data_dir, brand_id)))


async def put_voice(request: web.Request) -> web.Response:
    data_dir, brand_id = _brand(request)
    doc = await body(request)
    if not isinstance(doc, dict):
        raise error(400, "body: must be a JSON object with the profile's fields")
    folder = voice_dir(data_dir, brand_id)
    try:
        profile = parse_profile({**doc, "recordings": str(folder / "lines")}, "body")
    except ProfileError as exc:
        raise error(400, f"{exc.field}: {exc.problem}") from None
    stored = json.dumps(_public(profile), ensure_ascii=False, indent=1).encode()
    await asyncio.to_thread(write_atomic, folder / "profile.json", stored)
    return web.json_response(_public(profile))


async def _read_part(part: BodyPartReader, limit: int, what: str) -> bytes:
    """A part read in pieces: one byte over `limit` and reading stops (the app's 64 KB cap does not apply here)."""
    chunks, size = [], 0
    while chunk := await part.read_chunk():
        size += len(chunk)
        if size > limit:
            raise error(400, what)
        chunks.append(chunk)
    return b"".join(chunks)


async def _upload_parts(request: web.Request) -> tuple[str, bytes]:
    """The multipart `text` and `file` of an upload."""
    if not request.content_type.startswith("multipart/"):
        raise error(400, "body: must be multipart/form-data with fields text and file")
    reader = await request.multipart()
    text, data = None, None
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise error(400, "body: nested multipart is not accepted")
        if part.name == "text":
            text = (await _read_part(part, MAX_TEXT_BYTES, "text: the line is too long")).decode("utf-8", "replace")
        elif part.name == "file":
            mb = MAX_BYTES // 2**20
            data = await _read_part(part, MAX_BYTES, f"the file is over {mb} MB; the limit is {mb} MB")
    if text is None or not text.strip():
        raise error(400, "text: the line the recording says is required")
    if data is None:
        raise error(400, "file: the recording is required")
    return text.strip(), data


async def put_line(request: web.Request) -> web.Response:
    data_dir, brand_id = _brand(request)
    text, data = await _upload_parts(request)
    folder = voice_dir(data_dir, brand_id) / "lines"
    try:
        path = await asyncio.to_thread(store_recording, folder, text, data)
    except UploadError as exc:
        raise error(400, str(exc)) from None
    pcm = await asyncio.to_thread(load_recording, path)
    return web.json_response({"text": text, "seconds": round(pcm.size / SAMPLE_RATE, 2)}, status=201)


async def delete_line(request: web.Request) -> web.Response:
    data_dir, brand_id = _brand(request)
    text = request.query.get("text", "").strip()
    if not text:
        raise error(400, "text: the query needs the line's text")
    if not await asyncio.to_thread(delete_recording, voice_dir(data_dir, brand_id) / "lines", text):
        raise error(404, "no recording of this line")
    return web.json_response({"ok": True})


async def preview(request: web.Request) -> web.Response:
    """The line as the brand's chain speaks it now; X-Voice-Engine names who did."""
    data_dir, brand_id = _brand(request)
    doc = await body(request)
    text = doc.get("text") if isinstance(doc, dict) else None
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_PREVIEW_CHARS:
        raise error(400, f"text: 1 to {MAX_PREVIEW_CHARS} characters to speak")
    profile = await asyncio.to_thread(load_voice_profile, data_dir, brand_id)
    voice = make_voice(profile, request.app[STUDIO].config.voice_cache)
    speech = await voice.synthesize(text.strip(), profile.settings())
    audio = await asyncio.to_thread(wav_bytes, speech.pcm)
    return web.Response(body=audio, content_type="audio/wav", headers={"X-Voice-Engine": speech.engine})


def add_voice_routes(app: web.Application) -> None:
    app.router.add_get("/api/voice", get_voice)
    app.router.add_put("/api/voice", put_voice)
    app.router.add_put("/api/voice/lines", put_line)
    app.router.add_delete("/api/voice/lines", delete_line)
    app.router.add_post("/api/voice/preview", preview)

