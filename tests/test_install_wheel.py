"""`pip install .` (not editable) must ship templates and rule data inside the wheel, so that the
installed command renders from any working directory."""

from __future__ import annotations

import subprocess
import sys
import sysconfig

import pytest

import bouncegen
from support import ROOT


@pytest.mark.slow
def test_wheel_renders_from_another_directory(tmp_path):
    wheel_dir = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheel_dir), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = wheel_dir.glob("bouncegen-*.whl")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    assert (target / "bouncegen" / "templates" / "postfix" / "header_checks.j2").is_file()
    assert list((target / "bouncegen" / "rules").glob("*.toml"))

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "site.toml").write_text((ROOT / "inventory.example.toml").read_text())
    # Only the wheel's bouncegen and the dependencies: not the source tree.
    deps = sysconfig.get_paths()["purelib"]
    env = {"PYTHONPATH": f"{target}:{deps}", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-I", "-c",
                           "import sys; sys.path[:0] = sys.argv[1].split(':'); import bouncegen.cli as c; "
                           "sys.exit(c.main(['render', 'site.toml', '-o', 'out', '--no-lint']))",
                           env["PYTHONPATH"]],
                          cwd=elsewhere, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert str(target) in subprocess.run(
        [sys.executable, "-I", "-c", "import sys; sys.path[:0] = sys.argv[1].split(':'); import bouncegen; print(bouncegen.__file__)",
         env["PYTHONPATH"]], cwd=elsewhere, capture_output=True, text=True).stdout
    got = (elsewhere / "out" / "postfix" / "header_checks").read_text().replace("render site.toml", "render inventory.example.toml")
    assert got == (ROOT / "tests" / "reference" / "postfix" / "header_checks").read_text().replace("0.1.0", bouncegen.__version__)
