"""Judge many messages with one SpamAssassin process: the engine's own API (Mail::SpamAssassin,
as spamd and ``spamassassin -t`` use it), offline (-L), Bayes/AWL/TxRep off as in the runner's
private spamd. The same script runs the host's SpamAssassin 4 and, inside a Debian 11 root
(lab/chroot.py), SpamAssassin 3.4: only the engine differs between the two answers.

One Perl start-up for a whole corpus: ``spamassassin -t`` per message would cost a second each.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..errors import EngineError

# argv: DIR [SITECONFIGPATH]. One line per file of DIR, sorted: NAME TAB TESTS(comma) TAB SCORE.
SCRIPT = r"""
use strict; use warnings;
use Mail::SpamAssassin;
my ($dir, $site) = @ARGV;
my $sa = Mail::SpamAssassin->new({
  local_tests_only => 1, dont_copy_prefs => 1, userprefs_filename => '/dev/null',
  (defined $site ? (site_rules_filename => $site) : ()),
  post_config_text => "use_bayes 0\nbayes_auto_learn 0\n"
    . "ifplugin Mail::SpamAssassin::Plugin::AWL\nuse_auto_whitelist 0\nendif\n"
    . "ifplugin Mail::SpamAssassin::Plugin::TxRep\nuse_txrep 0\nendif\n",
});
$sa->init(1);
opendir(my $dh, $dir) or die "$dir: $!";
for my $name (sort grep { -f "$dir/$_" } readdir $dh) {
  open(my $fh, '<', "$dir/$name") or die "$name: $!";
  my $raw = do { local $/; <$fh> };
  close $fh;
  my $msg = $sa->parse($raw);
  my $status = $sa->check($msg);
  my $tests = join(',', sort grep { length } split /,/, $status->get_names_of_tests_hit);
  printf "%s\t%s\t%s\n", $name, $tests, $status->get_score;
  $status->finish; $msg->finish;
}
print "version\t", Mail::SpamAssassin::Version(), "\n";
"""


def parse(output: str) -> tuple[str, dict[str, tuple[str, ...]]]:
    """(SpamAssassin's version, {file name: tests hit})."""
    version, hits = "", {}
    for line in output.splitlines():
        fields = line.split("\t")
        if fields[0] == "version":
            version = fields[1]
        elif len(fields) == 3:
            hits[fields[0]] = tuple(t for t in fields[1].split(",") if t)
    return version, hits


def judge_here(messages: Path, site: Path, timeout: float = 1800) -> tuple[str, dict[str, tuple[str, ...]]]:
    """The host's SpamAssassin with the site configuration directory ``site``."""
    proc = subprocess.run(["perl", "-e", SCRIPT, str(messages), str(site)], capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise EngineError(f"SpamAssassin batch: exit {proc.returncode}: {proc.stderr[-2000:]}")
    return parse(proc.stdout)
