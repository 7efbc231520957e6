"""One way to get a host renderer for any pack: the pack's kind picks the renderer.

Used by the offline render, the live show and the preview, so a rundown's `host.avatar`
(or a brand's host) may name a drawn pack or a photo pack alike.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from avatar.host.pack import HostPack, Pack
from avatar.host.renderer import HostRenderer
from avatar.photo.renderer import PhotoHostRenderer


class Host(Protocol):
    """What a show asks of its host: frame n's picture for a mouth, a glance and a nod."""

    width: int
    height: int

    def render(self, frame: int, mouth_open: float, gaze: float = 0.0, wide: float = 0.0, nod: float = 0.0) -> np.ndarray:
        """A new HxWx3 uint8 BGR picture (the caller may draw on it)."""
        ...


def make_host(pack: Pack, width: int, height: int, seed: int = 0) -> Host:
    """The renderer for `pack` at width x height: drawn layers or a warped photo."""
    if isinstance(pack, HostPack):
        return HostRenderer(pack, width, height, seed=seed)
    return PhotoHostRenderer(pack, width, height, seed=seed)
