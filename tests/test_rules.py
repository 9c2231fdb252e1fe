"""Strict loading of the rules catalogue: a bad file is refused in one line naming the file and key."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from disburse.ledgers import RECOGNITION_LEVELS
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
    assert cat.regions == sorted(p.parent.name for p in PROJECT_RULES.glob("*/policy.yaml"))
    assert all(rule.text and rule.article for rule in cat.rules.values())


@pytest.mark.parametrize(
    "change, key",
    [
        (lambda t: t + "anual_cap: 5\n", "anual_cap: Extra inputs are not permitted"),
        (lambda t: t.replace("annual_cap: 1000", "annual_cap: -1"), "annual_cap: Input should be greater than or equal to 0"),
        (lambda t: t.replace("rate: 0.5", "rate: 1.5"), "rate: Input should be less than or equal to 1"),
        (lambda t: t.replace("kind: rate", "kind: bonus"), "kind: Input should be"),
        (lambda t: t.replace("amount: amount", "amount: amont"), "base.amount: ledger compute has no money column amont"),
        (lambda t: t.replace("kind: rate", "kind: progressive").replace("rate: 0.5\n", ""), "tiers: required for kind progressive"),
        (lambda t: t.replace("per: row", "per: row, investee_sector: [AI]"), "base.investee_sector.0: Input should be 'ai'"),
        (lambda t: t + "size_rates: {smal: 0.4}\n", "size_rates.smal.[key]: Input should be 'large'"),
        # the engine holds fen and millionths: a finer value is refused here, not truncated or failed in a run
        (lambda t: t.replace("annual_cap: 1000", "annual_cap: 1000.005"), "annual_cap: Decimal input should have no more than 2 decimal places"),
        (lambda t: t.replace("rate: 0.5", "rate: 0.1234567"), "rate: Decimal input should have no more than 6 decimal places"),
    ],
    ids=["unknown key", "negative cap", "rate above 1", "unknown kind", "unknown column", "kind without tiers",
         "investee sector", "size rate word", "cap finer than a fen", "rate finer than a millionth"],
)
def test_a_bad_rule_is_refused_naming_file_and_key(rules: Path, change, key) -> None:
    path = write(rules, change(GOOD))
    with pytest.raises(RuleError) as err:
        load_catalogue(rules)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and key in message and "\n" not in message, message


HEAD = "clause_id: lingang.99\ntitle: 测试\narticle: 二、99\ntext: 测试\n"
GROWTH = "growth: {min_growth: 0.2, years: 2, min_intensity: 0.1, min_increase: 1000000}\nrate: 0.1\n"
STEPS = "ladder: {comparison: over, steps: [{threshold: 5000000, award: 200000}]}\n"
COMPUTE = "base: {ledger: compute, amount: amount, per: applicant_year}\n"
LEVELS = "levels: {national: 500000, provincial: 300000}\n"

# Each of these loads with a loader that only checks names and types, and would then be
# ignored, misread or fail inside a run: the kind does not read the key, a word is not one of
# the contract's, or the kind lacks what its formula needs.
REFUSED = {
    "growth without a base": ("kind: growth\n" + GROWTH, "base: required for kind growth"),
    "growth on a ledger of rows": ("kind: growth\n" + GROWTH + "base: {ledger: compute, amount: amount}\n", "base.ledger: kind growth reads rd, revenue, not compute"),
    "growth with per": ("kind: growth\n" + GROWTH + "base: {ledger: revenue, amount: main_revenue, per: applicant_year}\n",
                        "base.per: kind growth does not read it"),
    "growth with recognition": ("kind: growth\n" + GROWTH + "base: {ledger: rd, amount: rd_expense}\nrecognition: true\n",
                                "recognition: kind growth does not read it"),
    "ladder without a base": ("kind: ladder\n" + STEPS, "base: required for kind ladder"),
    "ladder without a figure": ("kind: ladder\n" + STEPS + "base: {ledger: revenue}\n", "base.amount: required for kind ladder"),
    "ladder with a filter": ("kind: ladder\n" + STEPS + "base: {ledger: financing, amount: amount, where: {kind: [loan]}}\n",
                             "base.where: kind ladder does not read it"),
    "ladder on financing": ("kind: ladder\n" + STEPS + "base: {ledger: financing, amount: amount}\n",
                            "base.ledger: kind ladder reads rd, revenue, not financing"),
    "ladder with per": ("kind: ladder\n" + STEPS + "base: {ledger: revenue, amount: main_revenue, per: applicant_year}\n",
                        "base.per: kind ladder does not read it"),
    "sector not a word of the contract": ("kind: rate\nrate: 0.5\n" + COMPUTE + "eligibility: {sector: [AI]}\n",
                                          "eligibility.sector.0: Input should be 'ai'"),
    "size not a word of the contract": ("kind: rate\nrate: 0.5\n" + COMPUTE + "eligibility: {size: [smal]}\n",
                                        "eligibility.size.0: Input should be 'large'"),
    "level word": ("kind: level\nrecognition: true\nlevels: {nationl: 500000}\n", "levels.nationl.[key]: Input should be 'national'"),
    "level cap word": ("kind: rate\nrate: 0.5\nrecognition: true\n" + COMPUTE + "level_cumulative_caps: {National: 1}\n",
                       "level_cumulative_caps.National.[key]: Input should be 'national'"),
    "money column that is not money": ("kind: rate\nrate: 0.5\nbase: {ledger: rent, amount: area_m2}\n",
                                       "base.amount: ledger rent has no money column area_m2 (it has rent_paid)"),
    "filter on a money column": ("kind: rate\nrate: 0.5\nbase: {ledger: compute, amount: amount, where: {amount: ['1']}}\n",
                                 "base.where.amount: a money column cannot be matched by value"),
    "filter value not in the contract": (
        "kind: rate\nrate: 0.5\nbase: {ledger: compute, amount: amount, where: {category: [telecomm]}}\n",
        "base.where.category: 'telecomm' is not a value of compute.category (telecom, cloud,"),
    "filter on a yes/no column by text": (
        "kind: rate\nrate: 0.5\nbase: {ledger: compute, amount: amount, where: {related_party: ['no']}}\n",
        "base.where.related_party: 'no' is not a value of compute.related_party (true, false)"),
    "rate under a level kind": ("kind: level\nrecognition: true\n" + LEVELS + "rate: 0.5\n", "rate: kind level does not read it"),
    "tiers under a rate kind": ("kind: rate\nrate: 0.5\n" + COMPUTE + "tiers: [{rate: 0.1}]\n", "tiers: kind rate does not read it"),
    "fixed amount paid on a column": ("kind: fixed\namount: 100\n" + COMPUTE, "base.amount: kind fixed does not read it"),
    "administrator rate beside the rule's own": ("kind: rate\nrate: 0.5\n" + COMPUTE + "params: [rate]\n",
                                                 "params.rate: the rule gives its own rate, so the administrator's is never read"),
    "administrator amount under a rate kind": ("kind: rate\nrate: 0.5\n" + COMPUTE + "params: [amount]\n",
                                               "params.amount: kind rate does not read it"),
    "second amount under progressive": (
        "kind: progressive\ntiers: [{rate: 0.1}]\nbase: {ledger: financing, amount: interest_paid, second_amount: guarantee_fee}\n",
        "base.second_amount: kind progressive does not read it"),
    "approved-rate range with no recognition": ("kind: rate\nrate: 0.5\napproved_rate_range: [0.1, 0.3]\n" + COMPUTE,
                                                "approved_rate_range: needs recognition: true (read only beside it)"),
    "recognition in advance of a matter that is its own recognition": (
        "kind: approved\nrecognition: true\nrecognition_in_advance: true\nbase: {ledger: recognitions}\n",
        "recognition_in_advance: read only for lines of a ledger base"),
    "approved amount's scope where the amount is the approved amount itself": (
        "kind: approved\nrecognition: true\napproved_scope: matter\nbase: {ledger: events}\n",
        "approved_scope: kind approved does not read it"),
    "approved amount's scope with no recognition": ("kind: rate\nrate: 0.5\napproved_scope: matter\n" + COMPUTE,
                                                    "approved_scope: needs recognition: true (read only beside it)"),
    "approved amount's scope of a matter that is its own recognition": (
        "kind: rate\nrecognition: true\nmax_rate: 0.5\napproved_scope: matter\nbase: {ledger: recognitions, amount: approved_amount}\n",
        "approved_scope: read only for lines of a ledger base"),
    "capital since registration under a rate kind": (
        "kind: rate\nrate: 0.5\nbase: {ledger: financing, amount: amount, since_in_region: true}\n",
        "base.since_in_region: kind rate does not read it"),
    "level without recognition": ("kind: level\n" + LEVELS, "recognition: required for kind level"),
    "level on a ledger of rows": ("kind: level\nrecognition: true\n" + LEVELS + "base: {ledger: projects}\n",
                                  "base.ledger: kind level reads recognitions, not projects"),
    "scope of a cumulative cap that is not there": ("kind: rate\nrate: 0.5\n" + COMPUTE + "cumulative_scope: applicant\n",
                                                    "cumulative_scope: needs cumulative_cap or level_cumulative_caps"),
    "payee of a summed line": (
        "kind: rate\nrate: 0.05\nbase: {ledger: financing, amount: amount, payee: investor_id, per: applicant_year}\n",
        "base.payee: only a line per row names its payee (per: row)"),
    "filter on a recognised matter": (
        "kind: approved\nrecognition: true\nbase: {ledger: recognitions, where: {level: [national]}}\n",
        "base.where: a recognitions base reads only amount and matter_ledger"),
    "matter ledger of a ledger base": ("kind: rate\nrate: 0.5\nbase: {ledger: projects, amount: rd_cost, matter_ledger: projects}\n",
                                       "base.matter_ledger: only for a recognitions base"),
    "second cap with no second amount": ("kind: rate\nrate: 0.5\nbase: {ledger: financing, amount: amount, second_cap: 5}\n",
                                         "base.second_cap: caps the second_amount, which is not given"),
    "matching on a ledger with no completion": ("kind: matching\nrate: 1\n" + COMPUTE.replace(", per: applicant_year", ""),
                                                "base.ledger: kind matching reads projects, not compute"),
    "first reach with nothing to pay": (
        "kind: first_reach\nthreshold: 1000\nbase: {ledger: rd, amount: rd_expense}\n",
        "rate: kind first_reach needs rate or amount or params: [rate] or params: [amount]"),
    "first reach with a rate and an amount": (
        "kind: first_reach\nthreshold: 1000\nrate: 0.1\namount: 100\nbase: {ledger: rd, amount: rd_expense}\n",
        "amount: kind first_reach reads it only without rate"),
    "first reach with per": (
        "kind: first_reach\nthreshold: 1000\namount: 100\nbase: {ledger: rd, amount: rd_expense, per: applicant_year}\n",
        "base.per: kind first_reach does not read it"),
}


@pytest.mark.parametrize("body, key", REFUSED.values(), ids=REFUSED.keys())
def test_a_key_the_engine_would_ignore_or_misread_is_refused(rules: Path, body: str, key: str) -> None:
    path = write(rules, HEAD + body)
    with pytest.raises(RuleError) as err:
        load_catalogue(rules)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and key in message and "\n" not in message, message


def test_a_policy_eligibility_word_is_checked_too(rules: Path) -> None:
    policy = rules / "lingang" / "policy.yaml"
    text = policy.read_text(encoding="utf-8")
    assert "\neligibility:" not in text and "\nprovisions:" in text
    policy.write_text(text.replace("\nprovisions:", "\neligibility: {sector: [AI]}\nprovisions:", 1), encoding="utf-8")
    with pytest.raises(RuleError, match=r"policy.yaml: eligibility\.sector\.0: Input should be 'ai'"):
        load_catalogue(rules)


@pytest.mark.parametrize(
    "region, old, new, key",
    [
        ("lingang", "valid_to: 2023-08-31", "valid_to: 2023-08-31\nvalid_years: 3", "valid_years: only read when valid_from"),
        ("jinan", "valid_years: 3", "valid_years: 3\nvalid_to: 2024-12-31", "valid_to: a window starting on an administrator"),
    ],
    ids=["length beside a fixed window", "end beside a parameter start"],
)
def test_a_window_key_the_engine_would_ignore_is_refused(rules: Path, region: str, old: str, new: str, key: str) -> None:
    policy = rules / region / "policy.yaml"
    text = policy.read_text(encoding="utf-8")
    assert old in text
    policy.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(RuleError) as err:
        load_catalogue(rules)
    assert str(err.value).startswith(f"{policy}: {key}"), str(err.value)


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


CLAUSES_MD = PROJECT_RULES.parent.parent / "shared" / "CLAUSES.md"


@pytest.mark.skipif(not CLAUSES_MD.is_file(), reason="shared/CLAUSES.md is not beside the repo")
def test_the_level_words_are_the_contracts() -> None:
    """The loader checks levels against ledgers.RECOGNITION_LEVELS: the words CLAUSES.md lists at its top."""
    text = CLAUSES_MD.read_text(encoding="utf-8")
    listed = " ".join(text.split("takes these words:", 1)[1].split("\n\n", 1)[0].split())
    listed = re.sub(r"\([^)]*\)", "", listed)  # the parenthesised clauses that use them
    words = [piece.split()[0] for piece in re.split(r"[;,]", listed.rstrip(".")) if piece.split()]
    assert set(words) - {"empty"} == set(RECOGNITION_LEVELS)
