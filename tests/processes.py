"""The processes a server leaves behind, seen from /proc."""
from __future__ import annotations

import time
from pathlib import Path


def claims_writers(pid: int) -> list[int]:
    """The claims writer processes `pid` started (and that are still running)."""
    kids = [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    return [k for k in kids if b"studio.claims_writer" in Path(f"/proc/{k}/cmdline").read_bytes()]


def gone(pid: int, within: float = 5.0) -> bool:
    """Exited within `within` s (a zombie no one has reaped yet counts: it holds no files and runs nothing)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False
