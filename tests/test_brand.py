"""The brand's product library, driven as a brand drives it: REST with its token, then the page in a browser."""
from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp
from playwright.async_api import async_playwright
from test_pages import CHROMIUM, FLAGS

from script_gen.rundown import load_rundown
from studio.auth import Identity
from studio.catalog import Catalog, seed_demo
from studio.render import DEMO_RUNDOWN
from studio.server import Config, Studio, build_app
from tests.serving import served

CUP = {
    "name": "暖言 保温杯", "category": "家居", "price": 99, "live_price": "59.90",
    "selling_points": ["316不锈钢内胆", "保温12小时"], "specs": {"容量": "500ml", "重量": 0.3},
    "stock": 1000, "gifts": ["杯套"], "after_sale": ["七天无理由退换"], "coupon": {"amount": 5, "min_spend": 50},
}


@contextlib.asynccontextmanager
async def brand_server(data_dir: Path, studio: Studio | None = None):
    """A real studio server on a free loopback port: (base URL, session, auth(role, subject) -> headers)."""
    studio = studio or Studio(Config(data_dir=data_dir))

    def auth(role: str, subject: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {studio.tokens.issue(Identity(role, subject, subject))}"}

    async with served(build_app(studio)) as base, aiohttp.ClientSession() as http:
        yield base, http, auth


async def call(http: aiohttp.ClientSession, method: str, url: str, headers=None, json=None) -> tuple[int, object]:
    async with http.request(method, url, headers=headers, json=json) as r:
        return r.status, (await r.json() if r.content_type == "application/json" else await r.text())


def test_brand_creates_lists_updates_scripts_and_deletes_a_product(tmp_path):
    async def main():
        async with brand_server(tmp_path / "data") as (base, http, auth):
            acme = auth("brand", "acme")
            assert await call(http, "GET", f"{base}/api/products", acme) == (200, [])
            status, made = await call(http, "PUT", f"{base}/api/products/cup", acme, CUP)
            assert status == 201
            assert (made["id"], made["live_price"], made["specs"], made["script"]) == (
                "cup", 59.9, {"容量": "500ml", "重量": "0.3"}, {"generate": True})
            status, preview = await call(http, "GET", f"{base}/api/products/cup/script/preview", acme)
            assert status == 200 and "暖言 保温杯" in preview and "59.9" in preview and "316不锈钢内胆" in preview

            status, changed = await call(http, "PUT", f"{base}/api/products/cup", acme, {**CUP, "live_price": 49})
            assert (status, changed["live_price"]) == (200, 49)
            status, _ = await call(http, "PUT", f"{base}/api/products/cup/script", acme,
                                   {"lines": ["大家好，保温杯今天¥49！", " 拍1号链接。 "]})
            assert status == 200
            status, preview = await call(http, "GET", f"{base}/api/products/cup/script/preview", acme)
            assert (status, preview) == (200, "大家好，保温杯今天¥49！\n拍1号链接。")
            status, listed = await call(http, "GET", f"{base}/api/products", acme)
            assert [(p["id"], p["live_price"], p["script"]) for p in listed] == [
                ("cup", 49, {"lines": ["大家好，保温杯今天¥49！", "拍1号链接。"]})]
            for bad, words in [({"lines": []}, "lines: must not be empty"), ({"lines": ["ok", 5]}, "lines[1]: must be text"),
                               ({}, "generate"), ({"lines": ["a"], "generate": True}, "either"), ({"say": 1}, "unknown field: say")]:
                status, answer = await call(http, "PUT", f"{base}/api/products/cup/script", acme, bad)
                assert status == 400 and words in answer["error"], (bad, answer)

            assert await call(http, "DELETE", f"{base}/api/products/cup", acme) == (200, {"ok": True})
            assert await call(http, "GET", f"{base}/api/products", acme) == (200, [])
            status, answer = await call(http, "DELETE", f"{base}/api/products/cup", acme)
            assert status == 404 and "cup" in answer["error"]

    asyncio.run(main())


def test_bad_product_fields_are_400_naming_the_field(tmp_path):
    async def main():
        async with brand_server(tmp_path / "data") as (base, http, auth):
            acme = auth("brand", "acme")
            without_name = {k: v for k, v in CUP.items() if k != "name"}
            cases = [
                (without_name, "name: missing (required)"),
                ({**CUP, "live_price": 120}, "live_price: must not exceed price (99), got 120"),
                ({**CUP, "colour": "红"}, "colour: unknown field"),
                ({**CUP, "stock": "many"}, 'stock: must be a whole number, got "many"'),
                ({**CUP, "price": True}, "price: must be a number, got true"),
                ({**CUP, "selling_points": "好"}, "selling_points: must be a list"),
                ({**CUP, "coupon": {"amount": 80}}, "coupon.amount: must be less than live_price"),
                ({**CUP, "id": "mug"}, "id: must match"),
                ([1, 2], "body: must be a JSON object"),
            ]
            for payload, words in cases:
                status, answer = await call(http, "PUT", f"{base}/api/products/cup", acme, payload)
                assert status == 400 and answer["error"].startswith(words), (payload, answer)
            status, answer = await call(http, "PUT", f"{base}/api/products/Bad%20Id", acme, CUP)
            assert status == 400 and answer["error"].startswith("id: may use only"), answer
            assert await call(http, "GET", f"{base}/api/products", acme) == (200, [])  # nothing was stored

    asyncio.run(main())


def test_brands_see_only_their_own_products_and_other_roles_are_refused(tmp_path):
    async def main():
        async with brand_server(tmp_path / "data") as (base, http, auth):
            acme, rival = auth("brand", "acme"), auth("brand", "rival")
            assert (await call(http, "PUT", f"{base}/api/products/cup", acme, CUP))[0] == 201
            assert await call(http, "GET", f"{base}/api/products", rival) == (200, [])
            for method, path, body in [("DELETE", "/api/products/cup", None),
                                       ("PUT", "/api/products/cup/script", {"generate": True}),
                                       ("GET", "/api/products/cup/script/preview", None)]:
                status, answer = await call(http, method, base + path, rival, body)
                assert status == 404 and answer == {"error": "no product 'cup'"}, (path, answer)
            # the rival's PUT makes its own product: acme's stays as it was
            assert (await call(http, "PUT", f"{base}/api/products/cup", rival, {**CUP, "name": "仿冒杯"}))[0] == 201
            status, listed = await call(http, "GET", f"{base}/api/products", acme)
            assert [p["name"] for p in listed] == ["暖言 保温杯"]

            for headers, status_wanted, words in [(auth("viewer", "v1"), 403, "brand"), (auth("buyer", "b1"), 403, "brand"),
                                                  (None, 401, "token"), ({"Authorization": "Bearer forged"}, 401, "token")]:
                for method, path, body in [("GET", "/api/products", None), ("PUT", "/api/products/cup", CUP),
                                           ("DELETE", "/api/products/cup", None)]:
                    status, answer = await call(http, method, base + path, headers, body)
                    assert status == status_wanted and words in answer["error"], (headers, path, answer)
            status, listed = await call(http, "GET", f"{base}/api/products", acme)
            assert [p["name"] for p in listed] == ["暖言 保温杯"]

    asyncio.run(main())


def test_products_survive_a_restart_and_the_demo_seed_is_idempotent(tmp_path):
    async def main():
        data = tmp_path / "data"
        async with brand_server(data) as (base, http, auth):
            acme = auth("brand", "acme")
            await call(http, "PUT", f"{base}/api/products/cup", acme, CUP)
            await call(http, "PUT", f"{base}/api/products/cup/script", acme, {"lines": ["第一句。", "第二句。"]})
        catalog = Catalog(data / "catalog.sqlite3")
        [entry] = await catalog.products("acme")
        assert (entry.product.name, str(entry.product.live_price), entry.script) == ("暖言 保温杯", "59.9", ("第一句。", "第二句。"))
        rundown = load_rundown(DEMO_RUNDOWN)
        await seed_demo(catalog, "brand-demo", rundown)
        await seed_demo(catalog, "brand-demo", rundown)
        seeded = await catalog.products("brand-demo")
        assert [e.product for e in seeded] == list(rundown.products)
        first = {s.product_id: s.script for s in reversed(rundown.segments)}
        assert [e.script for e in seeded] == [first[p.id] for p in rundown.products]
        catalog.close()
        async with brand_server(data) as (base, http, auth):
            status, listed = await call(http, "GET", f"{base}/api/products", auth("brand", "acme"))
            assert (status, [p["id"] for p in listed]) == (200, ["cup"])

    asyncio.run(main())


def test_brand_page_adds_a_product_and_shows_the_servers_error(tmp_path):
    async def main():
        async with brand_server(tmp_path / "data") as (base, http, auth):
            token = auth("brand", "acme")["Authorization"].split()[1]
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = await browser.new_page(viewport={"width": 1280, "height": 1000})
                await page.goto(f"{base}/brand?token={token}")
                assert await page.evaluate("localStorage.getItem('linkup-brand')") == token
                for name, value in [("id", "kettle"), ("name", "<b>小熊</b> 电水壶"), ("category", "家电"), ("price", "199"),
                                    ("live_price", "129.9"), ("stock", "300"), ("coupon_amount", "10")]:
                    await page.fill(f"#product [name={name}]", value)
                await page.fill("#product [name=selling_points]", "1.7L大容量\n304不锈钢")
                await page.fill("#product [name=specs]", "容量: 1.7L\n功率：1800W")
                await page.click("#product button[type=submit]")
                await page.wait_for_selector("#products tbody tr[data-id=kettle]", timeout=5_000)
                row = await page.inner_text("#products tbody tr[data-id=kettle]")
                assert "<b>小熊</b> 电水壶" in row and "¥129.9" in row and "300" in row
                assert await page.locator("#products b").count() == 0  # text, not markup
                status, listed = await call(http, "GET", f"{base}/api/products", auth("brand", "acme"))
                assert status == 200 and listed[0]["specs"] == {"容量": "1.7L", "功率": "1800W"}
                assert listed[0]["coupon"] == {"amount": 10, "min_spend": 0}
                # the script editor's preview is the generated script
                await page.click("#preview-btn")
                await page.wait_for_function("document.getElementById('preview').textContent.includes('129.9')", timeout=5_000)
                # a bad price: the server's message appears next to the form and nothing changes
                await page.fill("#product [name=live_price]", "299")
                await page.click("#product button[type=submit]")
                await page.wait_for_function("document.getElementById('form-error').textContent !== ''", timeout=5_000)
                assert await page.inner_text("#form-error") == "live_price: must not exceed price (199), got 299"
                await page.screenshot(path=str(tmp_path / "brand.png"))
                await browser.close()
            status, listed = await call(http, "GET", f"{base}/api/products", auth("brand", "acme"))
            assert (status, [p["live_price"] for p in listed]) == (200, [129.9])

    asyncio.run(main())
