"""The brand's REST API and page: its products, their scripts and a script preview.

A brand token's subject is the brand id; every query is scoped to it, so another
brand's product answers 404 exactly like one that does not exist.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from script_gen.builder import build_script
from script_gen.rundown import Segment
from studio.catalog import (
    Catalog,
    CatalogEntry,
    ProductError,
    parse_product,
    parse_script,
    product_fields,
)
from studio.payload import take
from studio.server import STUDIO, WEB, body, error, identity

CATALOG: web.AppKey[Catalog] = web.AppKey("catalog", Catalog)


def describe(entry: CatalogEntry) -> dict[str, Any]:
    script: dict[str, Any] = {"generate": True} if entry.script is None else {"lines": list(entry.script)}
    return {"id": entry.product.id, **product_fields(entry.product), "script": script,
            "created_at": entry.created_at, "updated_at": entry.updated_at}


def _brand(request: web.Request) -> str:
    return identity(request, "brand").subject


async def _entry(request: web.Request, brand_id: str) -> CatalogEntry:
    product_id = request.match_info["product_id"]
    entry = await request.app[CATALOG].get(brand_id, product_id)
    if entry is None:
        raise error(404, f"no product {product_id!r}")
    return entry


async def list_products(request: web.Request) -> web.Response:
    entries = await request.app[CATALOG].products(_brand(request))
    return web.json_response([describe(e) for e in entries])


async def put_product(request: web.Request) -> web.Response:
    brand_id = _brand(request)
    try:
        product = parse_product(request.match_info["product_id"], await body(request))
    except ProductError as exc:
        raise error(400, str(exc)) from None
    created = await request.app[CATALOG].put(brand_id, product)
    entry = await request.app[CATALOG].get(brand_id, product.id)
    assert entry is not None
    return web.json_response(describe(entry), status=201 if created else 200)


async def delete_product(request: web.Request) -> web.Response:
    brand_id = _brand(request)
    product_id = request.match_info["product_id"]
    if not await request.app[CATALOG].delete(brand_id, product_id):
        raise error(404, f"no product {product_id!r}")
    return web.json_response({"ok": True})


async def put_script(request: web.Request) -> web.Response:
    """{"lines": [...]} for a written script, {"generate": true} to have it built from the product."""
    brand_id = _brand(request)
    entry = await _entry(request, brand_id)
    fields = take(await body(request), {}, {"lines": list, "generate": bool})
    if ("lines" in fields) == bool(fields.get("generate")):
        raise error(400, 'body: give either "lines": [...] or "generate": true')
    try:
        script = parse_script(entry.product, fields["lines"]) if "lines" in fields else None
    except ProductError as exc:
        raise error(400, str(exc)) from None
    await request.app[CATALOG].set_script(brand_id, entry.product.id, script)
    return web.json_response(describe(await _entry(request, brand_id)))


async def preview_script(request: web.Request) -> web.Response:
    """What the host would say for this product, one line of text per spoken line."""
    entry = await _entry(request, _brand(request))
    script = build_script(entry.product, Segment(entry.product.id, entry.script, None), link_no=1)
    return web.Response(text="\n".join(line.text for line in script.lines), content_type="text/plain", charset="utf-8")


async def brand_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB / "brand.html")


def add_brand_routes(app: web.Application) -> None:
    """Mounts the brand API and page; the catalogue lives in the studio's data folder."""
    catalog = Catalog(app[STUDIO].config.data_dir / "catalog.sqlite3")
    app[CATALOG] = catalog
    app.router.add_get("/api/products", list_products)
    app.router.add_put("/api/products/{product_id}", put_product)
    app.router.add_delete("/api/products/{product_id}", delete_product)
    app.router.add_put("/api/products/{product_id}/script", put_script)
    app.router.add_get("/api/products/{product_id}/script/preview", preview_script)
    app.router.add_get("/brand", brand_page)

    async def on_cleanup(app: web.Application) -> None:
        catalog.close()

    app.on_cleanup.append(on_cleanup)
