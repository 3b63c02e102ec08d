"""Escaping per regex dialect, tested with hostile values in the real engines: Perl (the engine
SpamAssassin compiles its rules with), Postfix pcre: and regexp: tables (postmap). An escaped
value must match itself and nothing else: never a wider pattern."""

from __future__ import annotations

import subprocess

import pytest

from bouncegen import engines
from bouncegen.renderer import escape
from support import need

HOSTILE = [
    ".*", "a|b", "(", ")", "[", "]", "{1,}", "\\", "\\E", "$", "^", "/", "//", "@ARGV", "${x}",
    "(?{ die })", "#comment", "a b", "\"quoted\"", "x+", "?", "smtp1.example.org", "192.0.2.25",
    "2001:db8::25", "[IPv6:2001:db8::1]", "\\Q.*", "-", "%s", "'", "`id`", ";", "}", "a/b/c",
]
# Strings each hostile value must NOT match (besides itself, which it must match).
def near_misses(value: str) -> list[str]:
    out = {value + "x", "x" + value, value.upper() + "Z", "", "anything"}
    if len(value) > 1:
        out.add(value[:-1])
    out.discard(value)
    return sorted(out)


def test_perl_escaping_in_real_perl():
    need("perl")
    cases = []
    for value in HOSTILE + ["café", "tab\there", "nl\nthere"]:
        cases.append((escape.perl_re(value), value, True))
        for other in near_misses(value):
            if other.lower() != value.lower():
                cases.append((escape.perl_re(value), other, False))
    # One Perl process checks every case: pattern, subject and expectation on stdin, NUL-separated.
    script = r'''
        binmode STDIN; local $/ = "\0\0\n"; my $bad = 0;
        while (my $rec = <STDIN>) { chomp $rec; $rec =~ s/\0\0$//;
            my ($re, $subject, $want) = split /\0/, $rec, 3;
            # bytes, as SpamAssassin matches rules without normalize_charset
            my $got = ($subject =~ /^(?:$re)$/i) ? 1 : 0;
            if ($got != $want) { print "MISMATCH: /$re/ on <$subject> got $got\n"; $bad++ } }
        exit($bad ? 1 : 0);'''
    data = b"".join(f"{p}\0{s}\0{int(w)}".encode() + b"\0\0\n" for p, s, w in cases)
    proc = subprocess.run(["perl", "-e", script], input=data, capture_output=True)
    assert proc.returncode == 0, proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")


@pytest.mark.postfix
@pytest.mark.parametrize("dialect", ["pcre", "regexp"])
def test_postfix_escaping_in_real_postmap(dialect, tmp_path):
    need("postmap")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "main.cf").write_text("")
    values = [v for v in HOSTILE if not (dialect == "regexp" and not v.isascii())]
    lines = []
    for i, value in enumerate(values):
        lines.append(f"/^K{i}:{escape.re_for(value, dialect)}$/ OK{i}")
    table = tmp_path / "table"
    table.write_text("\n".join(lines) + "\n")
    queries = []
    for i, value in enumerate(values):
        queries.append((f"K{i}:{value}", f"OK{i}"))
        for other in near_misses(value):
            if other.lower() != value.lower():
                queries.append((f"K{i}:{other}", None))
    proc = subprocess.run([engines.require("postmap"), "-c", str(conf), "-q", "-", f"{dialect}:{table}"],
                          input="".join(q + "\n" for q, _ in queries), capture_output=True, text=True)
    assert proc.stderr == ""
    answers = dict(line.split("\t", 1) for line in proc.stdout.splitlines())
    for query, want in queries:
        assert answers.get(query) == want, (dialect, query, answers.get(query))


def test_ere_refuses_what_it_cannot_express():
    for value in ["café", "a\nb", "\x00"]:
        with pytest.raises(ValueError):
            escape.ere(value)


@pytest.mark.parametrize("glob,hits,misses", [
    ("smtp?.example.org", ["smtp1.example.org", "SMTPa.example.org"], ["smtp12.example.org", "smtp1xexample.org", "smtp.example.org", "smtp1.example.org.evil.test", "smtp (.example.org"]),
    ("*.out.example.org", ["a.out.example.org", "a.b.out.example.org"], ["out.example.org", "a.outxexample.org", "a b.out.example.org", "a].out.example.org"]),
])
def test_globs_stay_within_host_names(glob, hits, misses):
    need("perl")
    pattern = escape.perl_glob(glob)
    script = "my ($re, @s) = @ARGV; print join(',', map { /^(?:$re)$/i ? 1 : 0 } @s);"
    proc = subprocess.run(["perl", "-e", script, pattern, *hits, *misses], capture_output=True, text=True)
    assert proc.stdout == ",".join(["1"] * len(hits) + ["0"] * len(misses))
