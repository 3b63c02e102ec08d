"""Shared fixtures (helpers in support.py)."""

from __future__ import annotations

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
