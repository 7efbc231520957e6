"""Brand hosts through the studio, as a brand uses them: a photo in, a talking preview out, its streams drawn with it."""
from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import aiohttp
import av
import cv2
import numpy as np
import pytest
import yaml
from test_brand import brand_server, call
from test_server import SHOW

from avatar.host.factory import make_host
from avatar.host.pack import load_pack
from script_gen.rundown import parse_rundown
from studio.render import ASSETS
from studio.server import Config, Studio

DATA = Path(__file__).parent / "data"
ASTRONAUT = DATA / "astronaut.png"  # scikit-image's astronaut portrait (public domain)
# where the astronaut's features are in the 512x512 photo (image's left and right), for hand-placed points
POINTS = {"left_eye": [204.2, 102.3], "right_eye": [246.4, 104.6], "nose": [223.4, 130.0], "mouth_left": [201.8, 139.2],
          "mouth_right": [245.0, 141.0], "upper_lip": [223.6, 140.5], "lower_lip": [222.7, 154.6], "chin": [221.3, 177.4]}


def out_of_focus() -> bytes:
    """The astronaut badly out of focus: a person is there, but no face detector finds one."""
    blurred = cv2.GaussianBlur(cv2.imread(str(ASTRONAUT)), (0, 0), 12)
    return cv2.imencode(".png", blurred)[1].tobytes()


def photo_form(data: bytes, filename: str = "me.png", **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("photo", data, filename=filename, content_type="image/png")
    for key, value in fields.items():
        form.add_field(key, value)
    return form


async def post(http, url: str, headers, **kw) -> tuple[int, dict]:
    async with http.post(url, headers=headers, **kw) as r:
        return r.status, await r.json()


def leftovers(data_dir: Path) -> list[str]:
    """The files under the hosts folder (but the active-host records) and any temp folder: what a failed upload must not leave."""
    root = data_dir / "hosts"
    found = root.rglob("*") if root.exists() else ()
    return sorted(str(p.relative_to(root)) for p in found
                  if (p.is_file() and p.name != "active.json") or p.name.startswith("."))


def check_preview(mp4: bytes) -> None:
    """H.264 (Main/High, yuv420p) + AAC, ~5 s, moov before the media: what Chromium plays from the first bytes."""
    with av.open(io.BytesIO(mp4)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.name, a.codec_context.name) == ("h264", "aac")
        assert v.codec_context.profile in ("Main", "High") and v.codec_context.pix_fmt == "yuv420p"
        assert 4.5 <= float(c.duration / av.time_base) <= 5.5
    with av.open(io.BytesIO(mp4)) as c:
        frames = [f.to_ndarray(format="gray") for f in c.decode(video=0)]
    with av.open(io.BytesIO(mp4)) as c:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    assert len(frames) >= 110 and float(np.std(frames[0])) > 20  # a picture, not a blank
    assert float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64)))) > 0.01  # the host speaks
    boxes, at = [], 0
    while at + 8 <= len(mp4) and len(boxes) < 8:
        size, kind = int.from_bytes(mp4[at:at + 4], "big"), mp4[at + 4:at + 8].decode("latin-1")
        boxes.append(kind)
        if size < 8:
            break
        at += size
    assert "moov" in boxes and ("mdat" not in boxes or boxes.index("moov") < boxes.index("mdat")), boxes


@pytest.fixture(scope="module")
def hosted(tmp_path_factory):
    """A studio data folder in which brand acme uploaded the astronaut (through the API): (data_dir, answer)."""
    data = tmp_path_factory.mktemp("hosts") / "data"

    async def main():
        async with brand_server(data) as (base, http, auth):
            return await post(http, f"{base}/api/hosts", auth("brand", "acme"),
                              data=photo_form(ASTRONAUT.read_bytes(), "astronaut.png"))

    status, answer = asyncio.run(main())
    assert status == 201, answer
    return data, answer["host"]


def test_upload_gives_a_host_whose_preview_plays_with_sound(hosted):
    data, host = hosted

    async def main():
        async with brand_server(data) as (base, http, auth):  # a restarted server: hosts live on disk
            acme = auth("brand", "acme")
            assert (host["name"], host["rigged"], host["active"], (host["width"], host["height"])) == (
                "astronaut", "auto", True, (512, 512))
            assert host["preview_url"] == f"/api/hosts/{host['id']}/preview.mp4"
            assert await call(http, "GET", f"{base}/api/hosts", acme) == (200, [host])
            async with http.get(base + host["preview_url"], headers=acme) as r:
                assert (r.status, r.content_type) == (200, "video/mp4")
                check_preview(await r.read())
            token = acme["Authorization"].split()[1]  # a <video> cannot send headers: ?token= instead
            async with http.get(f"{base}{host['preview_url']}?token={token}", headers={"Range": "bytes=0-99"}) as r:
                assert (r.status, len(await r.read())) == (206, 100)
            async with http.get(base + host["photo_url"], headers=acme) as r:
                assert (r.status, r.content_type) == (200, "image/png")
                photo = cv2.imdecode(np.frombuffer(await r.read(), np.uint8), cv2.IMREAD_COLOR)
            assert np.abs(photo.astype(int) - cv2.imread(str(ASTRONAUT)).astype(int)).max() == 0  # lossless

    asyncio.run(main())


def test_other_brands_and_other_roles_cannot_see_use_or_delete_a_host(hosted):
    data, host = hosted
    before = leftovers(data)

    async def main():
        async with brand_server(data) as (base, http, auth):
            rival = auth("brand", "rival")
            assert await call(http, "GET", f"{base}/api/hosts", rival) == (200, [])
            wanted = {"error": f"no host {host['id']!r}"}
            for method, path, body in [("GET", host["preview_url"], None), ("GET", host["photo_url"], None),
                                       ("DELETE", f"/api/hosts/{host['id']}", None),
                                       ("PUT", "/api/hosts/active", {"host_id": host["id"]})]:
                assert await call(http, method, base + path, rival, body) == (404, wanted), path
            for headers, status, words in [(auth("viewer", "v1"), 403, "brand"), (auth("buyer", "b1"), 403, "brand"),
                                           (None, 401, "token")]:
                for method, path, body in [("GET", "/api/hosts", None), ("GET", host["preview_url"], None),
                                           ("DELETE", f"/api/hosts/{host['id']}", None),
                                           ("PUT", "/api/hosts/active", {"host_id": None})]:
                    got, answer = await call(http, method, base + path, headers, body)
                    assert got == status and words in answer["error"], (headers, path, answer)
                got, answer = await post(http, f"{base}/api/hosts", headers, data=photo_form(ASTRONAUT.read_bytes()))
                assert got == status and words in answer["error"]
            status, listed = await call(http, "GET", f"{base}/api/hosts", auth("brand", "acme"))
            assert (status, [h["id"] for h in listed], listed[0]["active"]) == (200, [host["id"]], True)

    asyncio.run(main())
    assert leftovers(data) == before


def host_region(frame: np.ndarray, pack_dir: Path) -> tuple[slice, slice]:
    """The face box of the photo host, in the 1280x720 frame."""
    pack = load_pack(pack_dir)
    s = 1280 / pack.size[0]
    x0, y0, x1, y1 = (int(v * s) for v in pack.rig.face_box)
    return slice(max(y0, 0), min(y1, frame.shape[0])), slice(max(x0, 0), min(x1, frame.shape[1]))


def test_a_brand_stream_goes_live_drawn_with_the_brands_host(hosted, tmp_path):
    data, _ = hosted

    async def main():
        studio = Studio(Config(data_dir=data, voice_cache=tmp_path / "voice"))
        async with brand_server(data, studio):  # the server's start-up and shutdown, as in production
            ours = await studio.add_stream(parse_rundown(yaml.safe_load(SHOW), "show.yaml"), "ours", brand_id="acme")
            other = await studio.add_stream(parse_rundown(yaml.safe_load(SHOW.replace("CUP-1", "CUP-2")), "show.yaml"),
                                            "other", brand_id="rival")  # a brand with no host: the rundown's
            pack_dir = studio.host_of(ours)
            assert pack_dir is not None and pack_dir.is_relative_to(data / "hosts") and studio.host_of(other) is None
            await studio.go_live(ours)
            await ours.show.wait_first_segment(15)
            await ours.show.command("end")
            return pack_dir, ours.show.playlist

    pack_dir, playlist = asyncio.run(main())
    with av.open(str(playlist)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="bgr24")
    region = host_region(frame, pack_dir)
    photo_host = make_host(load_pack(pack_dir), 1280, 720).render(0, 0.0)
    default_host = make_host(load_pack(ASSETS / "hosts" / "default"), 1280, 720).render(0, 0.0)
    to_photo = float(np.abs(frame[region].astype(int) - photo_host[region]).mean())
    to_default = float(np.abs(frame[region].astype(int) - default_host[region]).mean())
    assert to_photo < 8 and to_photo * 4 < to_default, (to_photo, to_default)


def test_no_face_asks_for_points_and_the_same_photo_with_points_makes_a_host(tmp_path):
    data = tmp_path / "data"

    async def main():
        async with brand_server(data) as (base, http, auth):
            acme = auth("brand", "acme")
            # the photo as the request body itself (no form)
            status, answer = await post(http, f"{base}/api/hosts?name=x", {**acme, "Content-Type": "image/png"}, data=out_of_focus())
            assert status == 422 and answer["needs_points"] is True, answer
            assert answer["error"] == "no face found in the photo; place the points by hand"
            assert (answer["width"], answer["height"], answer["points"]) == (512, 512, list(POINTS))
            assert await call(http, "GET", f"{base}/api/hosts", acme) == (200, [])
            assert leftovers(data) == [f"acme/uploads/{answer['upload_id']}.png"]  # only the photo, kept
            async with http.get(base + answer["photo_url"], headers=acme) as r:
                assert (r.status, r.content_type) == (200, "image/png")
                assert cv2.imdecode(np.frombuffer(await r.read(), np.uint8), cv2.IMREAD_COLOR).shape == (512, 512, 3)
            async with http.get(base + answer["photo_url"], headers=auth("brand", "rival")) as r:
                assert r.status == 404

            # points the page would send, checked before any rigging
            for points, words in [({**POINTS, "chin": [600, 10]}, "points.chin: (600, 10) is outside the photo"),
                                  ({k: v for k, v in POINTS.items() if k != "nose"}, "points.nose: missing"),
                                  ({**POINTS, "ear": [1, 1]}, "points.ear: unknown point"),
                                  ({**POINTS, "nose": "middle"}, 'points.nose: must be [x, y] in pixels, got "middle"')]:
                status, bad = await post(http, f"{base}/api/hosts", acme, json={"upload_id": answer["upload_id"], "points": points})
                assert (status, bad["error"].startswith(words)) == (400, True), bad
            # points in the photo that make no face (eyes swapped): asked again, on the same kept photo
            swapped = {**POINTS, "left_eye": POINTS["right_eye"], "right_eye": POINTS["left_eye"]}
            status, again = await post(http, f"{base}/api/hosts", acme, json={"upload_id": answer["upload_id"], "points": swapped})
            assert status == 422 and again["needs_points"] and again["upload_id"] == answer["upload_id"], again
            assert "left_eye" in again["error"] and leftovers(data) == [f"acme/uploads/{answer['upload_id']}.png"]
            status, bad = await post(http, f"{base}/api/hosts", acme, json={"upload_id": "0123456789ab", "points": POINTS})
            assert status == 404 and "upload the photo again" in bad["error"]

            status, made = await post(http, f"{base}/api/hosts", acme,
                                      json={"upload_id": answer["upload_id"], "points": POINTS, "name": "模糊的我"})
            assert status == 201, made
            host = made["host"]
            assert (host["name"], host["rigged"], host["active"]) == ("模糊的我", "manual", True)
            async with http.get(base + host["preview_url"], headers=acme) as r:
                assert r.status == 200
                check_preview(await r.read())
            files = leftovers(data)  # the host, whole; the kept photo is used up
            assert f"acme/{host['id']}/preview.mp4" in files and all(f.startswith(f"acme/{host['id']}/") for f in files)

            # which host the brand's streams use
            assert await call(http, "PUT", f"{base}/api/hosts/active", acme, {"host_id": None}) == (200, {"host_id": None})
            assert [h["active"] for h in (await call(http, "GET", f"{base}/api/hosts", acme))[1]] == [False]
            assert await call(http, "PUT", f"{base}/api/hosts/active", acme, {"host_id": host["id"]}) == (200, {"host_id": host["id"]})
            status, bad = await call(http, "PUT", f"{base}/api/hosts/active", acme, {"host": host["id"]})
            assert status == 400 and "host_id" in bad["error"]
            assert await call(http, "DELETE", f"{base}/api/hosts/{host['id']}", acme) == (200, {"ok": True})
            assert await call(http, "GET", f"{base}/api/hosts", acme) == (200, [])
            status, _ = await call(http, "GET", base + host["preview_url"], acme)
            assert status == 404
            assert leftovers(data) == []

    asyncio.run(main())


def test_bad_uploads_are_refused_with_a_message_and_leave_nothing_behind(tmp_path):
    data = tmp_path / "data"
    astronaut = ASTRONAUT.read_bytes()
    tiny = cv2.imencode(".png", cv2.resize(cv2.imread(str(ASTRONAUT)), (200, 150)))[1].tobytes()
    wide = cv2.imencode(".png", np.full((300, 1300, 3), 128, np.uint8))[1].tobytes()

    async def main():
        async with brand_server(data) as (base, http, auth):
            acme = auth("brand", "acme")
            cases = [
                (photo_form(b""), 400, "photo: the file is empty"),
                (photo_form(b"GIF89a this is not really a picture"), 400, "photo: not an image we can read"),
                (photo_form(astronaut[: len(astronaut) // 2]), 400, "photo: not an image we can read"),
                (photo_form(tiny), 400, "photo: 200x150 is too small; the short side needs at least 256 px"),
                (photo_form(wide), 400, "photo: 1300x300 is too long and narrow"),
                (photo_form(astronaut, points="{nope"), 400, "points: must be JSON"),
                (photo_form(astronaut, name="名" * 41), 400, "name: at most 40 characters"),
                (photo_form(astronaut + b"\0" * (10 * 2**20)), 413, "photo: the file is over 10 MB; the limit is 10 MB"),
            ]
            for form, status, words in cases:
                got, answer = await post(http, f"{base}/api/hosts", acme, data=form)
                assert (got, answer["error"].startswith(words)) == (status, True), (words, answer)
            form = aiohttp.FormData()
            form.add_field("picture", astronaut, filename="a.png")
            got, answer = await post(http, f"{base}/api/hosts", acme, data=form)
            assert got == 400 and answer["error"].startswith("picture: unknown field")
            got, answer = await post(http, f"{base}/api/hosts", acme, json={"name": "x"})
            assert got == 400 and "photo: the photo is required" in answer["error"]

            async def chunks():  # a raw body with no length given: refused once it passes the limit
                for _ in range(11):
                    yield b"\0" * 2**20

            got, answer = await post(http, f"{base}/api/hosts", {**acme, "Content-Type": "image/png"}, data=chunks())
            assert got == 413 and "10 MB" in answer["error"]
            got, answer = await post(http, f"{base}/api/hosts", {**acme, "Content-Type": "text/plain"}, data=b"hello")
            assert got == 400 and "multipart/form-data" in answer["error"]
            assert await call(http, "GET", f"{base}/api/hosts", acme) == (200, [])
        assert leftovers(data) == []

    asyncio.run(main())


def test_phone_photos_are_stood_upright_and_big_ones_scaled_down_with_their_points():
    from PIL import Image

    from studio.host_api import HostError, normalise_photo, parse_points

    # a phone's portrait: stored landscape, with EXIF orientation 6 (rotate 90 degrees clockwise to view)
    sideways = Image.new("RGB", (600, 400), (200, 180, 160))
    sideways.paste((20, 20, 20), (0, 0, 60, 400))  # a dark band on the stored left: the top once upright
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    sideways.save(buf, "JPEG", exif=exif.tobytes())
    photo = normalise_photo(buf.getvalue())
    upright = cv2.imdecode(np.frombuffer(photo.png, np.uint8), cv2.IMREAD_COLOR)
    assert (photo.width, photo.height, photo.scale) == (400, 600, 1.0) and upright.shape == (600, 400, 3)
    assert upright[:40].mean() < 40 < upright[100:].mean()  # the band is at the top, as a browser shows it

    big = Image.new("RGB", (3000, 2000), (90, 120, 150))
    buf = io.BytesIO()
    big.save(buf, "JPEG")
    photo = normalise_photo(buf.getvalue())
    assert (photo.width, photo.height) == (2048, 1365) and abs(photo.scale - 2048 / 3000) < 1e-9
    points = parse_points(json.dumps({**POINTS, "chin": [1500, 1000]}), photo.width, photo.height, photo.scale)
    assert points["chin"] == pytest.approx((1024.0, 682.67), abs=0.01)
    with pytest.raises(HostError, match=r"points\.chin: \(3000, 10\) is outside the photo"):
        parse_points({**POINTS, "chin": [3000, 10]}, photo.width, photo.height, photo.scale)
