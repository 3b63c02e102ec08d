"""Shared fixtures (helpers in support.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bouncegen.renderer import inventory, render
from support import Tables, need


@pytest.fixture
def write_inventory(tmp_path):
    """write_inventory(text, name="site.toml") -> Path"""

    def _write(text: str, name: str = "site.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def rendered(tmp_path):
    """rendered(inventory_path) -> output dir with spamassassin/ and postfix/ (no lint)."""

    def _render(inv_path: Path, out: Path | None = None) -> Path:
        out = out or tmp_path / "out"
        inv = inventory.load(inv_path)
        render.write_tree(render.render_files(inv), out)
        return out

    return _render


@pytest.fixture
def tables(tmp_path):
    need("postmap", "postconf")
    return lambda out: Tables(out, tmp_path)


@pytest.fixture
def redis_server(tmp_path):
    """A private redis-server for one test (support.RedisServer), stopped by PID afterwards."""
    from support import RedisServer

    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def _processes_under(path: str) -> list[str]:
    """Processes whose command line or working directory lies under ``path`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if path in cmd or cwd.startswith(path):
            found.append(f"{entry.name}: {cmd[:160]}")
    return found


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind(tmp_path_factory):
    """Every process a test starts, it stops: after the run nothing may still run from the
    session's temporary directories (spamd, Postfix, redis-server, opendkim, gpg-agent...)."""
    base = str(tmp_path_factory.getbasetemp())
    yield
    import time

    deadline = time.monotonic() + 10  # a process may still be on its way out
    while (left := _processes_under(base)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, "processes left behind by the tests:\n" + "\n".join(left)
