"""Every paying clause of the contract is encoded and tested; `disburse rules` shows it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from disburse.cli import SCENARIOS, app
from disburse.coverage import coverage
from disburse.rules import load_catalogue

ROOT = Path(__file__).parent.parent
CLAUSES_MD = ROOT.parent / "shared" / "CLAUSES.md"


def test_every_listed_clause_is_encoded_and_tested() -> None:
    policies, per_clause = coverage(load_catalogue(ROOT / "rules"), SCENARIOS)
    assert policies["paying_clauses"].sum() == 72
    assert (policies["encoded"] == policies["paying_clauses"]).all()
    assert (policies["tested"] == policies["paying_clauses"]).all()
    assert per_clause["listed"].all(), "a rule file that CLAUSES.md does not list"


@pytest.mark.skipif(not CLAUSES_MD.is_file(), reason="shared/CLAUSES.md is not beside the repo")
def test_policies_list_exactly_the_clauses_of_the_contract() -> None:
    contract = set(re.findall(r"^\| ((?:changning|lingang|xuhui|hangzhou|jinan)\.[0-9a-z.]+) \|",
                              CLAUSES_MD.read_text(encoding="utf-8"), re.M))
    cat = load_catalogue(ROOT / "rules")
    assert {c for p in cat.policies.values() for c in p.paying_clauses} == contract
    assert set(cat.rules) == contract


def test_rules_list_csv_starts_with_the_fixed_columns() -> None:
    result = CliRunner().invoke(app, ["rules", "list", "--format", "csv", "--region", "lingang"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("clause_id,region,title,kind,")
    assert len(lines) == 1 + 30
    assert lines[1].startswith("lingang.1,lingang,")


def test_rules_coverage_prints_the_table() -> None:
    result = CliRunner().invoke(app, ["rules", "coverage"])
    assert result.exit_code == 0
    assert "Not yet encoded or tested" not in result.stdout
    for region in ("changning", "hangzhou", "jinan", "lingang", "xuhui"):
        assert region in result.stdout


def test_the_readme_carries_the_coverage_table() -> None:
    from disburse.coverage import markdown

    policies, _ = coverage(load_catalogue(ROOT / "rules"), SCENARIOS)
    assert markdown(policies) in (ROOT / "README.md").read_text(encoding="utf-8")
