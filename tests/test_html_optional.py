"""matplotlib is optional (the [html] extra; the .deb recommends python3-matplotlib): without it,
`report --html`, `check --html` and the storm's --html fail at once in one line naming the
package and how to install it (exit 2), before any work and with nothing written; everything
else runs. matplotlib's absence is real, not mocked: a child Python whose import system refuses
matplotlib only (a meta-path finder), running the installed bouncegen. The pages themselves are
drawn with matplotlib in test_report.py, test_report_lab.py and test_check.py. ~2 s, no engine.

pymilter (the [milter] extra; python3-milter) likewise: only `bouncegen milter` needs it, and
without it that command says so in one line (exit 3, as for a missing engine)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from support import ROOT

# Any import of the package given first (or a submodule) fails as it does when the package is not
# installed; the rest of the arguments run as `python -m MODULE ARGS`.
WITHOUT = """
import runpy, sys
blocked = sys.argv[1]
class Without:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Without())
sys.argv = sys.argv[2:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""
ERROR = ("error: --html: the charts need matplotlib, which is not installed: "
         "apt install python3-matplotlib, or pip install 'bouncegen[html]'")


def _run(module: str, *args: str, cwd, without: str = "matplotlib") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT, without, module, *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_the_blocker_hides_matplotlib_and_only_it(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import jinja2\ntry:\n    import matplotlib.figure\nexcept ImportError as e:\n"
                     "    print('absent', e.name)\n")
    proc = _run("probe", cwd=tmp_path)
    assert proc.stdout.strip() == "absent matplotlib", proc.stderr


@pytest.mark.parametrize("argv", [
    ("bouncegen", "report", "--html", "page.html", "mail.log"),
    ("bouncegen", "check", "--inventory", str(ROOT / "corpus/inventory.toml"), "--corpus", str(ROOT / "corpus"),
     "--html", "page.html"),
    ("bouncegen.storm", "--html", "page.html"),
], ids=["report", "check", "storm"])
def test_html_without_matplotlib_is_one_clear_line(argv, tmp_path):
    (tmp_path / "mail.log").write_text("")
    proc = _run(*argv, cwd=tmp_path)
    assert (proc.returncode, proc.stderr.splitlines()) == (2, [ERROR]), proc.stderr
    assert proc.stdout == "" and not (tmp_path / "page.html").exists()


def test_report_without_html_needs_no_matplotlib(tmp_path):
    (tmp_path / "mail.log").write_text("")
    proc = _run("bouncegen", "report", "--json", "mail.log", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("{"), proc.stderr


def test_milter_without_pymilter_is_one_clear_line(tmp_path):
    proc = _run("bouncegen", "milter", "--config", str(ROOT / "tests/reference/milter/bouncegen-milter.conf"),
                "--log", "stderr", cwd=tmp_path, without="Milter")
    assert (proc.returncode, proc.stderr.splitlines()[-1:]) == (
        3, ["error: bouncegen milter needs pymilter: apt install python3-milter, or pip install 'bouncegen[milter]'"]), proc.stderr
    assert "Traceback" not in proc.stderr
