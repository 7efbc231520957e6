"""The default host: its pack, idle motion, lip-sync and rendered pixels."""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from avatar.host.lips import (
    REST,
    VISEMES,
    MouthShape,
    VisemeTrack,
    drive,
    mouth_openness,
    nod_after,
    syllable_visemes,
)
from avatar.host.motion import Motion
from avatar.host.pack import HostPack, PackError, load_pack
from avatar.host.renderer import HostRenderer
from avatar.voice.base import Mark
from script_gen.script import Line
from studio.clock import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from studio.timeline import LEAD_IN, SegmentPlan, SpokenLine, Timeline

DEFAULT = Path(__file__).resolve().parent.parent / "assets" / "hosts" / "default"


@pytest.fixture(scope="module")
def pack() -> HostPack:
    return load_pack(DEFAULT)


@pytest.fixture(scope="module")
def r720(pack: HostPack) -> HostRenderer:
    return HostRenderer(pack, 1280, 720, seed=0)


def box(center: tuple[float, float], half_w: float, half_h: float, scale: float = 1.0) -> tuple[slice, slice]:
    x, y = center
    return (slice(int((y - half_h) * scale), int((y + half_h) * scale)),
            slice(int((x - half_w) * scale), int((x + half_w) * scale)))


# -- pack -------------------------------------------------------------------------------------


def test_default_pack_loads_with_layers_and_rig_in_frame(pack: HostPack) -> None:
    assert pack.size == (1280, 720)
    assert pack.background.shape == (720, 1280, 3)
    assert pack.body.shape == pack.head.shape == (720, 1280, 4)
    x0, y0, x1, y1 = pack.rig.face_box
    for eye in (pack.rig.eye_left, pack.rig.eye_right):
        assert x0 < eye.center[0] < x1 and y0 < eye.center[1] < y1
    assert pack.rig.eye_left.center[0] < pack.rig.eye_right.center[0]
    # the head sits centre-left: face centred near 0.36 W, hair top near 0.10 H, chin near 0.50 H
    ys, xs = np.nonzero(pack.head[..., 3] > 128)
    assert abs((x0 + x1) / 2 / 1280 - 0.36) < 0.02
    assert abs(ys.min() / 720 - 0.10) < 0.02
    assert abs(pack.rig.jaw[1] / 720 - 0.50) < 0.02
    # nothing of the host in the right 32% (the product card's side)
    assert not pack.body[:, int(0.68 * 1280) :, 3].any() and not pack.head[:, int(0.68 * 1280) :, 3].any()


def copy_pack(tmp_path: Path) -> Path:
    dst = tmp_path / "pack"
    shutil.copytree(DEFAULT, dst)
    return dst


def edit_manifest(folder: Path, edit) -> None:
    file = folder / "manifest.json"
    data = json.loads(file.read_text())
    edit(data)
    file.write_text(json.dumps(data))


def test_missing_layer_is_named(tmp_path: Path) -> None:
    folder = copy_pack(tmp_path)
    (folder / "head.png").unlink()
    with pytest.raises(PackError) as err:
        load_pack(folder)
    assert str(err.value) == f"{folder / 'head.png'}: layers.head: file missing"


def test_missing_manifest_is_named(tmp_path: Path) -> None:
    folder = copy_pack(tmp_path)
    (folder / "manifest.json").unlink()
    with pytest.raises(PackError, match=r"manifest\.json: missing"):
        load_pack(folder)


def test_rig_point_outside_the_frame_names_the_field(tmp_path: Path) -> None:
    folder = copy_pack(tmp_path)
    edit_manifest(folder, lambda d: d["rig"]["eye_left"].update(center=[1300, 240]))
    with pytest.raises(PackError) as err:
        load_pack(folder)
    message = str(err.value)
    assert message.startswith(f"{folder / 'manifest.json'}: rig.eye_left.center: ")
    assert "outside the 1280x720 frame" in message and "\n" not in message


def test_missing_rig_point_names_the_field(tmp_path: Path) -> None:
    folder = copy_pack(tmp_path)
    edit_manifest(folder, lambda d: d["rig"].pop("jaw"))
    with pytest.raises(PackError, match=r"manifest\.json: rig\.jaw: missing$"):
        load_pack(folder)


def test_non_numeric_mouth_width_names_the_field(tmp_path: Path) -> None:
    folder = copy_pack(tmp_path)
    edit_manifest(folder, lambda d: d["rig"]["mouth"].update(width="wide"))
    with pytest.raises(PackError, match=r"rig\.mouth\.width: expected a number, got 'wide'"):
        load_pack(folder)


def test_wrong_mode_layer_is_rejected(tmp_path: Path) -> None:
    folder = copy_pack(tmp_path)
    rgb = cv2.imread(str(folder / "body.png"), cv2.IMREAD_COLOR)
    cv2.imwrite(str(folder / "body.png"), rgb)
    with pytest.raises(PackError, match=r"body\.png: layers\.body: must be 8-bit RGBA, got uint8 with 3 channel"):
        load_pack(folder)


def test_unreadable_layer_is_rejected(tmp_path: Path) -> None:
    folder = copy_pack(tmp_path)
    (folder / "background.png").write_bytes(b"not a png")
    with pytest.raises(PackError, match=r"background\.png: layers\.background: unreadable as an image"):
        load_pack(folder)


def test_bad_palette_colour_names_the_field(tmp_path: Path) -> None:
    folder = copy_pack(tmp_path)
    edit_manifest(folder, lambda d: d["palette"].update(lips="red"))
    with pytest.raises(PackError, match=r"palette\.lips: expected a colour"):
        load_pack(folder)


# -- renderer -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_render_shape_and_dtype(pack: HostPack, size: tuple[int, int]) -> None:
    r = HostRenderer(pack, *size)
    a, b = r.render(0, 0.0), r.render(0, 0.0)
    assert a.shape == (size[1], size[0], 3) and a.dtype == np.uint8
    assert a is not b and np.array_equal(a, b)
    a[:] = 0  # a new array each call: the caller may draw on it
    assert r.render(0, 0.0).any()


def test_mouth_opens_and_closed_mouth_is_repeatable(pack: HostPack, r720: HostRenderer) -> None:
    rig = pack.rig
    mouth = box(rig.mouth_center, rig.mouth_width * 0.6, rig.mouth_max_open * 1.2)
    closed, opened = r720.render(40, 0.0), r720.render(40, 1.0)
    diff = np.abs(closed[mouth].astype(int) - opened[mouth].astype(int)).max(axis=2)
    assert (diff > 40).sum() > 150  # a dark cavity and teeth where the lips met
    # a dark cavity appears between the lips; shut lips have none
    dark = lambda picture: int((picture[mouth].max(axis=2) < 85).sum())
    assert dark(closed) == 0 and dark(opened) > 100
    same_pose = HostRenderer(pack, 1280, 720, seed=0).render(40, 0.0)
    assert np.array_equal(closed, same_pose)
    # away from the face nothing depends on the mouth
    assert np.array_equal(closed[:, :300], opened[:, :300])


def sclera_pixels(picture: np.ndarray, pack: HostPack) -> int:
    """Bright, near-white pixels inside both eye boxes: the whites of open eyes."""
    count = 0
    for eye in (pack.rig.eye_left, pack.rig.eye_right):
        region = picture[box(eye.center, eye.width / 2, eye.height / 2)]
        count += int((region.min(axis=2) > 215).sum())
    return count


@pytest.fixture(scope="module")
def minute(pack: HostPack, r720: HostRenderer) -> dict[str, np.ndarray]:
    """60 s of silent frames at 720p: sclera pixels per frame, changed pixels from the previous frame."""
    sclera, changed = [], []
    right = int(0.68 * 1280)
    card_side = r720.render(0, 0.0)[:, right:]
    prev = None
    for n in range(60 * FPS):
        picture = r720.render(n, 0.0)
        assert np.array_equal(picture[:, right:], card_side)  # the host never reaches the card's side
        sclera.append(sclera_pixels(picture, pack))
        changed.append(-1 if prev is None else int(np.count_nonzero(picture != prev)))
        prev = picture
    return {"sclera": np.array(sclera), "changed": np.array(changed)}


def test_eyes_close_sometimes_in_ten_seconds(minute: dict[str, np.ndarray]) -> None:
    sclera = minute["sclera"][: 10 * FPS]
    open_level = np.median(sclera)
    assert open_level > 50  # open eyes show their whites most of the time
    assert (sclera < 0.1 * open_level).sum() >= 2  # and close (whites gone) at least once


def test_blinks_per_minute_in_natural_range(minute: dict[str, np.ndarray]) -> None:
    closed = minute["sclera"] < 0.1 * np.median(minute["sclera"])
    blinks = int(np.sum(closed[1:] & ~closed[:-1]) + closed[0])
    assert 8 <= blinks <= 30
    # each closure is short: 1-3 fully closed frames
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate(([0], closed.astype(int), [0])))))[::2]
    assert runs.max() <= 3


def test_never_a_still_picture(minute: dict[str, np.ndarray]) -> None:
    assert minute["changed"][1:].min() > 0


def test_gaze_turns_the_eyes_toward_the_card(pack: HostPack, r720: HostRenderer) -> None:
    eye = pack.rig.eye_right
    region = box(eye.center, eye.width * 0.8, eye.height)

    def iris_x(picture: np.ndarray) -> float:
        dark = picture[region].max(axis=2) < 90
        return float(np.nonzero(dark)[1].mean())

    frame = next(n for n in range(200) if r720.motion.pose(n).blink == 0)
    assert iris_x(r720.render(frame, 0.0, 1.0)) > iris_x(r720.render(frame, 0.0, 0.0)) + 3


# -- lips ---------------------------------------------------------------------------------------


def tone(seconds: float, amplitude: float = 0.3, hz: float = 220.0) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def test_silence_keeps_the_mouth_shut_exactly() -> None:
    out = mouth_openness(np.zeros(5 * SAMPLE_RATE, np.int16), 5 * FPS)
    assert out.dtype == np.float32 and out.shape == (5 * FPS,)
    assert np.all(out == 0.0)
    hiss = (np.random.default_rng(0).normal(0, 0.002 * 32767, 5 * SAMPLE_RATE)).astype(np.int16)  # about -54 dBFS
    assert np.all(mouth_openness(hiss, 5 * FPS) == 0.0)


@pytest.mark.parametrize("offset", [0, 700])
def test_tone_burst_opens_the_mouth_only_during_the_burst(offset: int) -> None:
    pcm = np.zeros(4 * SAMPLE_RATE, np.int16)
    start = 30 * SAMPLES_PER_FRAME + offset
    burst = tone(1.0)
    pcm[start : start + burst.size] = burst
    end_frame = (start + burst.size - 1) // SAMPLES_PER_FRAME  # the last frame holding burst samples
    out = mouth_openness(pcm, 4 * FPS)
    opened = np.flatnonzero(out > 0)
    assert opened[0] == 30  # the frame in which the burst starts: no lag, no lead
    assert np.all(out[30 : end_frame] > 0.5)
    assert opened[-1] <= end_frame + 1 and np.all(out[end_frame + 2 :] == 0.0)


def test_syllables_open_and_close_the_mouth_in_step() -> None:
    """Four 120 ms syllables with 120 ms gaps: open on syllable frames, shut in the gaps within a frame."""
    pcm = np.zeros(2 * SAMPLE_RATE, np.int16)
    syllable = tone(0.12, 0.25)
    starts = [10 + 6 * i for i in range(4)]
    for f in starts:
        pcm[f * SAMPLES_PER_FRAME : f * SAMPLES_PER_FRAME + syllable.size] = syllable
    out = mouth_openness(pcm, 2 * FPS)
    for f in starts:
        assert out[f - 1] == 0.0 and np.all(out[f : f + 3] > 0.5)
        assert np.all(out[f + 3 : f + 6] == 0.0)


def test_quieter_syllables_open_less() -> None:
    pcm = np.concatenate([tone(0.4, 0.3), tone(0.4, 0.03), np.zeros(SAMPLE_RATE, np.int16)])
    out = mouth_openness(pcm, 20)
    assert out[3] > 0.7 and 0 < out[14] < out[3] - 0.3  # 20 dB quieter, same speaker


# -- motion -------------------------------------------------------------------------------------


def test_motion_random_access_equals_sequential() -> None:
    frames = list(range(0, 4 * 60 * FPS, 7))
    sequential = [Motion(3).pose(n) for n in frames]
    shuffled = frames[:]
    random.Random(1).shuffle(shuffled)
    m = Motion(3)
    by_frame = {n: m.pose(n) for n in shuffled}
    assert [by_frame[n] for n in frames] == sequential


def test_different_seeds_move_differently() -> None:
    a = [Motion(0).pose(n) for n in range(1500)]
    b = [Motion(1).pose(n) for n in range(1500)]
    assert [p.blink for p in a] != [p.blink for p in b]
    assert max(abs(p.head_dx - q.head_dx) for p, q in zip(a, b)) > 1.0


def test_motion_stays_in_range_and_breathes_at_a_quarter_hertz() -> None:
    poses = [Motion(5).pose(n) for n in range(0, 3 * 60 * FPS)]
    assert all(-3 <= p.head_angle <= 3 and 0 <= p.blink <= 1 and -1 <= p.gaze_x <= 1 for p in poses)
    breath = np.array([p.breath for p in poses])
    rises = np.sum((breath[1:] > 0) & (breath[:-1] <= 0))
    assert 40 <= rises <= 50  # 0.25 Hz +-5% over 180 s: about 45 breaths
    blink = np.array([p.blink for p in poses])
    starts = np.flatnonzero((blink[1:] > 0) & (blink[:-1] == 0)) + 1
    gaps = np.diff(starts) / FPS
    singles = gaps[gaps > 1.0]  # gaps of a double blink are under half a second
    assert singles.min() >= 1.5 and singles.max() <= 6.0


# -- visemes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("syllable", "first", "main"), [
    ("ba1", "closed", "a"), ("ma3", "closed", "a"), ("pu4", "closed", "u"), ("da4", "a", "a"), ("wo3", "o", "o"),
    ("qu4", "v", "v"), ("lv4", "v", "v"), ("xi1", "i", "i"), ("shi4", "buzz", "buzz"), ("ge4", "e", "e"),
    ("fa1", "f", "a"), ("jia1", "i", "a"),
])
def test_pinyin_syllables_map_to_visemes(syllable: str, first: str, main: str) -> None:
    parts = syllable_visemes(syllable)
    assert parts[0][1] == first
    assert max(parts, key=lambda p: p[0])[1] == main
    assert abs(sum(w for w, _ in parts) - 1.0) < 1e-9


def test_viseme_shapes_open_round_and_spread_as_described() -> None:
    assert VISEMES["a"].open > VISEMES["o"].open > VISEMES["u"].open > VISEMES["closed"].open == 0
    assert VISEMES["o"].wide < 0 and VISEMES["u"].wide < 0 and VISEMES["v"].wide < 0
    assert VISEMES["i"].wide > 0 and VISEMES["e"].wide > 0


def test_track_follows_the_marks_and_rests_outside_the_line() -> None:
    """爸妈大 (ba ma da), one syllable per 0.2 s: lips shut at each b/m, open on each a, rest after the line."""
    step = 9600
    track = VisemeTrack("爸妈大。", (Mark(0, 0), Mark(1, step), Mark(2, 2 * step)), 3 * step)
    assert track.at(1000).open == 0.0  # b
    assert track.at(step + 1000).open == 0.0  # m
    assert track.at(step // 2).open > 0.9 and track.at(2 * step + 1000).open > 0.9  # a, and da has no closure
    assert track.at(3 * step + 10) == REST and track.at(-5000) == REST
    assert track.sentence_ends == (3 * step,)


def test_audio_is_master_over_the_words() -> None:
    assert drive(VISEMES["a"], 0.0) == REST  # silence shuts the mouth whatever the text says
    assert drive(None, 0.7) == MouthShape(0.7, 0.0)  # no marks: the level alone
    loud, soft = drive(VISEMES["a"], 1.0), drive(VISEMES["a"], 0.2)
    assert loud.open == 1.0 and 0 < soft.open < loud.open
    assert drive(VISEMES["closed"], 1.0).open == 0.0  # b, p, m press the lips even while voiced


def test_nod_rises_and_settles() -> None:
    curve = [nod_after(a) for a in range(-2, 25)]
    assert curve[0] == curve[1] == 0.0 and max(curve) > 0.95 and curve[-1] == 0.0


def lips_width(picture: np.ndarray, pack: HostPack) -> int:
    """Columns of the mouth box holding lip-coloured pixels."""
    region = picture[box(pack.rig.mouth_center, pack.rig.mouth_width, pack.rig.mouth_max_open * 1.2)].astype(int)
    lip = (region[..., 2] - region[..., 1] > 60) & (region[..., 2] > 150)
    return int(lip.any(axis=0).sum())


def test_spread_and_rounded_lips_change_the_mouth_width(pack: HostPack, r720: HostRenderer) -> None:
    neutral = lips_width(r720.render(40, 0.5), pack)
    assert lips_width(r720.render(40, 0.5, wide=1.0), pack) > neutral + 3
    assert lips_width(r720.render(40, 0.5, wide=-1.0), pack) < neutral - 6


def test_a_sentence_end_nod_lowers_the_face(pack: HostPack, r720: HostRenderer) -> None:
    x0, y0, x1, y1 = (int(v) for v in pack.rig.face_box)
    face = (slice(y0, y1), slice(x0, x1))
    gray = lambda picture: cv2.cvtColor(picture[face], cv2.COLOR_BGR2GRAY).astype(np.float32)
    (dx, dy), _ = cv2.phaseCorrelate(gray(r720.render(40, 0.0)), gray(r720.render(40, 0.0, nod=1.0)))
    assert dy > 2.5 and abs(dx) < 1  # the face dips a few pixels, straight down


def test_show_timeline_shapes_lips_in_lines_and_nods_at_their_ends() -> None:
    step = 9600
    track = VisemeTrack("大家好。", (Mark(0, 0), Mark(1, step), Mark(2, 2 * step)), 3 * step)
    line = Line("大家好。", "大家好。", tuple(range(5)))
    timeline = Timeline([SegmentPlan("a", (SpokenLine(line, 3 * step, (), track),))])
    first = LEAD_IN // SAMPLES_PER_FRAME
    assert timeline.viseme(first - 3) == REST  # before the line: at rest
    assert timeline.viseme(first + 2).open > 0.9  # "da"
    end = (LEAD_IN + 3 * step) // SAMPLES_PER_FRAME
    assert timeline.nod(end - 1) == 0.0 and max(timeline.nod(end + k) for k in range(18)) > 0.95
