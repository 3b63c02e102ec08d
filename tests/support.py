"""Test helpers shared by the test modules (imported as `support`; pytest puts tests/ on sys.path).

Engine tests run the real programs: under CI=true a missing engine is a failure, never a skip (a
skipped engine test would make a green CI that tested nothing)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bouncegen import engines

ROOT = Path(__file__).resolve().parent.parent
IN_CI = bool(os.environ.get("CI"))


def need(*programs: str) -> None:
    missing = [p for p in programs if not engines.which(p)]
    if missing:
        msg = f"engine missing: {', '.join(missing)} (scripts/install-engines installs them)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


class Tables:
    """The rendered Postfix tables, queried with the real postmap as main.cf wires them."""

    def __init__(self, out: Path, scratch: Path):
        self.conf = engines.postfix_config_dir(scratch / "pfconf", out / "postfix")
        main = (out / "postfix" / "main.cf").read_text()
        self.map_type = "pcre" if "header_checks = pcre:" in main else "regexp"

    def query(self, message: bytes, table: str) -> list[str]:
        flag = "-hq" if table == "header_checks" else "-bq"
        proc = subprocess.run(
            [engines.require("postmap"), "-c", str(self.conf), flag, "-",
             f"{self.map_type}:{self.conf / 'bouncegen' / table}"],
            input=message.replace(b"\r\n", b"\n"), capture_output=True, timeout=60,
        )
        assert proc.stderr == b"", proc.stderr.decode()
        return proc.stdout.decode("utf-8", "replace").splitlines()

    def rejects(self, message: bytes) -> list[str]:
        hits = self.query(message, "header_checks") + self.query(message, "body_checks")
        return [h for h in hits if "\tREJECT" in h]

