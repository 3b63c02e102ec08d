"""Where the packaged data lives: templates/, rules/ and sa_plugin/ ship inside the wheel as
bouncegen/templates, bouncegen/rules and bouncegen/sa_plugin (see pyproject.toml); in a source
tree (editable install, tests) they sit beside generator/."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The directory of packaged data ``name`` (templates, rules, sa_plugin)."""
    installed = _PACKAGE / name
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / name
