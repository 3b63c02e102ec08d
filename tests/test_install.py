"""bouncegen install into a temporary root, with the real postconf, postmap, postfix check and
spamassassin --lint; and render --check."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from bouncegen import cli, engines
from bouncegen.deploy import files, install, services as svc, validate
from bouncegen.renderer import render
from bouncegen.renderer.inventory import load
from support import need, run

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "inventory.example.toml"

# A main.cf as an admin left it: parameters and a comment that install must not touch.
ADMIN_MAIN_CF = """\
# mx1 -- hand-written, keep this comment
myhostname = mx1.example.org
mydestination = $myhostname, localhost
compatibility_level = 3.6
"""



def admin_main_cf(r: Path) -> str:
    # A queue directory of its own: postfix check creates its missing subdirectories, and two
    # postfix checks on one spool (tests running side by side) race each other.
    return ADMIN_MAIN_CF + f"queue_directory = {r}/spool\ndata_directory = {r}/data\n"


BROKEN_RULE = "\nheader   BG_BROKEN Subject =~ /(unclosed/\nscore    BG_BROKEN 1.0\n"




@pytest.fixture
def root(tmp_path) -> Path:
    """A system root with Postfix's main.cf/master.cf and the stock SpamAssassin .pre files."""
    need("postconf", "postmap", "postfix", "spamassassin")
    r = tmp_path / "root"
    pf = r / "etc/postfix"
    pf.mkdir(parents=True)
    (pf / "main.cf").write_text(admin_main_cf(r))
    (r / "spool").mkdir()
    master = Path("/etc/postfix/master.cf")
    if master.is_file():
        shutil.copy(master, pf / "master.cf")
    sa = r / "etc/mail/spamassassin"
    sa.mkdir(parents=True)
    for pre in engines.stock_pre_files():
        shutil.copy(pre, sa / pre.name)
    (sa / "local.cf").write_text("# site's own settings\nrequired_score 5.0\n")
    return r


def snapshot(r: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under etc/ with its bytes and mtime."""
    return {
        str(p.relative_to(r)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted((r / "etc").rglob("*")) if p.is_file()
    }


def install_beside(root: Path, capsys, admin_lines: str, *args: str) -> tuple[int, str, str]:
    """bouncegen install of the example into ROOT, whose main.cf is the admin's plus ADMIN_LINES."""
    (root / "etc/postfix/main.cf").write_text(admin_main_cf(root) + admin_lines)
    return run(capsys, "install", str(EXAMPLE), "--root", str(root), *args)


def broken_build(tmp_path: Path) -> Path:
    out = tmp_path / "broken"
    render.write_tree(render.render_files(load(EXAMPLE)), out)
    with (out / "spamassassin/72_bouncegen.cf").open("a") as f:
        f.write(BROKEN_RULE)
    return out


@pytest.mark.postfix
@pytest.mark.spamassassin
@pytest.mark.slow
def test_install_twice_second_run_changes_nothing(root, capsys):
    status, out, err = run(capsys, "install", str(EXAMPLE), "--root", str(root))
    assert status == 0, err
    assert "validated: spamassassin --lint, postconf -n, postfix check, postmap" in out
    # .cf .pre .pm, 3 maps + .db, bouncegen/{main.cf,host-params.json}, main.cf, the milter's
    # settings, the lean spamd profile (5 files) and the two units
    assert "installed: 18 files changed" in out
    assert "warning:" not in out
    assert "postfix -c" in out and "reload" in out  # the reload commands are printed

    pf = root / "etc/postfix"
    main = (pf / "main.cf").read_text()
    assert main.startswith(admin_main_cf(root)), "unrelated lines and comments must stay as they were"
    assert "smtpd_data_restrictions = check_sender_access hash:$config_directory/bouncegen/null_sender\n" in main
    assert (root / "etc/mail/spamassassin/72_bouncegen.cf").is_file()
    assert (root / "etc/mail/spamassassin/local.cf").read_text().startswith("# site's own")
    # The indexed map was built and answers as Postfix will ask it.
    q = subprocess.run([engines.require("postmap"), "-c", str(pf), "-q", "<>", f"hash:{pf}/bouncegen/null_sender"],
                       capture_output=True, text=True)
    assert q.stdout.strip() == "reject_multi_recipient_bounce", q.stderr
    backups = list((root / "var/backups/bouncegen").iterdir())
    assert len(backups) == 1 and (backups[0] / "etc/postfix/main.cf").read_text() == admin_main_cf(root)

    before = snapshot(root)
    status, out, err = run(capsys, "install", str(EXAMPLE), "--root", str(root))
    assert status == 0, err
    assert out.startswith("nothing to change"), out
    assert snapshot(root) == before, "a second run must not touch a single file (nor its mtime)"
    assert len(list((root / "var/backups/bouncegen").iterdir())) == 1, "no backup when nothing changes"


@pytest.mark.postfix
@pytest.mark.spamassassin
@pytest.mark.slow
def test_broken_ruleset_is_refused_and_previous_files_stay(root, tmp_path, capsys):
    assert run(capsys, "install", str(EXAMPLE), "--root", str(root))[0] == 0
    before = snapshot(root)

    status, out, err = run(capsys, "install", str(broken_build(tmp_path)), "--root", str(root))
    assert status == 1
    assert "failed validation; nothing was installed" in err
    assert "BG_BROKEN" in err and "spamassassin --lint" in err
    assert snapshot(root) == before
    # What is installed still lints clean with the real spamassassin.
    assert validate.sa_lint(root / "etc/mail/spamassassin", tmp_path / "lint") == []


@pytest.mark.postfix
@pytest.mark.spamassassin
@pytest.mark.slow
def test_failure_while_writing_rolls_back(root, tmp_path, capsys, monkeypatch):
    """A write that fails half-way (disk full, say) leaves the previous files in place."""
    before = snapshot(root)
    real_copy = files.atomic_copy
    failed = []

    def copy_then_fail_on_main_cf(src: Path, dest: Path) -> None:
        if dest.name == "main.cf" and dest.parent.name == "postfix" and not failed:
            failed.append(dest)
            raise OSError(28, "No space left on device")
        real_copy(src, dest)

    monkeypatch.setattr(files, "atomic_copy", copy_then_fail_on_main_cf)
    status, out, err = run(capsys, "install", str(EXAMPLE), "--root", str(root))
    assert status == 1
    assert "rolled back" in err and "No space left on device" in err
    monkeypatch.undo()
    assert {k: v[0] for k, v in snapshot(root).items()} == {k: v[0] for k, v in before.items()}
    assert not (root / "etc/postfix/bouncegen").exists(), "directories created by the install are removed"


@pytest.mark.postfix
@pytest.mark.spamassassin
@pytest.mark.slow
def test_dry_run_writes_nothing(root, capsys):
    before = snapshot(root)
    status, out, err = run(capsys, "install", str(EXAMPLE), "--root", str(root), "--dry-run")
    assert status == 0, err
    assert f"+++ {root}/etc/mail/spamassassin/72_bouncegen.cf" in out
    assert "-compatibility_level" not in out  # unrelated main.cf lines are not in the diff
    assert "dry run: nothing written" in out
    assert snapshot(root) == before
    assert not (root / "var").exists()


@pytest.mark.postfix
@pytest.mark.spamassassin
@pytest.mark.slow
def test_admin_value_is_not_replaced_silently(root, capsys):
    main = root / "etc/postfix/main.cf"
    status, out, err = install_beside(root, capsys, "smtpd_data_restrictions = reject_unauth_pipelining\n")
    assert status == 2
    assert "smtpd_data_restrictions = reject_unauth_pipelining" in err and "--replace-params" in err
    assert not (root / "etc/postfix/bouncegen").exists()

    # Merged by hand (our table first, theirs after): kept as the admin wrote it.
    merged = "check_sender_access hash:$config_directory/bouncegen/null_sender, reject_unauth_pipelining"
    status, out, err = install_beside(root, capsys, f"smtpd_data_restrictions = {merged}\n")
    assert status == 0, err
    assert f"smtpd_data_restrictions = {merged}\n" in main.read_text()
    assert "kept as it is" in out

    # A scalar of ours inside a list of theirs is no merge: in_flow_delay = 0 vs 1s.
    status, out, err = install_beside(root, capsys, f"smtpd_data_restrictions = {merged}\nin_flow_delay = 1s\n")
    assert status == 2 and "in_flow_delay = 1s" in err


@pytest.mark.postfix
@pytest.mark.spamassassin
@pytest.mark.slow
def test_changed_output_updates_our_own_values(root, tmp_path, capsys):
    """A main.cf value that bouncegen itself installed last time is ours to change; a changed
    rule file is replaced and the untouched hash map is not rebuilt."""
    assert run(capsys, "install", str(EXAMPLE), "--root", str(root))[0] == 0
    db = root / "etc/postfix/bouncegen/null_sender.db"
    db_mtime = db.stat().st_mtime_ns
    build = tmp_path / "build"
    render.write_tree(render.render_files(load(EXAMPLE)), build)
    cf = build / "postfix/main.cf"
    cf.write_text(cf.read_text().replace("in_flow_delay = 0\n", "in_flow_delay = 0s\n"))
    sa = build / "spamassassin/72_bouncegen.cf"
    sa.write_text(sa.read_text().replace("score    BG_BOUNCE 5.00", "score    BG_BOUNCE 6.00"))

    status, out, err = run(capsys, "install", str(build), "--root", str(root))
    assert status == 0, err
    assert "-in_flow_delay = 0\n+in_flow_delay = 0s\n" in out
    assert "-score    BG_BOUNCE 5.00\n+score    BG_BOUNCE 6.00\n" in out
    assert "in_flow_delay = 0s\n" in (root / "etc/postfix/main.cf").read_text()
    assert db.stat().st_mtime_ns == db_mtime


def test_missing_engine_exit_3(root, capsys, monkeypatch):
    real_which = engines.which
    monkeypatch.setattr(engines, "which", lambda name: None if name == "postconf" else real_which(name))
    status, out, err = run(capsys, "install", str(EXAMPLE), "--root", str(root))
    assert status == 3
    assert "postconf: not found" in err


def test_bad_source_exit_2(tmp_path, capsys):
    status, out, err = run(capsys, "install", str(tmp_path / "nothing-here"), "--root", str(tmp_path))
    assert status == 2 and "no such inventory or rendered directory" in err
    (tmp_path / "half").mkdir()
    status, out, err = run(capsys, "install", str(tmp_path / "half"), "--root", str(tmp_path))
    assert status == 2 and "not a directory written by 'bouncegen render'" in err


def test_reload_needs_live_root(tmp_path, capsys):
    status, out, err = run(capsys, "install", str(EXAMPLE), "--root", str(tmp_path), "--reload")
    assert status == 2 and "--reload" in err


# ---- render --check ----

@pytest.mark.spamassassin
def test_render_check(tmp_path, capsys):
    out_dir = tmp_path / "build"
    status, out, err = run(capsys, "render", str(EXAMPLE), "-o", str(out_dir), "--check")
    assert status == 1 and "+++ b/spamassassin/72_bouncegen.cf" in out
    assert not out_dir.exists(), "--check writes nothing"

    render.write_tree(render.render_files(load(EXAMPLE)), out_dir)
    status, out, err = run(capsys, "render", str(EXAMPLE), "-o", str(out_dir), "--check")
    assert (status, out) == (0, "") and "up to date" in err

    cf = out_dir / "postfix/main.cf"
    cf.write_text(cf.read_text().replace("in_flow_delay = 0", "in_flow_delay = 1s"))
    (out_dir / "postfix/stale").write_text("left over\n")
    status, out, err = run(capsys, "render", str(EXAMPLE), "-o", str(out_dir), "--check")
    assert status == 1
    assert "-in_flow_delay = 1s\n+in_flow_delay = 0\n" in out
    assert "--- a/postfix/stale\n+++ /dev/null\n" in out
    assert "in_flow_delay = 1s" in cf.read_text(), "--check writes nothing"


def test_render_check_bad_inventory_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[site]\ndomains = []\n")
    status, out, err = run(capsys, "render", str(bad), "--check", "-o", str(tmp_path / "b"))
    assert status == 2


@pytest.mark.postfix
@pytest.mark.spamassassin
@pytest.mark.slow
def test_file_of_an_earlier_rendering_is_removed(root, capsys):
    """A file bouncegen installed earlier (its first line says so) that this rendering no longer
    has is removed, e.g. a .pre that loaded a plugin; the site's own files stay."""
    assert run(capsys, "install", str(EXAMPLE), "--root", str(root))[0] == 0
    old = root / "etc/mail/spamassassin/71_bouncegen_old.cf"
    old.write_text("# spamassassin/71_bouncegen_old.cf: generated by bouncegen 0.0.9; do not edit by hand.\n"
                   "score BG_OLD_RULE 1.0\n")
    status, out, err = run(capsys, "install", str(EXAMPLE), "--root", str(root))
    assert status == 0, err
    assert f"--- {old}\n+++ /dev/null\n" in out
    assert not old.exists()
    assert (root / "etc/mail/spamassassin/local.cf").exists()
    backup = sorted((root / "var/backups/bouncegen").iterdir())[-1]
    assert (backup / "etc/mail/spamassassin/71_bouncegen_old.cf").is_file()
    assert f"saved {old}\n" in (backup / "MANIFEST").read_text()


@pytest.mark.postfix
@pytest.mark.spamassassin
@pytest.mark.slow
def test_warns_when_vbounce_is_not_loaded(root, capsys):
    """Rules inside `ifplugin VBounce` lint clean but never fire when no .pre loads the plugin:
    the install says so (it does not refuse: the site may have meant it)."""
    sa = root / "etc/mail/spamassassin"
    for pre in sa.glob("*.pre"):
        pre.unlink()
    (sa / "init.pre").write_text("# this site loads no plugins\n")
    status, out, err = run(capsys, "install", str(EXAMPLE), "--root", str(root))
    assert status == 0, err
    warning = next(line for line in out.splitlines() if line.startswith("warning:"))
    assert "bouncegen's rules will not fire:" in warning
    assert "BG_BOUNCE" in warning and "loadplugin Mail::SpamAssassin::Plugin::VBounce" in warning


LAB_MASTER_CF = """\
# test lab: smtpd on loopback only, nothing that delivers off this machine
127.0.0.1:{port} inet n - n - 1 smtpd
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
proxymap  unix - - n - - proxymap
showq     unix n - n - - showq
error     unix - - n - - error
anvil     unix - - n - 1 anvil
postlog   unix-dgram n - n - 1 postlogd
"""


@pytest.mark.postfix
@pytest.mark.spamassassin
@pytest.mark.slow
def test_reload_running_postfix_and_spamd(root, tmp_path):
    """--reload's work on a running private Postfix (postfix -c DIR reload) and a private spamd
    (SIGHUP to the PID in its pidfile); systemd is left out so the host's spamd is never touched."""
    need("spamd", "spamc")
    if os.geteuid() != 0:
        pytest.skip("starting a Postfix master needs root")
    # Postfix's daemons drop to the postfix user: the root must be reachable for it, which
    # pytest's tmp_path (under a 0700 directory) is not.
    lab = Path(tempfile.mkdtemp(prefix="bouncegen-reload-"))
    try:
        _reload_lab(root, lab / "root", tmp_path)
    finally:
        shutil.rmtree(lab, ignore_errors=True)


def _reload_lab(template: Path, root: Path, tmp_path: Path) -> None:
    from bouncegen.engines.spamd import Spamd, free_port

    shutil.copytree(template, root)
    (root / "etc/postfix/main.cf").write_text(admin_main_cf(root))
    os.chmod(root.parent, 0o755)
    pf = root / "etc/postfix"
    (pf / "master.cf").write_text(LAB_MASTER_CF.format(port=free_port()))
    (root / "data").mkdir()
    shutil.chown(root / "data", "postfix", "postfix")
    os.chmod(root, 0o755)
    postconf = engines.require("postconf")
    subprocess.run([postconf, "-c", str(pf), "-e", f"maillog_file = {root}/maillog",
                    f"maillog_file_prefixes = {root}", "inet_interfaces = 127.0.0.1", "inet_protocols = ipv4",
                    "mydestination =", "alias_maps =", "alias_database ="], check=True)
    target = install.Target.make(root)
    assert install.install(EXAMPLE, target, say=lambda line: None)

    postfix = engines.require("postfix")
    said: list[str] = []
    started = subprocess.run([postfix, "-c", str(pf), "start"], capture_output=True, text=True, timeout=60)
    try:
        assert started.returncode == 0, started.stderr
        with Spamd(target.sa_dir, children=1) as spamd:
            svc.do_reload(target, said.append, units=(), pidfiles=(tmp_path / "absent.pid", spamd.pidfile))
            assert said[0] == "postfix reload: done"
            assert said[1].startswith("spamd (pid ") and said[1].endswith("sent SIGHUP")
            deadline = time.monotonic() + 30
            while "SIGHUP" not in spamd.log.read_text(errors="replace") and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "SIGHUP" in spamd.log.read_text(errors="replace")
        deadline = time.monotonic() + 10
        while "reload -- version" not in _text(root / "maillog") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "reload -- version" in _text(root / "maillog")
    finally:
        subprocess.run([postfix, "-c", str(pf), "stop"], capture_output=True, timeout=60)
    said.clear()
    svc.do_reload(target, said.append, units=(), pidfiles=())
    assert said[0].startswith("postfix is not running")


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def test_every_command_has_help_with_examples(capsys):
    """bouncegen --help and every subcommand's --help show examples (argparse epilogs, kept as
    written by RawDescriptionHelpFormatter)."""
    import argparse

    top = cli.parser()
    subs = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in [("bouncegen", top)] + sorted(subs.choices.items()):
        assert p.epilog and "example" in p.epilog, f"{name} --help has no examples"
        assert p.formatter_class is argparse.RawDescriptionHelpFormatter, name
        with pytest.raises(SystemExit) as exc:
            cli.main(([] if name == "bouncegen" else [name]) + ["--help"])
        assert exc.value.code == 0
        assert "example" in capsys.readouterr().out


@pytest.mark.postfix
@pytest.mark.spamassassin
@pytest.mark.slow
def test_notes_that_mime_processing_off_silences_nested_header_checks(root, capsys):
    status, out, err = install_beside(root, capsys, "nested_header_checks = regexp:/etc/postfix/attachment_names\n",
                                      "--dry-run")
    assert status == 0, err
    assert "nested_header_checks = regexp:/etc/postfix/attachment_names: with disable_mime_input_processing" in out


# ---- the host's own milters --------------------------------------------------------------------

# A Debian host with OpenDKIM, as its README.Debian and most guides set it up.
OPENDKIM_LINES = """\
milter_default_action = accept
milter_protocol = 6
smtpd_milters = inet:127.0.0.1:8891
non_smtpd_milters = $smtpd_milters
"""
OUR_ENTRY = ("{ inet:127.0.0.1:8897, default_action=tempfail, connect_timeout=10s, command_timeout=10s, "
             "content_timeout=130s }")


@pytest.mark.postfix
@pytest.mark.spamassassin
@pytest.mark.slow
def test_host_milters_kept_and_uninstall_restores_every_line(root, capsys):
    """No --replace-params: bouncegen's entry is added after OpenDKIM's, every other host line
    stays byte for byte; a second install changes nothing; uninstall gives the host main.cf back
    exactly and leaves no bouncegen file (staged: nothing is started)."""
    main = root / "etc/postfix/main.cf"
    host_main = admin_main_cf(root) + OPENDKIM_LINES
    main.write_text(host_main)
    site_files = snapshot(root)
    status, out, err = run(capsys, "install", str(EXAMPLE), "--root", str(root))
    assert status == 0, err
    assert "non_smtpd_milters = $smtpd_milters: locally submitted mail also passes bouncegen's milter" in out
    text = main.read_text()
    assert f"smtpd_milters = inet:127.0.0.1:8891, {OUR_ENTRY}\n" in text
    host_lines = [l for l in host_main.splitlines() if not l.startswith("smtpd_milters")]
    assert all(l in text.splitlines() for l in host_lines)
    added = [l.split(" = ")[0] for l in text.splitlines() if l not in host_main.splitlines() and not l.startswith("#") and l]
    assert not [n for n in added if n.startswith("milter_") or n == "non_smtpd_milters"], added
    unit = root / "etc/systemd/system/bouncegen-milter.service"
    assert unit.is_file() and (root / "etc/bouncegen/bouncegen-milter.conf").is_file()
    assert "units staged in" in out and "systemctl enable --now bouncegen-spamd.service bouncegen-milter.service" in out

    assert run(capsys, "install", str(EXAMPLE), "--root", str(root))[1].startswith("nothing to change")

    status, out, err = run(capsys, "uninstall", "--root", str(root))
    assert status == 0, err
    assert main.read_text() == host_main
    assert snapshot(root).keys() == site_files.keys(), "every bouncegen file is gone, the site's stay"
    assert not (root / "etc/bouncegen").exists() and not (root / "etc/postfix/bouncegen").exists()
    assert run(capsys, "uninstall", "--root", str(root))[1].startswith("nothing to remove")


@pytest.mark.postfix
@pytest.mark.spamassassin
@pytest.mark.slow
def test_global_milter_lines_of_an_earlier_install_are_taken_back(root, tmp_path, capsys):
    """bouncegen < 0.2 set milter_default_action = tempfail and an empty non_smtpd_milters for
    the whole host: the next install puts the host's values back (or removes ours)."""
    main = root / "etc/postfix/main.cf"
    main.write_text(admin_main_cf(root) + "smtpd_milters = inet:127.0.0.1:8891\n")
    old = tmp_path / "old"
    render.write_tree(render.render_files(load(EXAMPLE)), old)
    cf = old / "postfix/main.cf"
    cf.write_text(cf.read_text() + "milter_default_action = tempfail\nnon_smtpd_milters =\n")
    assert run(capsys, "install", str(old), "--root", str(root))[0] == 0
    assert "milter_default_action = tempfail\n" in main.read_text()
    status, out, err = run(capsys, "install", str(EXAMPLE), "--root", str(root))
    assert status == 0, err
    text = main.read_text()
    assert "milter_default_action" not in text and "non_smtpd_milters" not in text
    assert f"smtpd_milters = inet:127.0.0.1:8891, {OUR_ENTRY}\n" in text


def test_live_install_without_systemd_is_refused(capsys):
    """On this host (--root /) install starts the services with systemctl; without systemd as
    PID 1 it refuses before reading anything (exit 2, one line), and writes nothing."""
    from bouncegen.deploy import services
    if services.systemd_running():
        pytest.skip("systemd runs here: this test must never install on a real host")
    status, out, err = run(capsys, "install", str(EXAMPLE))
    assert status == 2 and out == ""
    assert err.startswith("error: systemd is not running on this host") and err.count("\n") == 1, err


@pytest.mark.parametrize("host_value,want", [
    ("", OUR_ENTRY),
    ("inet:127.0.0.1:8891", f"inet:127.0.0.1:8891, {OUR_ENTRY}"),
    # Two host milters, one with settings of its own, separated by a space: order and braces kept.
    ("inet:127.0.0.1:8891 { unix:opendmarc/opendmarc.sock, default_action=accept }",
     f"inet:127.0.0.1:8891, {{ unix:opendmarc/opendmarc.sock, default_action=accept }}, {OUR_ENTRY}"),
    # Ours already there, with older settings: replaced where the host's list ends, not doubled.
    ("{ inet:127.0.0.1:8897, default_action=accept }, inet:127.0.0.1:8891",
     f"inet:127.0.0.1:8891, {OUR_ENTRY}"),
])
def test_smtpd_milters_merge_and_unmerge(host_value, want):
    from bouncegen.deploy import maincf
    current = {"smtpd_milters": host_value} if host_value else {}
    previous = {"smtpd_milters": OUR_ENTRY}
    sets, removes, conflicts, notes, host = maincf.merge([("smtpd_milters", OUR_ENTRY)], current, previous, {},
                                                         Path("main.cf"), replace_params=False)
    assert (sets, removes, conflicts) == ([("smtpd_milters", want)], [], [])
    again = maincf.merge([("smtpd_milters", OUR_ENTRY)], {"smtpd_milters": want}, previous, host,
                         Path("main.cf"), replace_params=False)
    assert again[0] == [], "idempotent"
    sets, removes, _ = maincf.unmerge(previous, {"smtpd_milters": want}, host, Path("main.cf"))
    theirs = maincf.without_ours(want, [OUR_ENTRY])
    if theirs:
        assert (sets, removes) == ([("smtpd_milters", ", ".join(theirs))], [])
    else:
        assert (sets, removes) == ([], ["smtpd_milters"])


@pytest.mark.postfix
@pytest.mark.spamassassin
@pytest.mark.slow
def test_ledger_settings_are_not_world_readable(root, tmp_path, capsys):
    """The ledger's URL may carry a Redis password: its settings file is installed 0640, in the
    SpamAssassin directory and in the lean spamd's profile alike; the rules stay 0644."""
    site = tmp_path / "site.toml"
    site.write_text(EXAMPLE.read_text() + '[ledger]\nstore = "redis://:s3cret@127.0.0.1:6390/1"\n'
                    'key_file = "/etc/bouncegen/ledger.key"\n')
    status, out, err = run(capsys, "install", str(site), "--root", str(root))
    assert status == 0, err
    for secret in ("etc/mail/spamassassin/72_bouncegen_ledger.cf", "etc/bouncegen/spamd/rules/72_bouncegen_ledger.cf"):
        path = root / secret
        assert "s3cret" in path.read_text()
        assert path.stat().st_mode & 0o777 == 0o640, secret
    assert (root / "etc/mail/spamassassin/72_bouncegen.cf").stat().st_mode & 0o777 == 0o644
    assert "s3cret" not in out + err


# The lines of Debian 12's /etc/amavis/conf.d/20-debian_defaults (amavisd-new 1:2.13.0-3) that
# decide what amavis does with spam; the real file is read in tests/test_amavis.py.
DEBIAN_AMAVIS_DEFAULTS = """\
use strict;
$sa_spam_subject_tag = '***SPAM*** ';
$sa_tag_level_deflt  = 2.0;  # add spam info headers if at, or above that level
$sa_tag2_level_deflt = 6.31; # add 'spam detected' headers at that level
$sa_kill_level_deflt = 6.31; # triggers spam evasive actions
$final_spam_destiny       = D_PASS;
1;
"""


@pytest.mark.spamassassin
@pytest.mark.slow
@pytest.mark.parametrize("points, verdict", [(None, "warning: amavisd-new: one bouncegen verdict adds 5 points, "
                                                    "below the kill level 6.31"),
                                             (6.31, "amavisd-new: one bouncegen verdict adds 6.31 points: it reaches "
                                                    "the kill level 6.31")])
def test_install_reads_amavis_levels(root, capsys, tmp_path, points, verdict):
    """On a host with amavisd-new, install reads its levels, says whether one verdict reaches
    them (policy.points), and leaves /etc/amavis untouched."""
    conf_d = root / "etc/amavis/conf.d"
    conf_d.mkdir(parents=True)
    (conf_d / "20-debian_defaults").write_text(DEBIAN_AMAVIS_DEFAULTS)
    (conf_d / "50-user").write_text("use strict;\n# $sa_kill_level_deflt = 3;\n1;\n")
    (conf_d / "50-user~").write_text("$sa_kill_level_deflt = 99;\n")  # an editor's leftover: not read
    before = {p: p.read_bytes() for p in conf_d.iterdir()}
    inv = EXAMPLE
    if points is not None:
        inv = tmp_path / "amavis.toml"
        inv.write_text(EXAMPLE.read_text().replace('scores = "block"\n', f'scores = "block"\npoints = {points}\n'))
    status, out, err = run(capsys, "install", str(inv), "--root", str(root), "--dry-run")
    assert status == 0, err
    assert (f"amavisd-new: {conf_d}: $sa_tag2_level_deflt = 6.31 (20-debian_defaults), $sa_kill_level_deflt = 6.31 "
            "(20-debian_defaults), $final_spam_destiny = D_PASS; bouncegen changed nothing") in out
    assert verdict in out
    assert "@bypass_spam_checks_maps is not set" in out
    assert {p: p.read_bytes() for p in conf_d.iterdir()} == before


def test_amavis_level_that_is_no_plain_number(tmp_path):
    """An expression is not guessed at: the level is unknown and install says so."""
    from bouncegen.deploy import amavis
    from bouncegen.deploy.layout import Target

    conf_d = tmp_path / "etc/amavis/conf.d"
    conf_d.mkdir(parents=True)
    (conf_d / "20-debian_defaults").write_text(DEBIAN_AMAVIS_DEFAULTS)
    (conf_d / "50-user").write_text("$sa_kill_level_deflt = $sa_tag2_level_deflt + 1;\n"
                                    "@bypass_spam_checks_maps = (\\%bypass_spam_checks);\n")
    found = amavis.detect(Target.make(tmp_path))
    assert found.levels == {"sa_tag2_level_deflt": 6.31, "sa_kill_level_deflt": None}
    lines = amavis.report(found, 6.31)
    assert any(line.startswith("warning: amavisd-new: $sa_kill_level_deflt is not a plain number") for line in lines)
    assert not any("bypass" in line for line in lines)
    assert amavis.detect(Target.make(tmp_path / "nothing")) is None
