"""The input of an install: a directory written by ``bouncegen render``, or an inventory rendered
on the fly; and the parameter lines of its main.cf."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from ..errors import UsageError
from ..milter.settings import check_rendered
from ..renderer import inventory, render
from .layout import MAP_REF, PARAM_LINE


def source_dir(spec: str | Path, stack: contextlib.ExitStack, *, do_lint: bool = True) -> Path:
    """The rendered output to install: SPEC itself when it is a directory written by `bouncegen
    render`, or SPEC rendered (with lint, unless the caller lints the result itself) into a
    temporary directory when it is an inventory."""
    path = Path(spec)
    if path.is_dir():
        problems = [f"{path}: no {sub}/ directory: not a directory written by 'bouncegen render'"
                    for sub in ("spamassassin", "postfix") if not (path / sub).is_dir()]
        if not problems and not (path / "postfix" / "main.cf").is_file():
            problems.append(f"{path}/postfix/main.cf: missing")
        if problems:
            raise UsageError(problems)
        return path
    if path.is_file():
        inv = inventory.load(path)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bouncegen-src-")))
        render.render(inv, tmp / "build", require_tools=True, do_lint=do_lint, checks=(check_rendered,))
        return tmp / "build"
    raise UsageError(f"{path}: no such inventory or rendered directory")


def parse_main_cf(text: str, name: str) -> list[tuple[str, str]]:
    """The `name = value` lines of a rendered main.cf (comments and blank lines skipped; a line
    starting with white space continues the previous value, as in main.cf itself)."""
    params: list[tuple[str, str]] = []
    problems = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace():
            if not params:
                problems.append(f"{name}:{lineno}: continuation line without a parameter before it")
            else:
                params[-1] = (params[-1][0], f"{params[-1][1]} {line.strip()}")
            continue
        m = PARAM_LINE.match(line)
        if not m:
            problems.append(f"{name}:{lineno}: not a 'name = value' line: {line.strip()!r}")
            continue
        params.append((m.group(1), m.group(2)))
    if problems:
        raise UsageError(problems)
    if not params:
        raise UsageError(f"{name}: no 'name = value' lines")
    return params


def map_types(params: list[tuple[str, str]]) -> dict[str, str]:
    """{map file name: table type} for every map that the main.cf lines name under bouncegen/."""
    found: dict[str, str] = {}
    for _, value in params:
        for typ, name in MAP_REF.findall(value):
            found[name] = typ
    return found
