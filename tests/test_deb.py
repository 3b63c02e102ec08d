"""The Debian package (issue 17): ``make deb`` on a copy of the tree builds
bouncegen_<version>_all.deb with Debian's own tools, lintian finds no error nor warning in it, and
it holds what docs/deploying.md promises: the command and its manual page (written from the
parser), the units (neither enabled nor started), the system user and /var/lib/bouncegen made by
postinst and taken away on purge.

About 30 s: one build (dpkg-buildpackage with pybuild, ~10-20 s) and one lintian run (~5-10 s),
shared by the tests of this module."""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import bouncegen
from bouncegen import cli
from support import IN_CI, ROOT

pytestmark = pytest.mark.slow

TOOLS = ("dpkg-buildpackage", "dh", "lintian", "dpkg-deb")
UNITS = ("bouncegen-milter.service", "bouncegen-spamd.service", "bouncegen-relay.service")
# The python3 packages of Debian 12 the package runs on (pyproject.toml's floors match them).
DEBIAN_DEPENDS = ("python3-jinja2", "python3-email-validator", "python3-redis", "python3-rich", "python3-milter",
                  "adduser")
# Optional: only --html draws charts; an MX need not carry matplotlib's 40 MB.
DEBIAN_RECOMMENDS = ("python3-matplotlib",)
DEB_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def _copy_tree(dest: Path) -> None:
    """The repository as a fresh clone has it: the files git knows, nothing built."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, files):
        src = ROOT / os.fsdecode(name)
        if src.is_file():
            (dest / src.relative_to(ROOT)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / src.relative_to(ROOT))


@pytest.fixture(scope="module")
def deb(tmp_path_factory) -> Path:
    missing = [t for t in TOOLS if not shutil.which(t, path=DEB_PATH)]
    if missing:
        msg = f"make deb needs {', '.join(missing)} (scripts/install-engines installs them)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    src = tmp_path_factory.mktemp("src")
    out = tmp_path_factory.mktemp("out")
    _copy_tree(src)
    proc = subprocess.run(["make", "--no-print-directory", "deb", f"DEB_DIR={out}"], cwd=src,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "lintian: no errors" in proc.stdout
    built = sorted(p.name for p in out.iterdir())
    assert built == [f"bouncegen_{bouncegen.__version__}_all.deb"], built
    assert not (src / "debian" / "bouncegen").exists(), "the build left debris in the tree"
    return out / built[0]


def _field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True).stdout.strip()


def test_lintian_finds_no_error_and_no_warning(deb):
    proc = subprocess.run(["lintian", "--tag-display-limit", "0", str(deb)], capture_output=True, text=True)
    tags = [line for line in proc.stdout.splitlines() if line.startswith(("E:", "W:"))]
    assert tags == [], "\n".join(tags)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_man_page_is_written_from_the_parser(deb, tmp_path):
    """bouncegen(1), built from cli.parser() (debian/manpage.py): every subcommand and option of
    `bouncegen --help` is in it, and man renders it without a warning (what lintian's
    no-manual-page asked for)."""
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    page = tmp_path / "usr/share/man/man1/bouncegen.1.gz"
    text = gzip.decompress(page.read_bytes()).decode()
    assert text.splitlines()[:3] == ['.TH bouncegen "1" Manual', ".SH NAME",
                                     "bouncegen \\- stop joe-job backscatter at the Postfix MX"]
    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        assert f".SH OPTIONS 'bouncegen {name}'" in text, name
        for action in parser._actions:
            for opt in ([] if action.help == argparse.SUPPRESS else action.option_strings):
                if opt not in ("-h", "--help"):
                    assert opt.replace("-", "\\-") in text, (name, opt)
    if shutil.which("man"):
        proc = subprocess.run(["man", "--warnings", "-l", "-Tutf8", str(page)], capture_output=True, text=True,
                              env=os.environ | {"MANWIDTH": "80", "LC_ALL": "C.UTF-8"})
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        assert "bouncegen render" in proc.stdout


def test_depends_on_debian_python3_packages(deb):
    depends = {d.strip().split(" ")[0] for d in _field(deb, "Depends").split(",")}
    assert set(DEBIAN_DEPENDS) <= depends, depends
    assert "python3-matplotlib" not in depends, depends
    recommends = {d.strip().split(" ")[0] for d in _field(deb, "Recommends").split(",")}
    assert set(DEBIAN_RECOMMENDS) <= recommends, recommends
    assert _field(deb, "Version") == bouncegen.__version__
    assert _field(deb, "Architecture") == "all"


def test_ships_the_command_and_the_units(deb, tmp_path):
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    script = (tmp_path / "usr/bin/bouncegen").read_text()
    assert script.startswith("#! /usr/bin/python3") or script.startswith("#!/usr/bin/python3"), script[:40]
    assert (tmp_path / "usr/lib/python3/dist-packages/bouncegen/templates/postfix/header_checks.j2").is_file()
    for unit in UNITS:
        text = (tmp_path / "lib/systemd/system" / unit).read_text()
        assert "generated by bouncegen" in text.splitlines()[0]
        exec_start = [line for line in text.splitlines() if line.startswith("ExecStart=")]
        assert exec_start and all(line.split("=", 1)[1].split()[0] in ("/usr/bin/bouncegen", "/usr/sbin/spamd")
                                  for line in exec_start), exec_start


def test_maintainer_scripts_create_and_purge_but_start_nothing(deb, tmp_path):
    subprocess.run(["dpkg-deb", "-e", str(deb), str(tmp_path)], check=True)
    postinst = (tmp_path / "postinst").read_text()
    postrm = (tmp_path / "postrm").read_text()
    assert "adduser --system --group" in postinst and "bouncegen" in postinst
    assert "install -d -o root -g bouncegen -m 2770 /var/lib/bouncegen" in postinst
    # dh_installsystemd --no-enable --no-start: systemd learns the units, nothing is enabled
    # or started on a fresh install (only a restart of what was running, on upgrade).
    assert "deb-systemd-invoke start" not in postinst and "systemctl start" not in postinst
    lines = postinst.splitlines()
    for i, line in enumerate(lines):
        if "deb-systemd-helper enable" in line:  # only re-enabling what the admin had enabled
            assert "was-enabled" in lines[i - 2], lines[i - 2]
    assert "rm -rf /var/lib/bouncegen" in postrm and "deluser --system" in postrm
