"""Merging bouncegen's main.cf lines into the host's, and taking them out again.

Most parameters are bouncegen's own values (its tables, in_flow_delay): an earlier install's
value (remembered in bouncegen/main.cf) is updated freely, a value the admin set is refused
unless --replace-params, and a list the admin merged by hand is kept.

``smtpd_milters`` is a list the host shares with its other milters (OpenDKIM, OpenDMARC, rspamd):
bouncegen adds its one entry (``{ inet:…, default_action=tempfail, … }``, its settings inside
the braces) at the end and keeps every other entry where it is, so no ``--replace-params`` is
ever needed for it; uninstall removes only that entry. The host's values of everything else
bouncegen set are kept in bouncegen/host-params.json, and uninstall writes them back.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Callable

from .. import engines
from ..errors import LintError
from .files import read_or_none
from .layout import HOST_STATE, PARAM_LINE, STATE_FILE
from .source import parse_main_cf
from .validate import stderr_lines

# Lists where bouncegen's entry sits among the host's: smtpd_milters (the MX milter; the relay
# recorder) and non_smtpd_milters (the relay recorder, for mail from sendmail(1) and pickup).
SHARED_LISTS = ("smtpd_milters", "non_smtpd_milters")
_SMTPD_MILTERS_REF = ("$smtpd_milters", "${smtpd_milters}", "$(smtpd_milters)")


def elements(value: str) -> list[str]:
    """A main.cf value as Postfix splits a list: on commas and white space."""
    return [e for e in re.split(r"[\s,]+", value) if e]


def milter_entries(value: str) -> list[str]:
    """A milter list split into its entries, a ``{ … }`` group (a milter with its own settings)
    being one entry: 'inet:a:1, { inet:b:2, default_action=accept } unix:/c' -> 3 entries."""
    out, depth, cur = [], 0, ""
    for ch in value:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if depth == 0 and (ch.isspace() or ch == ","):
            if cur.strip():
                out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def milter_address(entry: str) -> str:
    """The address of one entry: 'inet:…' itself, or the first item inside '{ … }'."""
    if entry.startswith("{"):
        inner = entry.strip("{} \t")
        return re.split(r"[\s,]+", inner, maxsplit=1)[0]
    return entry


def without_ours(value: str, ours: list[str]) -> list[str]:
    """The entries of a milter list that are not bouncegen's (by the address of OURS)."""
    addresses = {milter_address(e) for e in ours}
    return [e for e in milter_entries(value) if milter_address(e) not in addresses]


def postconf_n(conf: Path) -> dict[str, str]:
    proc = engines.run([engines.require("postconf"), "-c", str(conf), "-n"])
    out = {}
    for line in proc.stdout.splitlines():
        m = PARAM_LINE.match(line)
        if m and m.group(1) != "config_directory":  # postconf -c reports it, main.cf need not set it
            out[m.group(1)] = m.group(2)
    return out


def postconf_edit(conf: Path, sets: list[tuple[str, str]], removes: list[str]) -> None:
    """postconf -e one parameter per call (postconf -e appends new parameters in hash order, and
    main.cf reads best in the rendered order; an existing parameter is edited where it stands),
    postconf -X for those to remove."""
    postconf = engines.require("postconf")
    for n, v in sets:
        _ok(engines.run([postconf, "-c", str(conf), "-e", f"{n} = {v}"]), "postconf -e")
    if removes:
        _ok(engines.run([postconf, "-c", str(conf), "-X", *removes]), "postconf -X")


def _ok(proc, what: str) -> None:
    if proc.returncode != 0:
        raise LintError([f"{what}: {w}" for w in stderr_lines(proc.stderr)] or [f"{what}: exit status {proc.returncode}"])


def load_host_state(path: Path) -> dict[str, str | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): (None if v is None else str(v)) for k, v in data.items()} if isinstance(data, dict) else {}


def dump_host_state(state: dict[str, str | None]) -> str:
    return json.dumps(dict(sorted(state.items())), indent=2) + "\n"


def merge(params: list[tuple[str, str]], current: dict[str, str], previous: dict[str, str],
          host: dict[str, str | None], main_cf: Path, *, replace_params: bool):
    """Decide the main.cf edits of an install.

    Returns (sets, removes, conflicts, notes, host): the (name, value) pairs to set, the names to
    remove (parameters an earlier install set that this rendering no longer has, still at our
    value), the admin's values that stand in the way, notes for the admin, and the updated
    record of the host's own values."""
    sets: list[tuple[str, str | None]] = []
    notes: list[str] = []
    conflicts: list[str] = []
    host = dict(host)
    for name, value in params:
        if name in SHARED_LISTS:
            ours = milter_entries(value)
            theirs = without_ours(current.get(name, ""), ours + milter_entries(previous.get(name, "")))
            if name == "non_smtpd_milters" and "smtpd_milters" in dict(params) and \
                    any(e in _SMTPD_MILTERS_REF for e in theirs):
                # The host's non_smtpd_milters names smtpd_milters, which gets our entry: adding
                # it here too would run it twice on every locally submitted message.
                notes.append(f"{main_cf}: {name} = {current[name]}: bouncegen's entry in smtpd_milters "
                             "serves locally submitted mail too; kept as it is")
                continue
            if name not in host:  # the host's own list, without any entry of ours
                host[name] = ", ".join(theirs) if theirs else None
            merged = ", ".join(theirs + ours)
            if current.get(name) != merged:
                sets.append((name, merged))
            if theirs and current.get(name) != merged:
                notes.append(f"{main_cf}: {name}: bouncegen's milter added after the host's "
                             f"{len(theirs)} milter{'s' if len(theirs) != 1 else ''}, which keep their settings")
            continue
        if name not in current or current[name] in (value, previous.get(name)):
            if name not in host and current.get(name) != previous.get(name):
                host[name] = current.get(name)  # what uninstall puts back (None: not set)
            if current.get(name) != value:
                sets.append((name, value))
            continue
        ours, theirs = elements(value), elements(current[name])
        if len(theirs) > len(ours) and all(e in theirs for e in ours):
            # The admin merged our list into their own (our tables or restriction among theirs).
            notes.append(f"{main_cf}: {name} holds bouncegen's value in a list of its own: kept as it is")
            continue
        conflicts.append(f"{main_cf}: {name} = {current[name]}\n    bouncegen would set: {name} = {value}")
        if replace_params:
            host.setdefault(name, current[name])
            sets.append((name, value))
    # Parameters of an earlier install that this rendering no longer sets (the global milter_*
    # lines of bouncegen < 0.2, say): back to the host's value where they still hold ours.
    rendered = {n for n, _ in params}
    removes = []
    for name, value in previous.items():
        if name in rendered or current.get(name) != value:
            continue
        if host.get(name) is not None:
            sets.append((name, host[name]))
        else:
            removes.append(name)
        host.pop(name, None)
    return sets, removes, conflicts, notes, host


def unmerge(previous: dict[str, str], current: dict[str, str], host: dict[str, str | None], main_cf: Path):
    """The main.cf edits of an uninstall: (sets, removes, notes)."""
    sets: list[tuple[str, str | None]] = []
    removes: list[str] = []
    notes: list[str] = []
    for name, value in previous.items():
        if name in SHARED_LISTS:
            theirs = without_ours(current.get(name, ""), milter_entries(value))
            if theirs:
                sets.append((name, ", ".join(theirs)))
            elif host.get(name):
                sets.append((name, host[name]))
            elif name in current:
                removes.append(name)
            continue
        if name not in current:
            continue
        if current[name] != value:
            notes.append(f"{main_cf}: {name} = {current[name]}: changed since bouncegen set it: left as it is")
        elif host.get(name) is not None:
            sets.append((name, host[name]))
        else:
            removes.append(name)
    return sets, removes, notes


def restored_main_cf(main_cf: Path, state_dir: Path, scratch: Path, say: Callable[[str], None]) -> Path | None:
    """main.cf with the entries one role of bouncegen wrote taken out (the host's own values back,
    from the state that role's install recorded in STATE_DIR), written under SCRATCH: its path, or
    None when nothing was recorded or nothing changes. Shared by the MX and the relay uninstall."""
    previous_text = read_or_none(state_dir / STATE_FILE)
    if not previous_text or not main_cf.is_file():
        return None
    previous = dict(parse_main_cf(previous_text, str(state_dir / STATE_FILE)))
    host = load_host_state(state_dir / HOST_STATE)
    shutil.copy2(main_cf, scratch / "main.cf")
    (scratch / "master.cf").touch()
    sets, removes, notes = unmerge(previous, postconf_n(scratch), host, main_cf)
    for note in notes:
        say(f"note: {note}")
    postconf_edit(scratch, sets, removes)
    if read_or_none(scratch / "main.cf") == read_or_none(main_cf):
        return None
    return scratch / "main.cf"
