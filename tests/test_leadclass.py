"""The hand-kept first-character classes of the long body alternations (``(?=[ADTY])\\b(?:...)``)
are checked by the rule loader: a phrase whose first character the class leaves out would never
match, so the build fails naming the file, the rule and the missing characters. Pure Python, no
engine: part of `make test-fast`."""

from __future__ import annotations

import shutil

import pytest

from bouncegen.errors import RuleDataError
from bouncegen.renderer import rules
from bouncegen.renderer.leadclass import lead_class_problems
from support import ROOT


def test_every_shipped_class_covers_its_alternatives():
    leads = [r.name for f in rules.load_families() for r in f.rules if "(?=[" in r.test]
    assert len(leads) >= 11
    assert not {n: p for f in rules.load_families() for r in f.rules if (p := lead_class_problems(r.test))
                for n in [r.name]}


@pytest.mark.parametrize(("test", "missing"), [
    (r"/(?=[DY])\b(?:Delivery failed|Your message|Undeliverable)/", "U"),
    (r"/(?=[dy])\b(?:Delivery failed|Your message)/i", None),            # /i: the class folds too
    (r"/(?=[dy])\b(?:Delivery failed|Your message)/", "DY"),             # without /i it does not
    (r"/(?=[\x80-\xff])(?:Это автоответ|Out of office)/", "O"),          # UTF-8 lead bytes
    (r"/(?=[A\xd0])(?:A(?=[\x80-\xff])(?:é|x))/", "x"),                  # a nested group is checked too
    (r"/(?=[A])(?:A|B)?/", "empty"),
    (r"/\b(?:no class|here)/", None),
])
def test_a_class_is_checked_against_first_characters(test, missing):
    problems = lead_class_problems(test)
    if missing is None:
        assert problems == []
    elif missing == "empty":
        assert problems and "empty string" in problems[0]
    else:
        assert len(problems) == 1 and problems[0].endswith(f"does not cover {missing}: a branch starting there never matches")


def test_a_class_missing_a_first_character_fails_the_build(tmp_path):
    d = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", d)
    dsn = d / "dsn.toml"
    text = dsn.read_text("utf-8")
    assert text.count("test = '''/(?=[ADTY])") == 1
    dsn.write_text(text.replace("test = '''/(?=[ADTY])", "test = '''/(?=[ADT])"), "utf-8")
    with pytest.raises(RuleDataError) as exc:
        rules.load_families(d)
    assert exc.value.problems == ["dsn.toml: __BG_DSN_GMAIL: test: (?=[...]) first-character class does not cover Y: "
                                  "a branch starting there never matches"]
