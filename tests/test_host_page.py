"""The brand page's host section in a real browser: upload a photo, watch the host talk; place the points by hand."""
from __future__ import annotations

import asyncio

from playwright.async_api import async_playwright
from test_brand import brand_server, call
from test_host_api import ASTRONAUT, POINTS, out_of_focus
from test_pages import CHROMIUM, FLAGS

PLAYING = """() => { const v = document.getElementById('host-preview');
  return !v.hidden && v.readyState >= 2 && v.currentTime > 0.5 && !v.paused; }"""


async def plays(page) -> None:
    """The preview video has frames and its currentTime advances."""
    await page.wait_for_function(PLAYING, timeout=60_000)
    t1 = await page.evaluate("document.getElementById('host-preview').currentTime")
    await page.wait_for_timeout(700)
    assert await page.evaluate("document.getElementById('host-preview').currentTime") > t1 + 0.3


def test_brand_page_uploads_a_photo_plays_the_preview_and_places_points_by_hand(tmp_path):
    blurred = tmp_path / "blurred.png"
    blurred.write_bytes(out_of_focus())

    async def main():
        async with brand_server(tmp_path / "data") as (base, http, auth):
            acme = auth("brand", "acme")
            token = acme["Authorization"].split()[1]
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = await browser.new_page(viewport={"width": 1280, "height": 1000})
                await page.goto(f"{base}/brand?token={token}")
                # no photo chosen: the page says so
                await page.click("#host-upload")
                assert "photo" in await page.inner_text("#host-error")

                # the astronaut: progress while it is rigged, then the preview plays
                await page.set_input_files("#host-file", str(ASTRONAUT))
                await page.click("#host-upload")
                await page.wait_for_selector("#host-progress:not([hidden])", timeout=5_000)
                await plays(page)
                assert await page.locator("#host-progress").is_hidden()
                assert await page.inner_text("#host-error") == ""
                await page.wait_for_selector("#hosts tbody tr", timeout=5_000)
                row = await page.inner_text("#hosts tbody tr")
                assert "astronaut" in row and "使用中" in row and "自动识别" in row
                await page.screenshot(path=str(tmp_path / "host-preview.png"))

                # an out-of-focus photo: no face found, so the page asks for the points on the photo
                await page.set_input_files("#host-file", str(blurred))
                await page.fill("#host-name", "手动标点")
                await page.click("#host-upload")
                await page.wait_for_selector("#host-points-box:not([hidden])", timeout=30_000)
                assert "no face found" in await page.inner_text("#host-error")
                assert (await page.inner_text("#host-point-label")).startswith("请点击：左眼（1/8）")
                canvas = page.locator("#host-points")
                k = (await canvas.bounding_box())["width"] / 512  # screen px per photo px (the photo is 512 px wide)

                async def click(x: float, y: float) -> None:  # where a person clicks on the shown photo
                    await canvas.click(position={"x": x * k, "y": y * k})

                await click(20, 20)  # a slip of the hand, undone
                assert (await page.inner_text("#host-point-label")).startswith("请点击：右眼（2/8）")
                await page.click("#host-undo")
                labels = []
                for x, y in POINTS.values():
                    labels.append(await page.inner_text("#host-point-label"))
                    await click(x, y)
                assert [label.split("：")[1].split("（")[0] for label in labels] == [
                    "左眼", "右眼", "鼻尖", "左嘴角", "右嘴角", "上唇", "下唇", "下巴"]
                assert await page.is_enabled("#host-resubmit")
                await page.screenshot(path=str(tmp_path / "host-points.png"))
                await page.click("#host-resubmit")
                await page.wait_for_function("document.querySelectorAll('#hosts tbody tr').length === 2", timeout=60_000)
                assert await page.locator("#host-points-box").is_hidden()
                await plays(page)
                status, hosts = await call(http, "GET", f"{base}/api/hosts", acme)
                manual = next(h for h in hosts if h["name"] == "手动标点")
                assert (status, manual["rigged"], manual["active"]) == (200, "manual", False)

                # this host for the brand's streams; then delete the first one
                await page.click(f"#hosts tr[data-id='{manual['id']}'] button.use")
                await page.wait_for_function(
                    f"document.querySelector(\"#hosts tr[data-id='{manual['id']}']\").textContent.includes('使用中')")
                page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
                first = next(h for h in hosts if h["id"] != manual["id"])
                await page.click(f"#hosts tr[data-id='{first['id']}'] button.danger")
                await page.wait_for_function("document.querySelectorAll('#hosts tbody tr').length === 1")
                await browser.close()
            status, hosts = await call(http, "GET", f"{base}/api/hosts", acme)
            assert [(h["id"], h["active"]) for h in hosts] == [(manual["id"], True)]

    asyncio.run(main())
