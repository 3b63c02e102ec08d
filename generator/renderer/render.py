"""Render an inventory through the templates into an output directory.

One strict Jinja2 environment; every output file is rendered into a temporary directory, linted
with the real tools, and only then moved into place, so that a failure leaves the previous output
untouched. Output depends only on the inventory's content and bouncegen's version.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import jinja2

from .. import __version__, defaults, facts
from ..errors import TemplateError
from ..resources import data_dir
from . import escape, lint, netpatterns
from .inventory import Inventory
from .rules import Family, cancelled_verdicts, load_families, verdict_precedence, verdict_scores


def _relay_role(inv: Inventory) -> bool:
    """Does an outbound relay run bouncegen's relay-role milter (ledger recording, BATV signing)?"""
    return inv.ledger is not None or inv.batv is not None


@dataclass(frozen=True)
class Output:
    path: str  # relative to the output directory
    template: str
    map_type: Callable[[Inventory], str] | None = None  # Postfix table type, for lint
    when: Callable[[Inventory], bool] = lambda inv: True


# Rendered SpamAssassin files that hold site secrets (a Redis password in the ledger's URL):
# installed with a restricted mode, never carried by an sa-update channel.
LEDGER_CF = "72_bouncegen_ledger.cf"
# Where the plugin finds the BATV keys: installed like the ledger's settings (0640), never in a
# channel (it names a site's key file).
BATV_CF = "72_bouncegen_batv.cf"
# The relay recorder's settings: the store URL may carry a Redis password.
RELAY_CONF = "bouncegen-relay.conf"
SITE_SECRETS = (LEDGER_CF, BATV_CF, RELAY_CONF)

POSTFIX_QUEUE_DIR = "/var/spool/postfix"  # Debian's and upstream's queue_directory

# The output contract (docs/design.md, "Interfaces others rely on"): one template per file, in this order.
OUTPUTS = (
    Output("spamassassin/72_bouncegen.cf", "spamassassin/72_bouncegen.cf.j2"),
    # The relay-rescue plugin and the .pre that loads it (by a path relative to the .pre).
    Output("spamassassin/72_bouncegen.pre", "spamassassin/72_bouncegen.pre.j2"),
    Output("spamassassin/BouncegenRescue.pm", "spamassassin/BouncegenRescue.pm.j2"),
    # Our own DKIM signature as evidence ([dkim]): its plugin, loaded by the same .pre.
    Output("spamassassin/BouncegenDKIM.pm", "spamassassin/BouncegenDKIM.pm.j2", when=lambda inv: inv.dkim is not None),
    # The ledger's address and key file: site secrets, never in a channel (SITE_SECRETS).
    Output(f"spamassassin/{LEDGER_CF}", f"spamassassin/{LEDGER_CF}.j2", when=lambda inv: inv.ledger is not None),
    # The BATV domains and key file for the plugin (post-queue rescue by a valid tag).
    Output(f"spamassassin/{BATV_CF}", f"spamassassin/{BATV_CF}.j2", when=lambda inv: inv.batv is not None),
    Output("postfix/header_checks", "postfix/header_checks.j2", map_type=lambda inv: inv.policy.map_type),
    Output("postfix/body_checks", "postfix/body_checks.j2", map_type=lambda inv: inv.policy.map_type),
    Output("postfix/null_sender", "postfix/null_sender.j2", map_type=lambda inv: "hash"),
    # BATV: prvs= recipients of the BATV domains pass smtpd's recipient check (the milter judges
    # the tag) and are delivered to the plain address.
    Output("postfix/batv_recipients", "postfix/batv_recipients.j2", map_type=lambda inv: inv.policy.map_type,
           when=lambda inv: inv.batv is not None),
    Output("postfix/main.cf", "postfix/main.cf.j2"),
    Output("milter/bouncegen-milter.conf", "milter/bouncegen-milter.conf.j2"),
    # What an outbound relay needs to record the Message-IDs it sends and sign the envelope
    # senders: only with a [ledger] or a [batv].
    Output("relay/main.cf", "relay/main.cf.j2", when=lambda inv: _relay_role(inv)),
    Output("relay/bouncegen-relay.conf", "relay/bouncegen-relay.conf.j2", when=lambda inv: _relay_role(inv)),
    Output("relay/bouncegen-relay.service", "relay/bouncegen-relay.service.j2", when=lambda inv: _relay_role(inv)),
    Output("systemd/bouncegen-milter.service", "systemd/bouncegen-milter.service.j2"),
    # The lean scanning profile of bouncegen's own spamd (installed to /etc/bouncegen/spamd/):
    # rules/ for --configpath (the ruleset and the profile's settings, no stock rule file),
    # site/ for --siteconfigpath (only the plugins the ruleset needs, and the rescue plugin).
    Output("spamd/rules/10_bouncegen_lean.cf", "spamd/10_bouncegen_lean.cf.j2"),
    Output("spamd/rules/72_bouncegen.cf", "spamassassin/72_bouncegen.cf.j2"),
    Output(f"spamd/rules/{LEDGER_CF}", f"spamassassin/{LEDGER_CF}.j2", when=lambda inv: inv.ledger is not None),
    Output(f"spamd/rules/{BATV_CF}", f"spamassassin/{BATV_CF}.j2", when=lambda inv: inv.batv is not None),
    Output("spamd/site/00_bouncegen_lean.pre", "spamd/00_bouncegen_lean.pre.j2"),
    Output("spamd/site/72_bouncegen.pre", "spamassassin/72_bouncegen.pre.j2"),
    Output("spamd/site/BouncegenRescue.pm", "spamassassin/BouncegenRescue.pm.j2"),
    Output("spamd/site/BouncegenDKIM.pm", "spamassassin/BouncegenDKIM.pm.j2", when=lambda inv: inv.dkim is not None),
    Output("systemd/bouncegen-spamd.service", "systemd/bouncegen-spamd.service.j2"),
)


def postfix_address(socket: str) -> str:
    """A milter's address as Postfix names it: a unix socket in Postfix's queue directory
    (/var/spool/postfix/, where a chrooted smtpd or cleanup can reach it) relative to that
    directory; any other address as it is."""
    prefix = f"unix:{POSTFIX_QUEUE_DIR}/"
    return f"unix:{socket[len(prefix):]}" if socket.startswith(prefix) else socket


def socket_dir(socket: str) -> str:
    """A unix-socket milter writes its socket's directory (ReadWritePaths= in its unit)."""
    return str(Path(socket[5:]).parent) if socket.startswith("unix:") else ""


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(escape.FILTERS)
    env.filters["address_fragment"] = netpatterns.address_fragment
    env.filters["points"] = points
    env.globals["sa_plugin_source"] = sa_plugin_source
    env.globals["sa_plugin_module"] = sa_plugin_module
    env.globals["sa_plugin_split"] = sa_plugin_split
    env.globals["sa_module_end"] = SA_MODULE_END
    return env


def points(value: float) -> str:
    """Points as the milter's settings write them: one decimal ("5.0"), two when a verdict's
    points need them ("6.31", policy.points), so a verdict is never rounded below the level it
    must reach. Labels below one point keep one decimal, as they always had (they never decide)."""
    return "%.1f" % value if value < 1 or round(value, 1) == value else "%.2f" % value


# Ends each module bundled into a rendered plugin (templates/spamassassin/_plugin.pm.j2): a
# quoted here-document, so a module's text is taken as it is written.
SA_MODULE_END = "__BOUNCEGEN_MODULE__"


def sa_plugin_source(name: str) -> str:
    """The text of a packaged SpamAssassin plugin or module (sa_plugin/NAME, the path of its
    package), rendered verbatim into the output."""
    return (data_dir("sa_plugin") / name).read_text(encoding="utf-8").rstrip("\n")


def sa_plugin_module(name: str) -> str:
    """The text of a module bundled into a plugin. It sits in a here-document: its end marker
    would end it early, and POD there would show in perldoc as the plugin's own."""
    text = sa_plugin_source(name)
    if re.search(rf"^(?:{SA_MODULE_END}$|=[a-z])", text, re.M):
        raise TemplateError(f"sa_plugin/{name}: a bundled module holds POD or the line {SA_MODULE_END}")
    return text


def sa_plugin_split(name: str) -> tuple[str, str]:
    """A plugin's text cut before its package line: its comments and POD, then its code (the
    modules it uses are bundled in between)."""
    text = sa_plugin_source(name)
    m = re.search(r"^package ", text, re.M)
    if m is None:
        raise TemplateError(f"sa_plugin/{name}: no package line")
    return text[:m.start()].rstrip("\n"), text[m.start():]


# A host name's top-level domain as written in a uri rule's regular expression ("boxbe\.com").
_URI_TLD = re.compile(r"[a-z0-9]\\\.([a-z]{2,63})(?![a-z0-9])", re.I)


def uri_tlds(families: tuple[Family, ...]) -> list[str]:
    """The TLDs of the host names the uri rules name, for the lean profile's util_rb_tld."""
    return sorted({m.lower() for f in families for r in f.rules if r.type == "uri" for m in _URI_TLD.findall(r.test)})


def context(inv: Inventory, families: tuple[Family, ...]) -> dict:
    return {
        "inv": inv,
        "policy": inv.policy,
        "families": families,
        "version": __version__,
        "facts": facts.for_templates(),
        "defaults": defaults.for_templates(),
        "scores": verdict_scores(families, inv.policy.scores, ledger=inv.ledger is not None,
                                 points=inv.policy.points),
        "cancelled_verdicts": cancelled_verdicts(families),
        "precedence": verdict_precedence(families),
        "relay_milter_socket": inv.milter.relay_socket,
        "relay_milter_postfix_address": postfix_address(inv.milter.relay_socket),
        "relay_milter_socket_dir": socket_dir(inv.milter.relay_socket),
        # Where the relay recorder writes (ReadWritePaths= of its unit): an SQLite ledger's directory.
        "ledger_sqlite_dir": (str(Path(inv.ledger.store[len("sqlite:"):]).parent)
                              if inv.ledger is not None and inv.ledger.store.startswith("sqlite:") else ""),
        "uri_tlds": uri_tlds(families),
        "inventory_name": inv.path.name,
        "sha256": inv.sha256,
        "exact_relays": [r for r in inv.relays if not r.is_glob],
        "glob_relays": [r for r in inv.relays if r.is_glob],
        "ipv4_nets": [n for n in inv.relay_networks if n.version == 4],
        "ipv6_nets": [n for n in inv.relay_networks if n.version == 6],
        # Clients the milter never checks: our relays' addresses and [milter] exempt_networks.
        "exempt_networks": sorted(set(inv.relay_networks) | set(inv.milter.exempt_networks),
                                  key=lambda n: (n.version, n.network_address, n.prefixlen)),
        "milter_postfix_address": postfix_address(inv.milter.socket),
        "milter_socket_dir": socket_dir(inv.milter.socket),
        # Site domains that no relay or MX host is named as: a HELO with one of these is forged.
        "helo_domains": [
            d for d in inv.domains
            if not any(fnmatch.fnmatchcase(d, h) for h in inv.relay_hosts + inv.mx_hosts)
        ],
    }


def render_files(inv: Inventory, families: tuple[Family, ...] | None = None) -> dict[str, str]:
    """{relative path: text} for every output that applies to this inventory."""
    families = load_families() if families is None else families
    env = environment()
    ctx = context(inv, families)
    files = {}
    for out in OUTPUTS:
        if not out.when(inv):
            continue
        try:
            files[out.path] = env.get_template(out.template).render(ctx, output_path=out.path)
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"template {out.template}: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise TemplateError(f"template {out.template}: {exc}") from None
        except ValueError as exc:  # an escaping filter refused a value
            raise TemplateError(f"template {out.template}: {exc}") from None
    return files


def map_types(inv: Inventory) -> dict[str, str]:
    return {Path(o.path).name: o.map_type(inv) for o in OUTPUTS if o.map_type and o.when(inv)}


def write_tree(files: dict[str, str], root: Path) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")


def _replace_dir(new: Path, dest: Path) -> None:
    """Put ``new`` in place of ``dest`` with renames, so that dest is never half-written."""
    staged = Path(tempfile.mkdtemp(prefix=f".{dest.name}.new-", dir=dest.parent))
    shutil.rmtree(staged)
    shutil.copytree(new, staged)
    old = None
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
        os.rmdir(old)
        os.rename(dest, old)
    os.rename(staged, dest)
    if old is not None:
        shutil.rmtree(old)


def render(inv: Inventory, out_dir: Path, *, require_tools: bool = False, do_lint: bool = True,
           checks: Sequence[Callable[[Path], list[str]]] = ()) -> tuple[list[str], list[str]]:
    """Render, lint (with the extra ``checks`` of lint.lint), move into place. Returns (written
    relative paths, notes)."""
    files = render_files(inv)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bouncegen-render-") as tmp:
        stage = Path(tmp)
        write_tree(files, stage)
        if do_lint:
            notes = lint.lint(stage, map_types(inv), require_tools=require_tools, checks=checks)
        out_dir.mkdir(parents=True, exist_ok=True)
        for sub in sorted({Path(rel).parts[0] for rel in files}):
            _replace_dir(stage / sub, out_dir / sub)
    return sorted(files), notes


def file_diff(old: str | None, new: str | None, old_name: str, new_name: str) -> list[str]:
    """A unified diff of one file (None: the file does not exist), as render --check and install
    print it. A file with site secrets (SITE_SECRETS) is named as changed, never shown."""
    if old == new:
        return []
    if Path(new_name if new is not None else old_name).name in SITE_SECRETS:
        what = "new" if old is None else "removed" if new is None else "changed"
        return [f"{what}: {new_name if new is not None else old_name} (site secrets, contents not shown)\n"]
    lines = difflib.unified_diff([] if old is None else old.splitlines(keepends=True),
                                 [] if new is None else new.splitlines(keepends=True),
                                 old_name if old is not None else "/dev/null",
                                 new_name if new is not None else "/dev/null")
    return [line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines]


def diff(inv: Inventory, out_dir: Path) -> list[str]:
    """Unified diff from OUT_DIR's current files to what render() would write (empty: up to
    date). render() replaces the whole spamassassin/ and postfix/ directories, so a file there
    that would no longer be rendered shows as removed. Nothing is written."""
    files = render_files(inv)
    current = {}
    for sub in sorted({Path(rel).parts[0] for rel in files}):
        if (out_dir / sub).is_dir():
            for f in sorted((out_dir / sub).rglob("*")):
                if f.is_file():
                    current[f.relative_to(out_dir).as_posix()] = f.read_text(encoding="utf-8", errors="replace")
    lines: list[str] = []
    for rel in sorted(set(files) | set(current)):
        lines += file_diff(current.get(rel), files.get(rel), f"a/{rel}", f"b/{rel}")
    return lines
