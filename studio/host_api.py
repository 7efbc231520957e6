"""A brand's hosts: a portrait photo becomes a talking host (rig + 5 s preview), and the brand
picks which of its hosts its streams use.

Each brand's hosts live in data_dir/hosts/{brand}/:

    {host_id}/        host.json, photo.png, pack/ (an avatar pack), preview.mp4: moved into place
                      whole (one rename), so a host is complete or absent, never half-written
    uploads/{id}.png  a photo in which no face was found, kept so the brand can place the points
                      by hand and resubmit without uploading it again (the newest few, for a day)
    active.json       {"host_id": ...}: the host the brand's streams use
    .tmp-*/           a host being built; removed when building fails (and at start-up)

Rigging and the preview render take seconds of CPU: they run on one worker thread, one upload at
a time, so uploads never block the event loop nor take both cores from the live shows.
"""
from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from PIL import Image, ImageOps, UnidentifiedImageError

from avatar.photo.preview import render_preview
from avatar.photo.rig import MANUAL_POINTS, RigError, build_pack
from avatar.voice.atomic import write_atomic
from studio.server import STUDIO, body, error, identity

MAX_BYTES = 10 * 1024 * 1024
MIN_SIDE = 256  # px on the photo's short side: less is too little face to rig
MAX_SIDE = 2048  # longer photos are scaled down: more pixels add nothing to a 720p host
MAX_PIXELS = 50_000_000  # refused before decoding: a small file can claim a huge picture
MAX_ASPECT = 4.0
MAX_NAME = 40
KEEP_UPLOADS = 5  # photos waiting for hand-placed points, per brand
UPLOAD_TTL_S = 24 * 3600
PREVIEW_SECONDS = 5.0
NO_FACE = "no face found"  # how avatar.photo.rig's RigError begins when placing the points by hand can help
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_HOST_ID = re.compile(r"[0-9a-f]{12}")


class HostError(ValueError):
    """A refused upload; str(err) is one line, 'field: problem', that a brand can act on."""


# ---------------------------------------------------------------- checking an upload (pure)

@dataclass(frozen=True)
class Photo:
    png: bytes  # the photo as rigged and shown: upright (EXIF applied), RGB, long side <= MAX_SIDE
    width: int
    height: int
    scale: float  # stored pixels per pixel of the photo as sent (1.0 unless it was scaled down)


def normalise_photo(data: bytes) -> Photo:
    """The uploaded bytes as the PNG that is rigged, stored and shown to the brand for placing points.

    HostError for an empty, unreadable, too small, too large or panoramic picture.
    """
    if not data:
        raise HostError("photo: the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size  # from the header: nothing decoded yet
            if width * height > MAX_PIXELS:
                raise HostError(f"photo: {width}x{height} is too many pixels; the limit is {MAX_PIXELS // 1_000_000} megapixels")
            upright = ImageOps.exif_transpose(image)  # as the camera meant it, as browsers show it
            rgba = upright.convert("RGBA")
    except HostError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        reason = "not an image" if isinstance(exc, UnidentifiedImageError) else str(exc).splitlines()[0]
        raise HostError(f"photo: not an image we can read ({reason}); send a JPEG or PNG portrait") from None
    width, height = rgba.size
    if min(width, height) < MIN_SIDE:
        raise HostError(f"photo: {width}x{height} is too small; the short side needs at least {MIN_SIDE} px")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise HostError(f"photo: {width}x{height} is too long and narrow for a portrait")
    flat = Image.new("RGB", rgba.size, (255, 255, 255))  # transparent parts become white, not black
    flat.paste(rgba, mask=rgba.getchannel("A"))
    scale = min(1.0, MAX_SIDE / max(width, height))
    if scale < 1.0:
        flat = flat.resize((round(width * scale), round(height * scale)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    flat.save(out, "PNG", compress_level=1)
    return Photo(out.getvalue(), flat.width, flat.height, scale)


def parse_points(value: object, width: int, height: int, scale: float = 1.0) -> dict[str, tuple[float, float]]:
    """Hand-placed points, {name: [x, y]} for every name in MANUAL_POINTS, in the photo's pixels
    (as sent; `scale` brings them to the stored photo's). HostError names the point that is wrong."""
    names = MANUAL_POINTS
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise HostError("points: must be JSON, e.g. {\"left_eye\": [x, y], ...}") from None
    if not isinstance(value, dict):
        raise HostError(f"points: must be an object with {', '.join(names)}")
    unknown = sorted(set(value) - set(names))
    if unknown:
        raise HostError(f"points.{unknown[0]}: unknown point; the points are {', '.join(names)}")
    points: dict[str, tuple[float, float]] = {}
    for name in names:
        if name not in value:
            raise HostError(f"points.{name}: missing")
        xy = value[name]
        if (not isinstance(xy, list) or len(xy) != 2
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in xy)):
            raise HostError(f"points.{name}: must be [x, y] in pixels, got {json.dumps(xy)}")
        x, y = xy[0] * scale, xy[1] * scale
        if not (0 <= x < width and 0 <= y < height):
            raise HostError(f"points.{name}: ({xy[0]:g}, {xy[1]:g}) is outside the photo")
        points[name] = (float(x), float(y))
    return points


def parse_name(value: str | None, fallback: str) -> str:
    name = (value or "").strip() or fallback
    if len(name) > MAX_NAME:
        raise HostError(f"name: at most {MAX_NAME} characters")
    return name


# ---------------------------------------------------------------- storage (worker threads)

class HostStore:
    """The hosts folder of every brand; every method does file I/O: call it off the event loop."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def brand_dir(self, brand_id: str) -> Path:
        """An id that is not a plain name is hashed, so it can never escape the hosts folder."""
        name = brand_id if _SAFE_ID.fullmatch(brand_id) else hashlib.sha256(brand_id.encode()).hexdigest()[:32]
        return self.root / name

    def host_dir(self, brand_id: str, host_id: str) -> Path | None:
        folder = self.brand_dir(brand_id) / host_id
        return folder if _HOST_ID.fullmatch(host_id) and (folder / "host.json").is_file() else None

    def record(self, brand_id: str, host_id: str) -> dict[str, Any] | None:
        folder = self.host_dir(brand_id, host_id)
        return None if folder is None else json.loads((folder / "host.json").read_text(encoding="utf-8"))

    def hosts(self, brand_id: str) -> list[dict[str, Any]]:
        folder = self.brand_dir(brand_id)
        found = (self.record(brand_id, p.name) for p in folder.iterdir()) if folder.is_dir() else iter(())
        return sorted((r for r in found if r is not None), key=lambda r: (r["created_at"], r["id"]))

    def active(self, brand_id: str) -> str | None:
        """The host the brand's streams use: None when none was chosen or it has been deleted."""
        try:
            host_id = json.loads((self.brand_dir(brand_id) / "active.json").read_text(encoding="utf-8"))["host_id"]
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None
        return host_id if isinstance(host_id, str) and self.host_dir(brand_id, host_id) is not None else None

    def set_active(self, brand_id: str, host_id: str | None) -> None:
        write_atomic(self.brand_dir(brand_id) / "active.json", json.dumps({"host_id": host_id}).encode())

    def active_pack(self, brand_id: str) -> Path | None:
        host_id = self.active(brand_id)
        record = None if host_id is None else self.record(brand_id, host_id)
        folder = None if host_id is None else self.host_dir(brand_id, host_id)
        return None if record is None or folder is None else folder / record["pack"]

    def build(self, brand_id: str, photo: Photo, name: str, points: dict[str, tuple[float, float]] | None) -> dict[str, Any]:
        """Rig the photo and render its preview in a temp folder, then move the host into place.

        RigError (no face, points that make no face) and every other failure leave nothing behind.
        The brand's first host becomes the one its streams use (PUT /api/hosts/active changes it).
        """
        folder = self.brand_dir(brand_id)
        folder.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder))
        try:
            (work / "photo.png").write_bytes(photo.png)
            pack = build_pack(photo.png, work / "pack", points)
            render_preview(pack, work / "preview.mp4", PREVIEW_SECONDS)
            host_id = secrets.token_hex(6)
            record = {"id": host_id, "name": name, "created_at": time.time(), "width": photo.width, "height": photo.height,
                      "rigged": "auto" if points is None else "manual", "pack": str(pack.relative_to(work))}
            (work / "host.json").write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
            os.rename(work, folder / host_id)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        if len(self.hosts(brand_id)) == 1:
            self.set_active(brand_id, host_id)
        return record

    def delete(self, brand_id: str, host_id: str) -> bool:
        """Gone from listings at once (a rename), then removed; a stream already live keeps its loaded host."""
        folder = self.host_dir(brand_id, host_id)
        if folder is None:
            return False
        if self.active(brand_id) == host_id:
            self.set_active(brand_id, None)
        trash = folder.with_name(f".tmp-del-{host_id}")
        os.rename(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def save_upload(self, brand_id: str, photo: bytes) -> str:
        """Keep a photo for hand-placed points; the oldest beyond the newest few (or a day old) go."""
        folder = self.brand_dir(brand_id) / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        now = time.time()
        kept = sorted(folder.glob("*.png"), key=lambda p: p.stat().st_mtime, reverse=True)
        for i, old in enumerate(kept):
            if i >= KEEP_UPLOADS - 1 or now - old.stat().st_mtime > UPLOAD_TTL_S:
                old.unlink(missing_ok=True)
        upload_id = secrets.token_hex(6)
        write_atomic(folder / f"{upload_id}.png", photo)
        return upload_id

    def upload_path(self, brand_id: str, upload_id: str) -> Path | None:
        path = self.brand_dir(brand_id) / "uploads" / f"{upload_id}.png"
        return path if _HOST_ID.fullmatch(upload_id) and path.is_file() else None

    def drop_upload(self, brand_id: str, upload_id: str) -> None:
        path = self.upload_path(brand_id, upload_id)
        if path is not None:
            path.unlink(missing_ok=True)

    def sweep(self) -> None:
        """Hosts half-built when the server last stopped are removed."""
        if self.root.is_dir():
            for brand in self.root.iterdir():
                for work in brand.glob(".tmp-*") if brand.is_dir() else ():
                    shutil.rmtree(work, ignore_errors=True)


def active_pack(data_dir: Path, brand_id: str) -> Path | None:
    """The pack folder of the brand's chosen host (None: the rundown's host); file I/O."""
    return HostStore(Path(data_dir) / "hosts").active_pack(brand_id)


# ---------------------------------------------------------------- HTTP

HOSTS: web.AppKey[HostStore] = web.AppKey("hosts", HostStore)
RIGGER: web.AppKey[ThreadPoolExecutor] = web.AppKey("rigger", ThreadPoolExecutor)


def _json_error(cls: type[web.HTTPException], doc: dict[str, Any], **kw: Any) -> web.HTTPException:
    return cls(text=json.dumps(doc, ensure_ascii=False), content_type="application/json", **kw)


def _too_big() -> web.HTTPException:
    mb = MAX_BYTES // 2**20
    return _json_error(web.HTTPRequestEntityTooLarge, {"error": f"photo: the file is over {mb} MB; the limit is {mb} MB"},
                       max_size=MAX_BYTES, actual_size=MAX_BYTES + 1)


async def _read_limited(read: Any, limit: int, too_big: web.HTTPException) -> bytes:
    """Read in pieces; one byte over `limit` and reading stops (the app's 64 KB cap does not apply)."""
    chunks, size = [], 0
    while chunk := await read():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class Upload:
    """What a POST /api/hosts sent, before checking: a new photo, or the id of a kept one."""

    photo: bytes | None = None
    filename: str | None = None
    upload_id: str | None = None
    name: str | None = None
    points: object = None


async def _read_upload(request: web.Request) -> Upload:
    """multipart (photo | upload_id, points, name), a JSON resubmission (upload_id, points, name),
    or the image itself as the body (name and points in the query)."""
    if request.content_length is not None and request.content_length > MAX_BYTES + 64 * 1024:
        raise _too_big()
    kind = request.content_type
    if kind.startswith("multipart/"):
        upload = Upload()
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise error(400, "body: nested multipart is not accepted")
            if part.name == "photo":
                upload.photo = await _read_limited(part.read_chunk, MAX_BYTES, _too_big())
                upload.filename = part.filename
            elif part.name in ("points", "name", "upload_id"):
                text = (await _read_limited(part.read_chunk, 4096, error(400, f"{part.name}: too long"))).decode("utf-8", "replace")
                setattr(upload, part.name, text)
            else:
                raise error(400, f"{part.name}: unknown field; send photo (or upload_id), points, name")
        return upload
    if kind == "application/json":
        doc = await body(request)
        if not isinstance(doc, dict):
            raise error(400, "body: must be a JSON object with upload_id, points and name")
        unknown = sorted(set(doc) - {"upload_id", "points", "name"})
        if unknown:
            raise error(400, f"unknown field: {unknown[0]}")
        for key in ("upload_id", "name"):
            if doc.get(key) is not None and not isinstance(doc[key], str):
                raise error(400, f"{key}: must be text")
        return Upload(upload_id=doc.get("upload_id"), name=doc.get("name"), points=doc.get("points"))
    if kind.startswith("image/") or kind == "application/octet-stream":
        photo = await _read_limited(request.content.readany, MAX_BYTES, _too_big())
        return Upload(photo=photo, name=request.query.get("name"), points=request.query.get("points"))
    raise error(400, "body: send the photo as multipart/form-data (field photo) or as an image/* body")


def describe(record: dict[str, Any], active: str | None) -> dict[str, Any]:
    """What the brand sees of a host: the storage layout is not its business."""
    base = f"/api/hosts/{record['id']}"
    return {"id": record["id"], "name": record["name"], "created_at": record["created_at"],
            "width": record["width"], "height": record["height"], "rigged": record["rigged"],
            "active": record["id"] == active, "preview_url": f"{base}/preview.mp4", "photo_url": f"{base}/photo.png"}


def _brand(request: web.Request) -> tuple[HostStore, str]:
    return request.app[HOSTS], identity(request, "brand").subject


def prepare(store: HostStore, brand_id: str, upload: Upload) -> tuple[Photo, dict[str, tuple[float, float]] | None, str]:
    """The photo, hand-placed points and name of an upload, checked (file I/O and decoding: off the loop).

    HostError for bad input; LookupError when the upload_id names no kept photo.
    """
    if upload.photo is not None:
        photo, scale = normalise_photo(upload.photo), None
    elif upload.upload_id:
        path = store.upload_path(brand_id, upload.upload_id)
        if path is None:
            raise LookupError(f"no upload {upload.upload_id!r} (kept for a day): upload the photo again")
        photo, scale = normalise_photo(path.read_bytes()), 1.0  # points on a kept photo are in its own pixels
    else:
        raise HostError("photo: the photo is required (or the upload_id of a photo sent before)")
    points = None
    if upload.points not in (None, ""):
        points = parse_points(upload.points, photo.width, photo.height, photo.scale if scale is None else scale)
    stem = Path(upload.filename).stem[:MAX_NAME] if upload.filename else ""
    return photo, points, parse_name(upload.name, stem or "我的主播")


async def create_host(request: web.Request) -> web.Response:
    store, brand_id = _brand(request)
    upload = await _read_upload(request)
    if upload.photo is not None:
        upload.upload_id = None  # a new photo wins over a kept one
    try:
        photo, points, name = await asyncio.to_thread(prepare, store, brand_id, upload)
    except HostError as exc:
        raise error(400, str(exc)) from None
    except LookupError as exc:
        raise error(404, str(exc)) from None
    loop = asyncio.get_running_loop()
    try:
        record = await loop.run_in_executor(request.app[RIGGER], store.build, brand_id, photo, name, points)
    except RigError as exc:
        if points is None and not str(exc).startswith(NO_FACE):
            raise error(400, f"photo: {exc}") from None  # a face, but one we cannot animate: another photo is needed
        # no face found, or the hand-placed points make no face: keep the photo so the brand can place
        # (or move) the points on it and send them without uploading the photo again
        upload_id = upload.upload_id or await asyncio.to_thread(store.save_upload, brand_id, photo.png)
        raise _json_error(web.HTTPUnprocessableEntity, {
            "error": str(exc), "needs_points": True, "upload_id": upload_id,
            "photo_url": f"/api/hosts/uploads/{upload_id}/photo.png", "width": photo.width, "height": photo.height,
            "points": list(MANUAL_POINTS)}) from None
    if upload.upload_id:
        await asyncio.to_thread(store.drop_upload, brand_id, upload.upload_id)
    active = await asyncio.to_thread(store.active, brand_id)
    return web.json_response({"host": describe(record, active)}, status=201)


async def list_hosts(request: web.Request) -> web.Response:
    store, brand_id = _brand(request)

    def read() -> list[dict[str, Any]]:
        active = store.active(brand_id)
        return [describe(r, active) for r in store.hosts(brand_id)]

    return web.json_response(await asyncio.to_thread(read))


async def _host_dir(request: web.Request) -> Path:
    store, brand_id = _brand(request)
    host_id = request.match_info["host_id"]
    folder = await asyncio.to_thread(store.host_dir, brand_id, host_id)
    if folder is None:
        raise error(404, f"no host {host_id!r}")
    return folder


async def preview(request: web.Request) -> web.FileResponse:
    """The 5 s preview (H.264 + AAC MP4); ranges served, so a <video> can seek it."""
    return web.FileResponse(await _host_dir(request) / "preview.mp4", headers={"Content-Type": "video/mp4"})


async def host_photo(request: web.Request) -> web.FileResponse:
    return web.FileResponse(await _host_dir(request) / "photo.png", headers={"Content-Type": "image/png"})


async def upload_photo(request: web.Request) -> web.FileResponse:
    """A photo waiting for hand-placed points: the picture the points are placed on."""
    store, brand_id = _brand(request)
    upload_id = request.match_info["upload_id"]
    path = await asyncio.to_thread(store.upload_path, brand_id, upload_id)
    if path is None:
        raise error(404, f"no upload {upload_id!r}")
    return web.FileResponse(path, headers={"Content-Type": "image/png"})


async def set_active(request: web.Request) -> web.Response:
    store, brand_id = _brand(request)
    doc = await body(request)
    if not isinstance(doc, dict) or set(doc) != {"host_id"}:
        raise error(400, 'body: {"host_id": "<id>"} or {"host_id": null} (the rundown\'s own host)')
    host_id = doc["host_id"]
    if host_id is not None:
        if not isinstance(host_id, str):
            raise error(400, "host_id: must be a host's id or null")
        if await asyncio.to_thread(store.host_dir, brand_id, host_id) is None:
            raise error(404, f"no host {host_id!r}")
    await asyncio.to_thread(store.set_active, brand_id, host_id)
    return web.json_response({"host_id": host_id})


async def delete_host(request: web.Request) -> web.Response:
    store, brand_id = _brand(request)
    host_id = request.match_info["host_id"]
    if not await asyncio.to_thread(store.delete, brand_id, host_id):
        raise error(404, f"no host {host_id!r}")
    return web.json_response({"ok": True})


def add_host_routes(app: web.Application) -> None:
    """Mounts the hosts API; hosts live in the studio's data folder under hosts/."""
    store = HostStore(app[STUDIO].config.data_dir / "hosts")
    app[HOSTS] = store
    app[RIGGER] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="linkup-rig")
    app.router.add_get("/api/hosts", list_hosts)
    app.router.add_post("/api/hosts", create_host)
    app.router.add_put("/api/hosts/active", set_active)
    app.router.add_get("/api/hosts/uploads/{upload_id}/photo.png", upload_photo)
    app.router.add_get("/api/hosts/{host_id}/preview.mp4", preview)
    app.router.add_get("/api/hosts/{host_id}/photo.png", host_photo)
    app.router.add_delete("/api/hosts/{host_id}", delete_host)

    async def on_startup(app: web.Application) -> None:
        await asyncio.to_thread(store.sweep)

    async def on_cleanup(app: web.Application) -> None:
        await asyncio.to_thread(app[RIGGER].shutdown, True, cancel_futures=True)

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
