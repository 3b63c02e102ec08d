"""The layer order of docs/design.md ("Rooms"), checked on the source: a room imports only rooms
below it, and no import hides inside a function (a loop dodged that way is a fact in the wrong
room). Pure ast, no engine: part of `make test-fast`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "generator"

# Higher numbers sit higher; a room may import its own modules and any room with a lower number.
# Written out in docs/design.md, which this test reads back (test_design_md_states_this_order).
LAYERS = {
    "__main__": 7,
    "cli": 6, "storm": 6,
    "lab": 5,
    "deploy": 4, "runner": 4,
    "milter": 3, "report": 3,
    "renderer": 2,
    "ledger": 1, "engines": 1, "batv": 1,
    "facts": 0, "defaults": 0, "errors": 0, "secretfile": 0, "resources": 0, "__init__": 0,
}

# Imports that may stay inside a function: packages that are optional or slow to import, never a
# bouncegen module to dodge a loop. Why each one:
LAZY_ALLOWED = {
    "Milter": "pymilter is the optional [milter] extra (needs libmilter): rendering never imports it",
    "bouncegen.milter.mx": "the MX milter's callbacks import pymilter at their top: only `bouncegen milter` needs them",
    "bouncegen.milter.relay_milter": "the relay milter's callbacks likewise (pymilter at their top)",
    "redis": "only a redis:// ledger store needs it; 0.2 s at every start otherwise",
    "rich": "only a table or progress bar on a terminal needs it; 0.4 s at every start otherwise",
    "matplotlib": "only an --html page's charts need it; 0.5 s and 40 MB at every start otherwise",
}


def room(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def modules():
    return sorted(SRC.rglob("*.py"))


def target_room(path: Path, node: ast.ImportFrom | ast.Import, alias: ast.alias) -> str | None:
    """The bouncegen room an import reaches, None for anything outside bouncegen."""
    if isinstance(node, ast.Import):
        parts = alias.name.split(".")
        return parts[1] if parts[0] == "bouncegen" and len(parts) > 1 else ("__init__" if parts == ["bouncegen"] else None)
    if node.level == 0:
        parts = (node.module or "").split(".")
        if parts[0] != "bouncegen":
            return None
        rest = parts[1:] or [alias.name]
        return rest[0]
    # relative: resolve against the importing module's package
    pkg = list(path.relative_to(SRC).parent.parts)
    base = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
    if node.level - 1 > len(pkg):
        raise AssertionError(f"{path}: relative import above the package")
    rest = base + (node.module.split(".") if node.module else [alias.name])
    if not rest:
        return "__init__"
    first = rest[0]
    return first if (SRC / first).is_dir() or (SRC / f"{first}.py").exists() else "__init__"


def test_every_module_has_a_layer():
    assert {room(p) for p in modules()} <= set(LAYERS), "a new room: give it a layer here and in docs/design.md"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_import_points_up(path):
    me = room(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                other = target_room(path, node, alias)
                if other is None or other == me:
                    continue
                if LAYERS[other] >= LAYERS[me]:
                    bad.append(f"line {node.lineno}: {me} (layer {LAYERS[me]}) imports {other} (layer {LAYERS[other]})")
    assert not bad, f"{path.relative_to(ROOT)}: " + "; ".join(bad)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_import_inside_a_function(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level:
                pkg = list(path.relative_to(SRC).parent.parts)
                base = ["bouncegen", *pkg[: len(pkg) - (node.level - 1)]]
                names = [".".join(base + (node.module.split(".") if node.module else []) + [a.name]) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "").split(".")[0]]
            else:
                continue
            bad += [f"line {node.lineno}: {n}" for n in names if n not in LAZY_ALLOWED]
    assert not bad, f"{path.relative_to(ROOT)} imports inside a function: " + "; ".join(bad)


def test_design_md_states_this_order():
    """docs/design.md writes the same order as LAYERS, top first."""
    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    m = re.search(r"^Layer order \(top first\): (.+)$", text, re.M)
    assert m, "docs/design.md: the 'Layer order (top first): ...' line is missing"
    written = [[r.strip(" `/.") for r in level.split(",")] for level in m.group(1).split("→")]
    rooms = {r for level in written for r in level}
    assert rooms == {r for r in LAYERS if not r.startswith("__") and r not in ("storm",)}, rooms
    levels = [{LAYERS[r] for r in level} for level in written]
    assert all(len(s) == 1 for s in levels), f"rooms of one level sit in different layers here: {written}"
    numbers = [s.pop() for s in levels]
    assert numbers == sorted(numbers, reverse=True) and len(set(numbers)) == len(numbers), written


def test_the_check_catches_a_loop(tmp_path):
    """The checker itself: an upward import is reported (a test that can fail)."""
    fake = SRC / "renderer" / "x.py"
    node = ast.parse("from ..milter import settings").body[0]
    assert isinstance(node, ast.ImportFrom)
    assert target_room(fake, node, node.names[0]) == "milter"
    assert LAYERS["milter"] > LAYERS["renderer"]
