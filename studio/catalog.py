"""Each brand's product catalogue and product scripts, kept in SQLite.

Product fields are checked by the rundown's own validation (the same rules as a
rundown file), so a product a brand saves here is one a show can present. Rows
are keyed by (brand, product id): one brand never sees, or even learns of,
another brand's products. Calls run in a worker thread, off the event loop.
"""
from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from script_gen.rundown import Product, Rundown, RundownError, parse_rundown

_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    brand_id TEXT NOT NULL,
    product_id TEXT NOT NULL,
    fields TEXT NOT NULL,
    script TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (brand_id, product_id)
);
"""

_PUT = """
INSERT INTO products (brand_id, product_id, fields, script, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (brand_id, product_id) DO UPDATE SET fields = excluded.fields, updated_at = excluded.updated_at
"""

_COLUMNS = "product_id, fields, script, created_at, updated_at"


class ProductError(ValueError):
    """str(err) is one line, 'field: problem', with the field named as the client sent it."""


@dataclass(frozen=True)
class CatalogEntry:
    product: Product
    script: tuple[str, ...] | None  # written lines; None: generate
    created_at: float
    updated_at: float


# ---------------------------------------------------------------- validation (pure)

def _money(amount: Decimal) -> int | float:
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def product_fields(product: Product) -> dict[str, Any]:
    """The product as rundown fields (no id): what the API answers and what is stored."""
    coupon = product.coupon
    return {
        "name": product.name,
        "category": product.category,
        "price": _money(product.price),
        "live_price": _money(product.live_price),
        "selling_points": list(product.selling_points),
        "specs": dict(product.specs),
        "stock": product.stock,
        "gifts": list(product.gifts),
        "after_sale": list(product.after_sale),
        "coupon": None if coupon is None else {"amount": _money(coupon.amount), "min_spend": _money(coupon.min_spend)},
    }


def _check(product: dict[str, Any], segment: dict[str, Any], prefix: str, rename: str) -> Rundown:
    """Run the rundown's validation on a one-product rundown; its field paths become the client's."""
    try:
        return parse_rundown({"title": "catalog", "products": [product], "segments": [segment]}, "catalog")
    except RundownError as exc:
        field = re.sub(rf"^{re.escape(prefix)}\.?", rename, exc.field, count=1)
        raise ProductError(f"{field or 'body'}: {exc.problem}") from None


def parse_product(product_id: str, fields: object) -> Product:
    """A product from the client's fields; the id comes from the URL (a body id must agree)."""
    if not isinstance(fields, dict):
        raise ProductError("body: must be a JSON object with the product's fields")
    if "id" in fields and fields["id"] != product_id:
        raise ProductError(f"id: must match the product id in the URL ({product_id!r})")
    rundown = _check({**fields, "id": product_id}, {"product": product_id}, "products[0]", "")
    return rundown.products[0]


def parse_script(product: Product, lines: object) -> tuple[str, ...]:
    """Written script lines, held to a rundown's script rules."""
    fields = {"id": product.id, **product_fields(product)}
    rundown = _check(fields, {"product": product.id, "script": lines}, "segments[0].script", "lines")
    script = rundown.segments[0].script
    assert script is not None  # a list never parses as "generate"
    return script


# ---------------------------------------------------------------- storage

class Catalog:
    """One SQLite file (WAL) for every brand; one connection, serialised by a lock."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def _run(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    @staticmethod
    def _entry(row: tuple[Any, ...]) -> CatalogEntry:
        product_id, fields, script, created_at, updated_at = row
        product = parse_product(product_id, json.loads(fields))
        return CatalogEntry(product, None if script is None else tuple(json.loads(script)), created_at, updated_at)

    async def products(self, brand_id: str) -> list[CatalogEntry]:
        rows = await asyncio.to_thread(
            self._rows, f"SELECT {_COLUMNS} FROM products WHERE brand_id = ? ORDER BY created_at, product_id", (brand_id,))
        return [self._entry(r) for r in rows]

    async def get(self, brand_id: str, product_id: str) -> CatalogEntry | None:
        rows = await asyncio.to_thread(
            self._rows, f"SELECT {_COLUMNS} FROM products WHERE brand_id = ? AND product_id = ?", (brand_id, product_id))
        return self._entry(rows[0]) if rows else None

    async def put(self, brand_id: str, product: Product) -> bool:
        """Create or replace the product (a written script is kept); True when it is new."""
        now = time.time()
        fields = json.dumps(product_fields(product), ensure_ascii=False)

        def write() -> bool:
            with self._lock:
                existed = self._db.execute("SELECT 1 FROM products WHERE brand_id = ? AND product_id = ?",
                                           (brand_id, product.id)).fetchone()
                self._db.execute(_PUT, (brand_id, product.id, fields, None, now, now))
                return existed is None

        return await asyncio.to_thread(write)

    async def set_script(self, brand_id: str, product_id: str, script: tuple[str, ...] | None) -> bool:
        """Written lines, or None to generate; False when the brand has no such product."""
        text = None if script is None else json.dumps(list(script), ensure_ascii=False)
        cur = await asyncio.to_thread(
            self._run, "UPDATE products SET script = ?, updated_at = ? WHERE brand_id = ? AND product_id = ?",
            (text, time.time(), brand_id, product_id))
        return cur.rowcount > 0

    async def delete(self, brand_id: str, product_id: str) -> bool:
        cur = await asyncio.to_thread(
            self._run, "DELETE FROM products WHERE brand_id = ? AND product_id = ?", (brand_id, product_id))
        return cur.rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._db.close()


async def seed_demo(catalog: Catalog, brand_id: str, rundown: Rundown) -> None:
    """The demo brand owns the demo show's products, with the script of each one's first segment; rerunning is harmless."""
    for product in rundown.products:
        await catalog.put(brand_id, product)
        segment = next((s for s in rundown.segments if s.product_id == product.id), None)
        await catalog.set_script(brand_id, product.id, segment.script if segment else None)
