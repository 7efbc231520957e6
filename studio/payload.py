"""Strict JSON bodies: unknown fields and wrong types are the client's error (400), never a 500."""
from __future__ import annotations

from typing import Any


class PayloadError(ValueError):
    """The body is not what the endpoint takes; the message names the field."""


Kind = type | tuple[type, ...]


def take(data: Any, required: dict[str, Kind], optional: dict[str, Kind] | None = None) -> dict[str, Any]:
    """The body's fields, checked against their types; bool is not accepted where int is."""
    optional = optional or {}
    if not isinstance(data, dict):
        raise PayloadError("body must be a JSON object")
    unknown = sorted(set(data) - set(required) - set(optional))
    if unknown:
        raise PayloadError(f"unknown field: {unknown[0]}")
    out: dict[str, Any] = {}
    for name, kind in {**required, **optional}.items():
        if name not in data or data[name] is None:
            if name in required:
                raise PayloadError(f"missing field: {name}")
            continue
        value = data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            wanted = " or ".join(k.__name__ for k in kinds)
            raise PayloadError(f"{name}: must be {wanted}, got {type(value).__name__}")
        out[name] = value
    return out
