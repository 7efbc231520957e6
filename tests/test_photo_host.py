"""A photo becomes a talking host: rigging, the warped face's pixels, errors a brand sees, the preview clip.

The test photo is scikit-image's `astronaut` (tests/data/astronaut.png, copied from
skimage/data/astronaut.png): NASA's portrait of Eileen Collins, public domain.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from avatar.host.factory import make_host
from avatar.host.lips import VisemeTrack, drive, mouth_openness
from avatar.host.pack import PhotoPack, load_pack
from avatar.photo.preview import render_preview
from avatar.photo.renderer import PhotoHostRenderer
from avatar.photo.rig import MANUAL_POINTS, RigError, build_pack, decode, find_face
from avatar.voice.base import VoiceSettings
from avatar.voice.offline import OfflineEngine
from studio.clock import FPS, SAMPLES_PER_FRAME

ASTRONAUT = Path(__file__).parent / "data" / "astronaut.png"
# the astronaut's face in the 512x512 photo, hairline to chin and cheek to cheek (placed by eye)
FACE = (178, 68, 274, 182)
# her features, placed by hand (image left and right)
POINTS = {"left_eye": (204, 102), "right_eye": (247, 104), "nose": (223, 130), "mouth_left": (202, 139),
          "mouth_right": (245, 141), "upper_lip": (224, 140), "lower_lip": (223, 155), "chin": (221, 177)}


@pytest.fixture(scope="module")
def photo() -> bytes:
    return ASTRONAUT.read_bytes()


@pytest.fixture(scope="module")
def pack(photo: bytes, tmp_path_factory: pytest.TempPathFactory) -> PhotoPack:
    folder = build_pack(photo, tmp_path_factory.mktemp("packs") / "astronaut")
    loaded = load_pack(folder)
    assert isinstance(loaded, PhotoPack)
    return loaded


@pytest.fixture(scope="module")
def host(pack: PhotoPack) -> PhotoHostRenderer:
    h = make_host(pack, 1280, 720, seed=0)
    assert isinstance(h, PhotoHostRenderer)
    return h


def mouth_box(pack: PhotoPack, margin: float = 14) -> tuple[slice, slice]:
    """The mouth and the chin's travel, with room for the head's sway."""
    (lx, _), (rx, _) = pack.points["mouth_left"], pack.points["mouth_right"]
    top, bottom = pack.points["upper_lip"][1], pack.points["lower_lip"][1] + pack.rig.mouth_max_open
    return slice(int(top - margin), int(bottom + margin)), slice(int(lx - margin), int(rx + margin))


def dark(picture: np.ndarray, box: tuple[slice, slice]) -> int:
    """Pixels dark enough to be the inside of an open mouth."""
    return int((picture[box].mean(axis=2) < 60).sum())


# -- rigging --------------------------------------------------------------------------------------


def test_rigging_finds_the_face(photo: bytes) -> None:
    face = find_face(decode(photo))
    assert face is not None and face.source == "mediapipe"
    x0, y0, x1, y1 = FACE
    for name, (x, y) in face.points.items():
        assert x0 <= x <= x1 and y0 <= y <= y1, name
        hx, hy = POINTS[name]
        assert abs(x - hx) < 6 and abs(y - hy) < 6, name  # within a few pixels of where a person puts them
    (lw, lh), (rw, rh) = face.eye_sizes
    assert 12 < lw < 26 and 12 < rw < 26 and 3 < lh < 12 and 3 < rh < 12


def test_pack_places_the_face_like_the_default_host(pack: PhotoPack) -> None:
    assert pack.size == (1280, 720) and pack.photo.shape == (720, 1280, 3)
    x0, y0, x1, y1 = pack.rig.face_box
    for name, (x, y) in pack.points.items():
        assert x0 - 1 <= x <= x1 + 1 and y0 - 1 <= y <= y1 + 1, name
    assert abs((x0 + x1) / 2 - 461) < 40  # centre-left, where the default host stands: the card's side stays free
    # the photo layer holds her face at the rig: skin between the eyes and the mouth, darker pupils at the eyes
    nose = pack.photo[int(pack.points["nose"][1]) - 3, int(pack.points["nose"][0])]
    assert nose.astype(int).sum() > 3 * 140
    for eye in (pack.rig.eye_left, pack.rig.eye_right):
        x, y = (int(v) for v in eye.center)
        assert pack.photo[y - 3 : y + 4, x - 3 : x + 4].min() < 70


def test_manual_points_build_a_pack(photo: bytes, tmp_path: Path) -> None:
    folder = build_pack(photo, tmp_path / "by-hand", points=POINTS)
    pack = load_pack(folder)
    assert isinstance(pack, PhotoPack)
    assert json.loads((folder / "manifest.json").read_text())["rig"]["rigged_by"] == "hand"
    p = pack.points
    assert p["left_eye"][0] < p["nose"][0] < p["right_eye"][0] and p["nose"][1] < p["upper_lip"][1] < p["chin"][1]
    picture = make_host(pack, 1280, 720).render(0, 1.0)  # it talks
    assert dark(picture, mouth_box(pack)) > 100


def test_a_photo_without_a_face_gets_the_clear_error(tmp_path: Path) -> None:
    """A sky-and-hills landscape: no face for the detector to find, so the brand is asked for points."""
    h, w = 480, 640
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    sky = (1 - y) * np.array([235, 190, 120], np.float32) + y * np.array([250, 235, 210], np.float32)
    picture = np.broadcast_to(sky, (h, w, 3)).copy()
    xs = np.arange(w)
    hills = (300 + 40 * np.sin(xs / 70.0) + 25 * np.sin(xs / 23.0)).astype(int)
    for x, top in zip(xs, hills):
        picture[top:, x] = (60, 140 - (top - 260) // 3, 70)
    data = cv2.imencode(".jpg", picture.astype(np.uint8))[1].tobytes()
    with pytest.raises(RigError) as err:
        build_pack(data, tmp_path / "landscape")
    assert str(err.value) == "no face found in the photo; place the points by hand"
    assert not (tmp_path / "landscape").exists() and not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.parametrize(("data", "message"), [
    (b"", "the photo is empty"),
    (b"GIF89a this is not an image at all", "could not be read as an image (use a JPEG, PNG or WebP file)"),
    (cv2.imencode(".png", np.full((60, 90, 3), 128, np.uint8))[1].tobytes(), "too small (90x60)"),
])
def test_a_bad_image_gets_a_clear_error(data: bytes, message: str, tmp_path: Path) -> None:
    with pytest.raises(RigError) as err:
        build_pack(data, tmp_path / "bad")
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: p.pop("chin"), "point 'chin' is missing"),
    (lambda p: p.update(nose=(600, 20)), "point 'nose' (600, 20) is outside the 512x512 photo"),
    (lambda p: p.update(nose="middle"), "point 'nose' must be [x, y] in photo pixels"),
    (lambda p: p.update(left_eye=(260, 102)), "point 'left_eye' must be left of 'right_eye'"),
])
def test_bad_manual_points_are_named(photo: bytes, tmp_path: Path, edit, message: str) -> None:
    points = dict(POINTS)
    edit(points)
    with pytest.raises(RigError) as err:
        build_pack(photo, tmp_path / "bad", points=points)
    assert message in str(err.value)
    assert set(MANUAL_POINTS) == set(POINTS)


def test_webp_and_jpeg_photos_rig_too(photo: bytes, tmp_path: Path) -> None:
    picture = cv2.imread(str(ASTRONAUT))
    for ext in (".webp", ".jpg"):
        folder = build_pack(cv2.imencode(ext, picture)[1].tobytes(), tmp_path / ext[1:])
        assert load_pack(folder).kind == "photo"


def test_rebuilding_replaces_the_pack_whole(photo: bytes, tmp_path: Path) -> None:
    folder = build_pack(photo, tmp_path / "host")
    first = (folder / "manifest.json").read_text()
    build_pack(photo, folder, points=POINTS)
    assert (folder / "manifest.json").read_text() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["host"]  # no temporary folders left behind


# -- the talking photo ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spoken(pack: PhotoPack, host: PhotoHostRenderer) -> dict[str, np.ndarray]:
    """5 s: 1 s of silence, a line in the offline voice, silence after; rendered frames' mouth darkness."""
    text = "大家好，欢迎来到直播间！"
    speech = asyncio.run(OfflineEngine().synthesize(text, VoiceSettings()))
    lead = FPS * SAMPLES_PER_FRAME
    frames = 5 * FPS
    audio = np.zeros(frames * SAMPLES_PER_FRAME, np.int16)
    audio[lead : lead + speech.samples] = speech.pcm
    track = VisemeTrack.of(text, speech)
    opening = mouth_openness(audio, frames)
    box = mouth_box(pack)
    rest = dark(pack.photo, box)
    measure = []
    for n in range(frames):
        lips = drive(track.at(n * SAMPLES_PER_FRAME + SAMPLES_PER_FRAME // 2 - lead), float(opening[n]))
        measure.append(dark(host.render(n, lips.open, wide=lips.wide), box) - rest)
    first, last = lead // SAMPLES_PER_FRAME, (lead + speech.samples) // SAMPLES_PER_FRAME
    speaking = np.zeros(frames, bool)
    speaking[first + 1 : last - 1] = True
    silent = np.ones(frames, bool)
    silent[first - 1 : last + 2] = False
    return {"dark": np.array(measure), "speaking": speaking, "silent": silent & (opening == 0)}


def test_mouth_moves_with_speech(spoken: dict[str, np.ndarray]) -> None:
    talking = spoken["dark"][spoken["speaking"]]
    assert (talking > 40).mean() > 0.6  # a dark opening on most frames of speech
    assert talking.std() > 20  # and it moves with the syllables, not held open


def test_mouth_rests_closed_in_silence(spoken: dict[str, np.ndarray]) -> None:
    quiet = spoken["dark"][spoken["silent"]]
    assert quiet.size > 40
    assert (np.abs(quiet) <= 5).mean() >= 0.95  # as photographed: no opening


def test_no_seam_at_the_warp_boundary(pack: PhotoPack, host: PhotoHostRenderer) -> None:
    """Across the warped region's edge, neighbouring pixels differ as much as they do in the photo, no more."""
    frame = next(n for n in range(300) if host.motion.pose(n).blink == 1.0)
    picture = host.render(frame, 1.0, gaze=1.0, wide=-1.0, nod=1.0).astype(np.int16)
    still = pack.photo.astype(np.int16)
    x0, y0, x1, y1 = host.region
    steps = []  # (inside pixel, outside neighbour) pairs along the region's four edges
    if y0 > 0:
        steps.append((picture[y0, x0:x1] - picture[y0 - 1, x0:x1], still[y0, x0:x1] - still[y0 - 1, x0:x1]))
    if y1 < 720:
        steps.append((picture[y1 - 1, x0:x1] - picture[y1, x0:x1], still[y1 - 1, x0:x1] - still[y1, x0:x1]))
    if x0 > 0:
        steps.append((picture[y0:y1, x0] - picture[y0:y1, x0 - 1], still[y0:y1, x0] - still[y0:y1, x0 - 1]))
    if x1 < 1280:
        steps.append((picture[y0:y1, x1 - 1] - picture[y0:y1, x1], still[y0:y1, x1 - 1] - still[y0:y1, x1]))
    assert len(steps) >= 2
    jump = np.concatenate([np.abs(a - b).reshape(-1) for a, b in steps])
    assert jump.mean() < 1.5 and np.percentile(jump, 99) < 12
    # the warp did move the face: the mouth is open and the head has moved
    assert dark(picture.astype(np.uint8), mouth_box(pack)) - dark(pack.photo, mouth_box(pack)) > 100


def test_blinks_close_both_eyes(pack: PhotoPack, host: PhotoHostRenderer) -> None:
    shut = next(n for n in range(300) if host.motion.pose(n).blink == 1.0)
    opened = next(n for n in range(shut - 20, shut) if host.motion.pose(n).blink == 0.0)
    for eye in (pack.rig.eye_left, pack.rig.eye_right):
        x, y = eye.center
        box = (slice(int(y - eye.height), int(y + eye.height)), slice(int(x - eye.width / 2), int(x + eye.width / 2)))
        open_eye = int((host.render(opened, 0.0)[box].max(axis=2) < 75).sum())  # the pupil's dark pixels
        shut_eye = int((host.render(shut, 0.0)[box].max(axis=2) < 75).sum())
        assert open_eye > 10 and shut_eye < open_eye / 4


def test_frames_outside_the_face_are_the_photo(pack: PhotoPack, host: PhotoHostRenderer) -> None:
    picture = host.render(7, 0.8, gaze=0.5)
    assert np.array_equal(picture[:, 900:], pack.photo[:, 900:])  # the card's side of the frame is untouched


def test_1080p_renders_the_same_host(pack: PhotoPack) -> None:
    big = make_host(pack, 1920, 1080).render(3, 0.5)
    small = make_host(pack, 1280, 720).render(3, 0.5)
    assert big.shape == (1080, 1920, 3)
    down = cv2.resize(big, (1280, 720), interpolation=cv2.INTER_AREA).astype(int)
    assert np.abs(down - small).mean() < 4


# -- the preview ------------------------------------------------------------------------------------


def test_preview_is_a_five_second_h264_aac_clip_that_talks(pack: PhotoPack, tmp_path: Path) -> None:
    out = tmp_path / "preview.mp4"
    render_preview(pack.path, out)
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.name, a.codec_context.name) == ("h264", "aac")
        assert (v.width, v.height) == (1280, 720)
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(v)]
    with av.open(str(out)) as c:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    assert len(frames) == 5 * FPS and abs(pcm.size / 48_000 - 5.0) < 0.1
    assert np.sqrt(np.mean(np.square(pcm[48_000:96_000], dtype=np.float64))) > 0.01  # the line is heard
    box = mouth_box(pack)
    darkness = np.array([dark(f, box) for f in frames])
    assert darkness[:8].max() - darkness[:8].min() < 30  # idle before the line
    assert darkness.max() - np.median(darkness[:8]) > 100  # the mouth opens as it speaks
