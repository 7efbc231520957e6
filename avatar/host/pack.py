"""An avatar pack on disk: a manifest plus PNG layers, validated once at load.

The renderer trusts a loaded pack completely, so every problem (a missing file, a
layer of the wrong mode or size, a rig point outside the frame) is caught here and
reported as one line naming the file and the field. The format is documented in
docs/avatar-pack.md.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

FORMAT = "linkup-avatar-pack"
VERSION = 1
KINDS = ("drawn", "photo")  # drawn: layers painted for animation; photo: one portrait warped in place
LAYER_CHANNELS = {"background": 3, "body": 4, "head": 4}
PHOTO_LAYER_CHANNELS = {"photo": 3}
# the points a photo pack is rigged from (auto-rig or placed by hand), in native frame pixels
PHOTO_POINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right", "upper_lip", "lower_lip", "chin")

Point = tuple[float, float]
BGR = tuple[int, int, int]


class PackError(Exception):
    """A pack that cannot be used; the message is one line: `FILE: field: what is wrong`."""


@dataclass(frozen=True)
class Eye:
    center: Point
    width: float
    height: float  # fully open, lid to lid


@dataclass(frozen=True)
class Rig:
    """Where the renderer animates, in native frame pixels."""

    face_box: tuple[float, float, float, float]  # x0, y0, x1, y1
    head_pivot: Point  # top of the neck: the head rotates about it
    eye_left: Eye  # the eye on the image's left
    eye_right: Eye
    mouth_center: Point  # middle of the closed lips' line
    mouth_width: float  # corner to corner
    mouth_max_open: float  # lip gap at mouth_open == 1
    jaw: Point  # bottom of the chin: the part of the head that drops as the mouth opens
    hands: dict[str, Point]  # optional named points ("left", "right")


@dataclass(frozen=True)
class Palette:
    """Colours of what is drawn per frame (eyes, mouth), so they match the layers."""

    iris: BGR = (40, 58, 92)
    sclera: BGR = (236, 240, 246)
    lash: BGR = (34, 28, 30)
    lips: BGR = (112, 104, 206)
    cavity: BGR = (36, 24, 78)
    teeth: BGR = (232, 240, 246)
    tongue: BGR = (104, 100, 188)


@dataclass(frozen=True, eq=False)
class HostPack:
    """A drawn pack: background, body and head layers; eyes and mouth are drawn per frame."""

    path: Path
    name: str
    size: tuple[int, int]  # native (width, height): the frame the layers were drawn for
    background: np.ndarray  # HxWx3 uint8 BGR
    body: np.ndarray  # HxWx4 uint8 BGRA, straight alpha
    head: np.ndarray  # HxWx4 uint8 BGRA, straight alpha
    rig: Rig
    palette: Palette
    kind: str = "drawn"


@dataclass(frozen=True, eq=False)
class PhotoPack:
    """A photo pack: one portrait placed in the native frame; the face is warped in place per frame."""

    path: Path
    name: str
    size: tuple[int, int]
    photo: np.ndarray  # HxWx3 uint8 BGR: the whole frame at rest
    rig: Rig
    points: dict[str, Point]  # PHOTO_POINTS, native frame pixels
    rest_gap: float  # px between the inner lips at rest (0: the photo's lips are closed)
    palette: Palette
    kind: str = "photo"


Pack = HostPack | PhotoPack


class _Reader:
    """Reads typed fields from the manifest, failing with the field's dotted name."""

    def __init__(self, file: Path, size: tuple[int, int] | None = None) -> None:
        self.file = file
        self.size = size

    def fail(self, field: str, problem: str) -> PackError:
        return PackError(f"{self.file}: {field}: {problem}")

    def get(self, obj: dict[str, Any], key: str, field: str) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            raise self.fail(field, "missing")
        return obj[key]

    def number(self, value: Any, field: str, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(field, f"expected a number, got {value!r}")
        if positive and value <= 0:
            raise self.fail(field, f"must be > 0, got {value!r}")
        return float(value)

    def point(self, value: Any, field: str) -> Point:
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(field, f"expected [x, y], got {value!r}")
        x, y = (self.number(v, field) for v in value)
        self.inside(x, y, field)
        return x, y

    def inside(self, x: float, y: float, field: str) -> None:
        w, h = self.size or (0, 0)
        if not (0 <= x < w and 0 <= y < h):
            raise self.fail(field, f"({x:g}, {y:g}) is outside the {w}x{h} frame")

    def color(self, value: Any, field: str) -> BGR:
        text = value if isinstance(value, str) else ""
        if len(text) != 7 or text[0] != "#" or any(c not in "0123456789abcdefABCDEF" for c in text[1:]):
            raise self.fail(field, f"expected a colour like \"#c86a6a\", got {value!r}")
        r, g, b = (int(text[i : i + 2], 16) for i in (1, 3, 5))
        return b, g, r


def _read_manifest(folder: Path) -> tuple[Path, dict[str, Any]]:
    file = folder / "manifest.json"
    if not file.is_file():
        raise PackError(f"{file}: missing (an avatar pack is a folder with manifest.json and PNG layers)")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PackError(f"{file}: unreadable ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise PackError(f"{file}: not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(data, dict):
        raise PackError(f"{file}: expected a JSON object at the top")
    return file, data


def _read_size(r: _Reader, data: dict[str, Any]) -> tuple[int, int]:
    size = r.get(data, "size", "size")
    if (not isinstance(size, list) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)):
        raise r.fail("size", f"expected [width, height] in pixels, got {size!r}")
    return size[0], size[1]


def _read_layer(r: _Reader, folder: Path, layers: Any, name: str, size: tuple[int, int], want: int) -> np.ndarray:
    field = f"layers.{name}"
    rel = r.get(layers, name, field)
    if not isinstance(rel, str) or not rel:
        raise r.fail(field, f"expected a PNG file name, got {rel!r}")
    path = folder / rel
    if not path.is_file():
        raise PackError(f"{path}: {field}: file missing")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise PackError(f"{path}: {field}: unreadable as an image")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if image.dtype != np.uint8 or channels != want:
        mode = "RGB" if want == 3 else "RGBA"
        raise PackError(f"{path}: {field}: must be 8-bit {mode}, got {image.dtype} with {channels} channel(s)")
    if (image.shape[1], image.shape[0]) != size:
        raise PackError(f"{path}: {field}: is {image.shape[1]}x{image.shape[0]}, the manifest's size is {size[0]}x{size[1]}")
    return image


def _read_eye(r: _Reader, rig: Any, key: str) -> Eye:
    eye = r.get(rig, key, f"rig.{key}")
    center = r.point(r.get(eye, "center", f"rig.{key}.center"), f"rig.{key}.center")
    width = r.number(r.get(eye, "width", f"rig.{key}.width"), f"rig.{key}.width", positive=True)
    height = r.number(r.get(eye, "height", f"rig.{key}.height"), f"rig.{key}.height", positive=True)
    for dx, dy in ((-width / 2, -height / 2), (width / 2, height / 2)):
        r.inside(center[0] + dx, center[1] + dy, f"rig.{key}")
    return Eye(center, width, height)


def _read_rig(r: _Reader, data: dict[str, Any]) -> Rig:
    rig = r.get(data, "rig", "rig")
    box = r.get(rig, "face_box", "rig.face_box")
    if not isinstance(box, list) or len(box) != 4:
        raise r.fail("rig.face_box", f"expected [x0, y0, x1, y1], got {box!r}")
    x0, y0 = r.point(box[:2], "rig.face_box")
    x1, y1 = r.point(box[2:], "rig.face_box")
    if x1 <= x0 or y1 <= y0:
        raise r.fail("rig.face_box", f"x1 > x0 and y1 > y0 required, got {box!r}")
    mouth = r.get(rig, "mouth", "rig.mouth")
    m_center = r.point(r.get(mouth, "center", "rig.mouth.center"), "rig.mouth.center")
    m_width = r.number(r.get(mouth, "width", "rig.mouth.width"), "rig.mouth.width", positive=True)
    m_open = r.number(r.get(mouth, "max_open", "rig.mouth.max_open"), "rig.mouth.max_open", positive=True)
    r.inside(m_center[0] - m_width / 2, m_center[1] + m_open, "rig.mouth")
    r.inside(m_center[0] + m_width / 2, m_center[1] + m_open, "rig.mouth")
    hands = rig.get("hands", {})
    if not isinstance(hands, dict):
        raise r.fail("rig.hands", f"expected an object of named points, got {hands!r}")
    return Rig(
        face_box=(x0, y0, x1, y1),
        head_pivot=r.point(r.get(rig, "head_pivot", "rig.head_pivot"), "rig.head_pivot"),
        eye_left=_read_eye(r, rig, "eye_left"),
        eye_right=_read_eye(r, rig, "eye_right"),
        mouth_center=m_center,
        mouth_width=m_width,
        mouth_max_open=m_open,
        jaw=r.point(r.get(rig, "jaw", "rig.jaw"), "rig.jaw"),
        hands={str(k): r.point(v, f"rig.hands.{k}") for k, v in hands.items()},
    )


def _read_palette(r: _Reader, data: dict[str, Any]) -> Palette:
    colors = data.get("palette", {})
    if not isinstance(colors, dict):
        raise r.fail("palette", f"expected an object of \"#rrggbb\" colours, got {colors!r}")
    known = Palette.__dataclass_fields__
    unknown = sorted(set(colors) - set(known))
    if unknown:
        raise r.fail(f"palette.{unknown[0]}", f"unknown colour (known: {', '.join(known)})")
    return Palette(**{k: r.color(v, f"palette.{k}") for k, v in colors.items()})


def _read_points(r: _Reader, data: dict[str, Any]) -> tuple[dict[str, Point], float]:
    rig = r.get(data, "rig", "rig")
    points = r.get(rig, "points", "rig.points")
    if not isinstance(points, dict):
        raise r.fail("rig.points", f"expected an object of named points, got {points!r}")
    out = {name: r.point(r.get(points, name, f"rig.points.{name}"), f"rig.points.{name}") for name in PHOTO_POINTS}
    gap = r.number(r.get(data["rig"]["mouth"], "rest_gap", "rig.mouth.rest_gap"), "rig.mouth.rest_gap") \
        if "rest_gap" in data["rig"]["mouth"] else 0.0
    if gap < 0:
        raise r.fail("rig.mouth.rest_gap", f"must be >= 0, got {gap:g}")
    return out, gap


def load_pack(path: str | Path) -> Pack:
    """Read and validate a pack folder of either kind; raises PackError on the first problem found."""
    folder = Path(path)
    if not folder.is_dir():
        raise PackError(f"{folder}: not a folder (an avatar pack is a folder with manifest.json)")
    file, data = _read_manifest(folder)
    r = _Reader(file)
    if data.get("format") != FORMAT:
        raise r.fail("format", f"expected {FORMAT!r}, got {data.get('format')!r}")
    if data.get("version") != VERSION:
        raise r.fail("version", f"this LinkUp reads version {VERSION}, got {data.get('version')!r}")
    kind = data.get("kind", "drawn")
    if kind not in KINDS:
        raise r.fail("kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
    size = _read_size(r, data)
    r.size = size
    layers = r.get(data, "layers", "layers")
    wanted = PHOTO_LAYER_CHANNELS if kind == "photo" else LAYER_CHANNELS
    images = {name: _read_layer(r, folder, layers, name, size, want) for name, want in wanted.items()}
    name = data.get("name", folder.name)
    name = name if isinstance(name, str) and name else folder.name
    if kind == "photo":
        rig = _read_rig(r, data)
        points, gap = _read_points(r, data)
        return PhotoPack(folder, name, size, images["photo"], rig, points, gap, _read_palette(r, data))
    return HostPack(
        path=folder,
        name=name,
        size=size,
        background=images["background"],
        body=images["body"],
        head=images["head"],
        rig=_read_rig(r, data),
        palette=_read_palette(r, data),
    )
