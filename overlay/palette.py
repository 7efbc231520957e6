"""The overlay colours (BGR), shared so every element looks like one shop."""
from __future__ import annotations

RED = (48, 36, 232)  # live price, accents
RED_DEEP = (30, 20, 170)
ORANGE = (40, 118, 255)
GOLD = (60, 204, 255)
GOLD_LIGHT = (150, 236, 255)
CREAM = (242, 250, 255)
INK = (40, 36, 34)  # body text on cream
GREY = (150, 150, 150)
TRACK = (222, 226, 232)  # empty part of the stock bar
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
TEAL = (200, 220, 40)  # "live AI" dot in the label
