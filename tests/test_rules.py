"""Strict loading of the rules catalogue: a bad file is refused in one line naming the file and key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from disburse.rules import RuleError, load_catalogue

PROJECT_RULES = Path(__file__).parent.parent / "rules"
GOOD = """\
clause_id: lingang.99
title: 测试
article: 二、99
text: "测试"
kind: rate
base: {ledger: compute, amount: amount, per: row}
rate: 0.5
annual_cap: 1000
"""


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    shutil.copytree(PROJECT_RULES, tmp_path / "rules")
    return tmp_path / "rules"


def write(rules: Path, text: str, name: str = "lingang.99.yaml") -> Path:
    path = rules / "lingang" / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_project_catalogue_loads() -> None:
    cat = load_catalogue(PROJECT_RULES)
    assert set(cat.regions) == {"changning", "hangzhou", "jinan", "lingang", "xuhui"}
    assert all(rule.text and rule.article for rule in cat.rules.values())


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda t: t + "anual_cap: 5\n", "anual_cap: Extra inputs are not permitted"),
        (lambda t: t.replace("annual_cap: 1000", "annual_cap: -1"), "annual_cap: Input should be greater than or equal to 0"),
        (lambda t: t.replace("rate: 0.5", "rate: 1.5"), "rate: Input should be less than or equal to 1"),
        (lambda t: t.replace("kind: rate", "kind: bonus"), "kind: Input should be"),
        (lambda t: t.replace("amount: amount", "amount: amont"), "base: Value error, base: ledger compute has no column amont"),
        (lambda t: t.replace("kind: rate", "kind: progressive"), "tiers: required for kind progressive"),
    ],
    ids=["unknown key", "negative cap", "rate above 1", "unknown kind", "unknown column", "kind without tiers"],
)
def test_a_bad_rule_is_refused_naming_file_and_key(rules: Path, change, key) -> None:
    path = write(rules, change(GOOD))
    with pytest.raises(RuleError) as err:
        load_catalogue(rules)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and key in message and "\n" not in message, message


def test_a_bad_policy_date_is_refused(rules: Path) -> None:
    policy = rules / "lingang" / "policy.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace("valid_to: 2023-08-31", "valid_to: 2023-02-30"), encoding="utf-8")
    with pytest.raises(RuleError, match=r"policy.yaml: valid_to: Input should be a valid date"):
        load_catalogue(rules)


def test_a_clause_must_live_in_the_file_named_after_it(rules: Path) -> None:
    write(rules, GOOD, name="lingang.98.yaml")
    with pytest.raises(RuleError, match="clause_id: lingang.99 must match its folder and file name"):
        load_catalogue(rules)


def test_a_clause_in_another_regions_folder_is_refused(rules: Path) -> None:
    (rules / "changning" / "lingang.99.yaml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(RuleError, match="must match its folder"):
        load_catalogue(rules)


POLICIES = PROJECT_RULES.parent.parent / "shared" / "policies"


def _squash(text: str) -> str:
    return "".join(text.split())


@pytest.mark.skipif(not POLICIES.is_dir(), reason="shared/policies is not beside the repo")
def test_every_quoted_text_is_the_policys_own_words() -> None:
    """A rule's `text` (and each non-monetary article's) appears verbatim in its source, spaces aside."""
    cat = load_catalogue(PROJECT_RULES)
    sources = {region: _squash((POLICIES / p.source).read_text(encoding="utf-8")) for region, p in cat.policies.items()}
    quotes = [(r.clause_id, r.region, r.text) for r in cat.rules.values()]
    quotes += [(f"{region} {nm.article}", region, nm.text) for region, p in cat.policies.items()
               for nm in p.non_monetary if nm.text]
    misquoted = [who for who, region, text in quotes
                 if not all(part in sources[region] for part in _squash(text).replace("……", "…").split("…") if part)]
    assert misquoted == []
