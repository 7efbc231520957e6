"""The `linkup` command as a user runs it: real processes, real files."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av

REPO = Path(__file__).resolve().parent.parent


def linkup(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "linkup"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "studio.cli"]
    env = {**os.environ, "LINKUP_CACHE_DIR": str(cwd / "voice-cache"), **(env or {})}
    return subprocess.run([*cmd, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


TINY = """
title: 小测试
host: {avatar: default, voice: {engine: offline}}
products:
  - {id: tea, name: 山岚 乌龙茶, category: 食品, price: 49, live_price: 39, selling_points: [高山茶园], stock: 300}
segments:
  - product: tea
    script: [这款乌龙茶只要¥39。]
"""


def test_render_writes_a_playable_mp4_with_progress(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY, encoding="utf-8")
    done = linkup("render", "tiny.yaml", "-o", "out.mp4", "--preset", "ultrafast", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "rendering" in done.stderr and "frame" in done.stderr  # the progress bar
    assert "wrote out.mp4" in done.stdout
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert {s.type for s in c.streams} == {"video", "audio"}
        assert sum(1 for _ in c.decode(video=0)) > 25


def test_bad_rundown_is_one_line_naming_file_and_field(tmp_path):
    (tmp_path / "bad.yaml").write_text(TINY.replace("live_price: 39", "live_price: abc"), encoding="utf-8")
    done = linkup("render", "bad.yaml", "-o", "out.mp4", cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "bad.yaml: products[0].live_price:" in lines[0]
    assert not (tmp_path / "out.mp4").exists()


def test_missing_rundown_and_unwritable_output_are_clear_errors(tmp_path):
    done = linkup("render", "nope.yaml", "-o", "out.mp4", cwd=tmp_path)
    assert done.returncode == 2 and "nope.yaml" in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "tiny.yaml").write_text(TINY, encoding="utf-8")
    done = linkup("render", "tiny.yaml", "-o", "no/such/dir/out.mp4", cwd=tmp_path)
    assert done.returncode == 2 and "does not exist" in done.stderr and "Traceback" not in done.stderr


def test_bad_resolution_is_refused_by_the_parser(tmp_path):
    done = linkup("render", "x.yaml", "-o", "o.mp4", "--resolution", "4k", cwd=tmp_path)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_serve_on_a_busy_port_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = linkup("serve", "--port", str(port), "--data", str(tmp_path / "data"), cwd=tmp_path)
    assert done.returncode == 2 and f"--port {port}" in done.stderr and "Traceback" not in done.stderr


def test_serve_with_a_bad_claim_rate_setting_is_a_clear_error(tmp_path):
    done = linkup("serve", "--port", "0", "--data", str(tmp_path / "data"), cwd=tmp_path,
                  env={"LINKUP_CLAIM_RATE_VIEWER": "fast"})
    assert done.returncode == 2 and "LINKUP_CLAIM_RATE_VIEWER" in done.stderr and "Traceback" not in done.stderr


def test_serve_on_a_data_folder_another_server_uses_is_a_clear_error(tmp_path):
    import fcntl

    data = tmp_path / "data"
    data.mkdir()
    with open(data / "claims.sqlite3.lock", "w") as held:  # what a running server holds
        fcntl.flock(held, fcntl.LOCK_EX)
        done = linkup("serve", "--port", "0", "--data", str(data), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "claims.sqlite3 is in use by another running server" in done.stderr


def test_serve_with_a_claims_database_it_cannot_open_is_a_clear_error(tmp_path):
    (tmp_path / "data" / "claims.sqlite3").mkdir(parents=True)  # a folder where the database should be
    done = linkup("serve", "--port", "0", "--data", "data", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "data/claims.sqlite3: cannot use the claims database (unable to open database file)" in done.stderr
