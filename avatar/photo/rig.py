"""Auto-rig: one portrait photo becomes a photo avatar pack (docs/avatar-pack.md, "Photo packs").

Face landmarks are found once, here, with mediapipe's face mesh (its model ships in the
0.10.14 wheel); the renderer never looks for the face again. When no face is found the
brand places MANUAL_POINTS by hand and the same code builds the pack from them.
The photo is placed in the 1280x720 native frame with the face where the default host's
is, so every pack moves and talks at the same scale; the rest of the frame is a blurred
fill of the photo itself.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from avatar.host.pack import FORMAT, PHOTO_POINTS, VERSION, PackError, load_pack

MANUAL_POINTS: tuple[str, ...] = PHOTO_POINTS
NATIVE = (1280, 720)
FACE_AT = (461.0, 241.0)  # where the eyes' midpoint goes in the native frame (the default host's eyes)
EYES_TO_CHIN = 118.0  # native px from the eyes' midline to the chin (the default host's face)
MIN_SIDE, MAX_SIDE = 128, 8000  # px: smaller photos have too little face, larger ones are not portraits
MIN_FACE = 24.0  # px from the eyes to the chin, in the photo, below which a face is too small to animate
DETECT_SIDE = 1280  # long side the photo is scaled to for landmark detection
MAX_OPEN_SHARE = 0.27  # lip gap at full opening, as a share of the mouth's width
FILL_BLUR, FILL_DIM, EDGE_FEATHER = 24.0, 0.7, 16  # the blurred fill beside a narrow photo


class RigError(ValueError):
    """The photo cannot become a pack; str(e) is one line for the user."""


@dataclass(frozen=True)
class Face:
    """A face in photo pixel coordinates: the named points plus what the mesh measures more exactly."""

    points: dict[str, tuple[float, float]]
    eye_sizes: tuple[tuple[float, float], tuple[float, float]]  # (width, height) of the image-left, image-right eye
    mouth_center: tuple[float, float]  # where the lips meet
    rest_gap: float  # px between the inner lips as photographed
    face_box: tuple[float, float, float, float]
    source: str  # "mediapipe" | "hand"


def decode(image: bytes) -> np.ndarray:
    """Photo bytes -> BGR uint8, or RigError saying why not."""
    if not isinstance(image, (bytes, bytearray, memoryview)) or len(image) == 0:
        raise RigError("the photo is empty")
    picture = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    if picture is None:
        raise RigError("the photo could not be read as an image (use a JPEG, PNG or WebP file)")
    h, w = picture.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise RigError(f"the photo is too small ({w}x{h}); use one at least {MIN_SIDE} px on each side")
    if max(h, w) > MAX_SIDE:
        raise RigError(f"the photo is too large ({w}x{h}); use one at most {MAX_SIDE} px on each side")
    return picture


# -- finding the face ------------------------------------------------------------------------------

# mediapipe face-mesh landmark numbers (image-left eye = the person's right eye)
_LM = {"left_eye_outer": 33, "left_eye_inner": 133, "left_eye_top": 159, "left_eye_bottom": 145,
       "right_eye_inner": 362, "right_eye_outer": 263, "right_eye_top": 386, "right_eye_bottom": 374,
       "nose": 1, "mouth_left": 61, "mouth_right": 291, "upper_lip": 0, "lower_lip": 17, "chin": 152,
       "inner_upper": 13, "inner_lower": 14}


def _mesh(rgb: np.ndarray) -> np.ndarray | None:
    """478 landmarks (x, y in pixels of `rgb`) of the largest face, or None."""
    from mediapipe.python.solutions import face_mesh

    with face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as mesh:
        found = mesh.process(rgb).multi_face_landmarks
    if not found:
        return None
    h, w = rgb.shape[:2]
    return np.array([(p.x * w, p.y * h) for p in found[0].landmark], dtype=np.float64)


def _face_box_full_range(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """A face's box with the full-range detector (faces far from the camera), for a crop to mesh."""
    from mediapipe.python.solutions import face_detection

    with face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as detector:
        found = detector.process(rgb).detections
    if not found:
        return None
    h, w = rgb.shape[:2]
    b = max(found, key=lambda d: d.score[0]).location_data.relative_bounding_box
    cx, cy, side = (b.xmin + b.width / 2) * w, (b.ymin + b.height / 2) * h, 2.2 * max(b.width * w, b.height * h)
    x0, y0 = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
    return x0, y0, int(min(cx + side / 2, w)), int(min(cy + side / 2, h))


def find_face(picture: np.ndarray) -> Face | None:
    """The face's points from mediapipe's face mesh (cropping to the face first when it is small)."""
    h, w = picture.shape[:2]
    f = min(1.0, DETECT_SIDE / max(h, w))
    small = cv2.resize(picture, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA) if f < 1 else picture
    rgb = np.ascontiguousarray(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
    lm = _mesh(rgb)
    if lm is None:  # the mesh's own detector misses small faces: find the face, crop, mesh the crop
        box = _face_box_full_range(rgb)
        if box is None:
            return None
        x0, y0, x1, y1 = box
        crop = rgb[y0:y1, x0:x1]
        k = 512 / max(crop.shape[:2])
        lm = _mesh(np.ascontiguousarray(cv2.resize(crop, (round(crop.shape[1] * k), round(crop.shape[0] * k)))))
        if lm is None:
            return None
        lm = lm / k + (x0, y0)
    lm = lm / f

    def at(name: str) -> tuple[float, float]:
        x, y = lm[_LM[name]]
        return float(x), float(y)

    def mid(a: str, b: str) -> tuple[float, float]:
        (ax, ay), (bx, by) = at(a), at(b)
        return (ax + bx) / 2, (ay + by) / 2

    def eye(side: str) -> tuple[tuple[float, float], tuple[float, float]]:
        corners = mid(f"{side}_eye_outer", f"{side}_eye_inner")
        lids = mid(f"{side}_eye_top", f"{side}_eye_bottom")
        width = math.dist(at(f"{side}_eye_outer"), at(f"{side}_eye_inner"))
        height = math.dist(at(f"{side}_eye_top"), at(f"{side}_eye_bottom"))
        return (corners[0], lids[1]), (width, max(height, 0.2 * width))

    (le, le_size), (re, re_size) = eye("left"), eye("right")
    points = {"left_eye": le, "right_eye": re, **{k: at(k) for k in ("nose", "mouth_left", "mouth_right",
                                                                      "upper_lip", "lower_lip", "chin")}}
    gap = max(at("inner_lower")[1] - at("inner_upper")[1], 0.0)
    (x0, y0), (x1, y1) = lm.min(axis=0), lm.max(axis=0)
    return Face(points, (le_size, re_size), mid("inner_upper", "inner_lower"), gap,
                (float(x0), float(y0), float(x1), float(y1)), "mediapipe")


def face_from_points(points: dict[str, tuple[float, float]], size: tuple[int, int]) -> Face:
    """A Face from MANUAL_POINTS placed by hand (photo pixels); RigError names a missing or bad point."""
    if not isinstance(points, dict):
        raise RigError(f"points must be an object with {', '.join(MANUAL_POINTS)}")
    w, h = size
    p: dict[str, tuple[float, float]] = {}
    for name in MANUAL_POINTS:
        value = points.get(name)
        if value is None:
            raise RigError(f"point {name!r} is missing (needed: {', '.join(MANUAL_POINTS)})")
        try:
            x, y = (float(v) for v in value)
        except (TypeError, ValueError):
            raise RigError(f"point {name!r} must be [x, y] in photo pixels, got {value!r}") from None
        if not (math.isfinite(x) and math.isfinite(y) and 0 <= x < w and 0 <= y < h):
            raise RigError(f"point {name!r} ({x:g}, {y:g}) is outside the {w}x{h} photo")
        p[name] = (x, y)
    order = [("left_eye", "right_eye", 0, "left of"), ("mouth_left", "mouth_right", 0, "left of"),
             ("upper_lip", "lower_lip", 1, "above"), ("nose", "upper_lip", 1, "above"), ("lower_lip", "chin", 1, "above")]
    for a, b, axis, word in order:
        if p[a][axis] >= p[b][axis]:
            raise RigError(f"point {a!r} must be {word} {b!r}")
    eyes_y = (p["left_eye"][1] + p["right_eye"][1]) / 2
    if p["nose"][1] <= eyes_y:
        raise RigError("point 'nose' must be below the eyes")
    d = math.dist(p["left_eye"], p["right_eye"])
    eye_w = 0.42 * d
    (ux, uy), (lx, ly) = p["upper_lip"], p["lower_lip"]
    center = (ux + 0.42 * (lx - ux), uy + 0.42 * (ly - uy))
    eyes_x = (p["left_eye"][0] + p["right_eye"][0]) / 2
    chin_y = p["chin"][1]
    top = eyes_y - 0.42 * (chin_y - eyes_y)
    box = (max(eyes_x - 1.1 * d, 0.0), max(top, 0.0), min(eyes_x + 1.1 * d, w - 1.0), chin_y)
    return Face(p, ((eye_w, 0.3 * eye_w),) * 2, center, 0.0, box, "hand")


# -- placing the photo in the frame ----------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    scale: float
    offset: tuple[int, int]  # where the scaled photo's top-left corner lands in the native frame

    def point(self, p: tuple[float, float]) -> tuple[float, float]:
        return p[0] * self.scale + self.offset[0], p[1] * self.scale + self.offset[1]


def place(size: tuple[int, int], face: Face) -> Placement:
    """Scale the face to the default host's size (never leaving the frame's height uncovered), eyes where its eyes are."""
    w, h = size
    fw, fh = NATIVE
    eyes = ((face.points["left_eye"][0] + face.points["right_eye"][0]) / 2,
            (face.points["left_eye"][1] + face.points["right_eye"][1]) / 2)
    eyes_to_chin = face.points["chin"][1] - eyes[1]
    if eyes_to_chin < MIN_FACE:
        raise RigError(f"the face is too small in the photo ({eyes_to_chin:.0f} px from eyes to chin); use a closer portrait")
    s = max(fh / h, EYES_TO_CHIN / eyes_to_chin)
    sw, sh = round(w * s), round(h * s)

    def clamp(v: float, a: float, b: float) -> int:  # between a and b, whichever is larger
        return int(round(min(max(v, min(a, b)), max(a, b))))

    # a photo wider (taller) than the frame covers it; a narrower one stays whole inside it
    ox = clamp(FACE_AT[0] - eyes[0] * s, fw - sw, 0)
    oy = clamp(FACE_AT[1] - eyes[1] * s, fh - sh, 0)
    return Placement(s, (ox, oy))


def compose(picture: np.ndarray, at: Placement) -> np.ndarray:
    """The native frame: the scaled photo at its place over a dimmed, blurred fill of itself."""
    fw, fh = NATIVE
    h, w = picture.shape[:2]
    sw, sh = round(w * at.scale), round(h * at.scale)
    scaled = cv2.resize(picture, (sw, sh), interpolation=cv2.INTER_AREA if at.scale < 1 else cv2.INTER_CUBIC)
    cover = max(fw / w, fh / h)
    fill = cv2.resize(picture, (max(fw, round(w * cover)), max(fh, round(h * cover))), interpolation=cv2.INTER_AREA)
    fy, fx = (fill.shape[0] - fh) // 2, (fill.shape[1] - fw) // 2
    frame = cv2.GaussianBlur(fill[fy : fy + fh, fx : fx + fw], (0, 0), FILL_BLUR).astype(np.float32) * FILL_DIM
    ox, oy = at.offset
    x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + sw, fw), min(oy + sh, fh)
    alpha = np.ones((y1 - y0, x1 - x0), np.float32)
    ramp = np.minimum(np.arange(x1 - x0, dtype=np.float32) + 1, np.arange(x1 - x0, dtype=np.float32)[::-1] + 1) / EDGE_FEATHER
    if sw < fw:  # the photo's left and right edges fade into the fill
        alpha *= np.clip(ramp, 0, 1)[None, :]
    patch = scaled[y0 - oy : y1 - oy, x0 - ox : x1 - ox].astype(np.float32)
    region = frame[y0:y1, x0:x1]
    frame[y0:y1, x0:x1] = region + (patch - region) * alpha[..., None]
    return np.clip(np.round(frame), 0, 255).astype(np.uint8)


def _hex(bgr: np.ndarray) -> str:
    b, g, r = (int(round(min(max(v, 0), 255))) for v in bgr)
    return f"#{r:02x}{g:02x}{b:02x}"


def manifest(face: Face, at: Placement, frame: np.ndarray, name: str) -> dict:
    """The pack's manifest: the face's points moved into the native frame, and colours sampled from it."""
    s = at.scale
    p = {k: at.point(v) for k, v in face.points.items()}
    eyes = []
    for key, (ew, eh) in zip(("left_eye", "right_eye"), face.eye_sizes):
        eyes.append({"center": list(p[key]), "width": ew * s, "height": eh * s})
    center = at.point(face.mouth_center)
    width = math.dist(p["mouth_left"], p["mouth_right"])
    x0, y0 = at.point(face.face_box[:2])
    x1, y1 = at.point(face.face_box[2:])
    fw, fh = NATIVE
    box = [max(x0, 0.0), max(y0, 0.0), min(x1, fw - 1.0), min(y1, fh - 1.0)]
    chin = p["chin"]
    pivot = (chin[0], min(chin[1] + 0.1 * (box[3] - box[1]), fh - 1.0))
    lips_y0, lips_y1 = int(p["upper_lip"][1]), int(p["lower_lip"][1]) + 1
    lips = frame[lips_y0:lips_y1, int(center[0] - width / 4) : int(center[0] + width / 4) + 1].reshape(-1, 3)
    lip = np.median(lips, axis=0) if lips.size else np.array([112.0, 104.0, 206.0])
    clip = lambda v: [float(min(max(v[0], 0), fw - 1)), float(min(max(v[1], 0), fh - 1))]
    return {
        "format": FORMAT,
        "version": VERSION,
        "kind": "photo",
        "name": name,
        "description": f"rigged from a photo ({face.source})",
        "size": list(NATIVE),
        "layers": {"photo": "photo.png"},
        "rig": {
            "face_box": box,
            "head_pivot": list(pivot),
            "eye_left": eyes[0],
            "eye_right": eyes[1],
            "mouth": {"center": list(center), "width": width,
                      "max_open": min(MAX_OPEN_SHARE * width, fh - 1 - center[1]), "rest_gap": face.rest_gap * s},
            "jaw": list(chin),
            "hands": {},
            "points": {k: clip(v) for k, v in p.items()},
            "rigged_by": face.source,
        },
        "palette": {"lips": _hex(lip), "cavity": _hex(lip * (0.16, 0.14, 0.3)), "tongue": _hex(lip * (0.5, 0.48, 0.72)),
                    "teeth": _hex(np.array([214, 224, 230]) * 0.8 + lip * 0.2)},
    }


def _rounded(value: object) -> object:
    """Manifest numbers to 0.01 px: exact enough, and readable by a person."""
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _write(out_dir: Path, frame: np.ndarray, data: dict) -> None:
    """Write the pack next to out_dir, check it loads, then swap it in: a reader sees the old pack or the new."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        if not cv2.imwrite(str(tmp / "photo.png"), frame):
            raise RigError("the pack's photo layer could not be written")
        (tmp / "manifest.json").write_text(json.dumps(_rounded(data), indent=2, ensure_ascii=False), encoding="utf-8")
        try:
            load_pack(tmp)
        except PackError as exc:  # a feature (an eye, the open mouth) would leave the frame
            raise RigError("the face is too close to the photo's edge to animate; use a photo with room around the face") from exc
        old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_pack(image: bytes, out_dir: Path, points: dict[str, tuple[float, float]] | None = None) -> Path:
    """Photo bytes (JPEG/PNG/WebP) -> an avatar pack folder (manifest + layers) written atomically; returns out_dir.

    points=None: landmarks found with mediapipe; no face -> RigError. points given: MANUAL_POINTS in
    photo pixels. A bad, undecodable or too small image -> RigError with a one-line message.
    """
    out_dir = Path(out_dir)
    picture = decode(image)
    h, w = picture.shape[:2]
    if points is None:
        face = find_face(picture)
        if face is None:
            raise RigError("no face found in the photo; place the points by hand")
    else:
        face = face_from_points(points, (w, h))
    at = place((w, h), face)
    frame = compose(picture, at)
    _write(out_dir, frame, manifest(face, at, frame, out_dir.name))
    return out_dir
