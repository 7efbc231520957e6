"""The pages in a real browser (Debian's headless Chromium, driven by Playwright): play, chat, claim."""
from __future__ import annotations

import asyncio
import shutil
import time

from playwright.async_api import async_playwright
from test_server import running

from studio.auth import Identity

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
         "--no-first-run", "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]


def test_watch_page_plays_chats_and_claims_after_link_up(tmp_path):
    async def main():
        async with running(tmp_path) as (studio, stream, base, http, buyer):
            async with http.post(f"{base}/api/streams/s1/control", json={"action": "go_live"}, headers=buyer) as r:
                assert r.status == 200
            await stream.show.wait_first_segment(15)
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = await browser.new_page(viewport={"width": 1280, "height": 720})
                await page.goto(f"{base}/watch/s1")
                # the player plays: currentTime advances
                await page.wait_for_function("document.getElementById('player').currentTime > 1", timeout=20_000)
                t1 = await page.evaluate("document.getElementById('player').currentTime")
                await page.wait_for_timeout(1500)
                assert await page.evaluate("document.getElementById('player').currentTime") > t1 + 0.5
                # a comment appears, as text (markup is not interpreted)
                await page.fill("#text", "多少钱？<i>x</i>")
                await page.click("#say button[type=submit]")
                await page.wait_for_function(
                    "[...document.querySelectorAll('#comments li')].some(li => li.textContent.includes('多少钱？<i>x</i>'))",
                    timeout=5_000)
                assert await page.locator("#comments i").count() == 0
                assert await page.locator("#deal").is_hidden()
                # the buyer says 上链接: the claim button shows once the player reaches the event
                async with http.post(f"{base}/api/streams/s1/control", json={"action": "link_up", "product_id": "cup"},
                                     headers=buyer) as r:
                    assert r.status == 200
                await page.wait_for_selector("#deal:not([hidden])", timeout=15_000)
                shown_at = await page.evaluate("mediaNow()")
                link = next(e for e in stream.events if e["kind"] == "link_up")
                assert shown_at >= link["media_time"] - 0.05  # never before the video shows 上链接
                await page.screenshot(path=str(tmp_path / "watch.png"))
                await page.click("#claim")
                await page.wait_for_function("document.querySelector('#coupons li')", timeout=5_000)
                assert "满50减5" in await page.inner_text("#coupons")
                # the console shows the stream and its batch
                console = await browser.new_page(viewport={"width": 1280, "height": 900})
                token = buyer["Authorization"].split()[1]
                await console.goto(f"{base}/console?token={token}")
                await console.wait_for_function("document.querySelector('#batches tbody tr')", timeout=5_000)
                assert "CUP-1" in await console.inner_text("#batches")
                await console.screenshot(path=str(tmp_path / "console.png"))
                await browser.close()

    asyncio.run(main())


def test_scheduled_stream_page_counts_down_and_takes_a_reservation(tmp_path):
    async def main():
        async with running(tmp_path) as (studio, stream, base, http, buyer):
            stream.starts_at = time.time() + 3600
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = await browser.new_page()
                await page.goto(f"{base}/watch/s1")
                await page.wait_for_function("/\\d:\\d\\d:\\d\\d/.test(document.getElementById('countdown').textContent)")
                left = await page.inner_text("#countdown")
                assert left.endswith(("0:59:59", "0:59:58", "0:59:57", "0:59:56"))
                await page.click("#reserve")
                await page.wait_for_function("document.getElementById('reserve').disabled")
                assert (await page.inner_text("#reservations")).startswith("1 ")
                assert stream.reservations == 1
                await browser.close()

    asyncio.run(main())


def test_console_preflight_shows_progress_and_the_outcome(tmp_path):
    async def main():
        async with running(tmp_path) as (studio, stream, base, http, buyer):
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = await browser.new_page()
                await page.goto(f"{base}/console?token={buyer['Authorization'].split()[1]}")
                await page.wait_for_function("document.querySelector('#products tbody tr')")
                await page.click("#preflight")
                await page.wait_for_function("/句已就绪/.test(document.getElementById('pf-summary').textContent)")
                summary = await page.inner_text("#pf-summary")
                total = stream.preflight["total"]
                assert summary.startswith(f"{total} ") and "0 句改用备用声音" in summary
                assert await page.evaluate("document.getElementById('pf-progress').value") == total
                await browser.close()

    asyncio.run(main())


def test_brand_page_saves_a_voice_and_plays_a_preview(tmp_path):
    from studio.voice_api import load_voice_profile

    async def main():
        async with running(tmp_path) as (studio, stream, base, http, buyer):
            token = studio.tokens.issue(Identity("brand", "acme", "Acme"))
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = await browser.new_page()
                await page.goto(f"{base}/brand?token={token}")
                await page.fill("#voice [name=rate]", "500")  # out of range: the server's message shows
                await page.click("#voice button[type=submit]")
                await page.wait_for_function("document.getElementById('voice-error').textContent.includes('rate')")
                await page.fill("#voice [name=rate]", "20")
                await page.click("#voice button[type=submit]")
                await page.wait_for_function("document.getElementById('voice-error').textContent === ''")
                await page.click("#voice-preview")
                await page.wait_for_function("document.getElementById('voice-engine').textContent.includes('offline')")
                duration = await page.evaluate(
                    "new Promise(r => { const a = document.getElementById('voice-audio');"
                    " a.readyState >= 1 ? r(a.duration) : a.addEventListener('loadedmetadata', () => r(a.duration)); })")
                assert duration > 1.0  # a real WAV the browser decodes
                await browser.close()
            assert load_voice_profile(tmp_path / "data", "acme").rate == 20

    asyncio.run(main())


def test_console_schedules_a_brand_stream_and_needs_a_reason_for_ad_law_findings(tmp_path):
    from test_server import SHOW
    banned = SHOW.replace("保温十二个小时，冬天也不怕。", "全网最低价，保温十二个小时。").replace("CUP-1", "CUP-618")

    async def main():
        async with running(tmp_path) as (studio, stream, base, http, buyer):
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = await browser.new_page()
                await page.goto(f"{base}/console?token={buyer['Authorization'].split()[1]}")
                await page.fill("#starts", "2099-06-18T20:00")
                await page.fill("#sid", "night618")
                await page.fill("#brand", "brand-a")
                await page.fill("#rundown", banned)
                await page.click("#create button")
                await page.wait_for_function("/全网最低/.test(document.getElementById('msg').textContent)")
                assert "night618" not in studio.streams
                await page.fill("#override", "品牌法务已确认")
                await page.click("#create button")
                await page.wait_for_function("/已创建 night618/.test(document.getElementById('msg').textContent)")
                created = studio.streams["night618"]
                assert created.brand_id == "brand-a" and created.starts_at is not None
                await browser.close()

    asyncio.run(main())
