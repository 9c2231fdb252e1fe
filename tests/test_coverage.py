"""Every paying clause of the contract is encoded and tested; `disburse rules` shows it."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from disburse.cli import SCENARIOS, app
from disburse.coverage import coverage
from disburse.rules import load_catalogue, natural_key
from tests.scenario import Scenario

ROOT = Path(__file__).parent.parent
CLAUSES_MD = ROOT.parent / "shared" / "CLAUSES.md"
NEW_REGION = Path(__file__).parent / "new_region"


def contract_clauses() -> dict[str, list[str]]:
    """CLAUSES.md's paying clauses by region: each `## region (source…)` section's `| clause_id |` rows."""
    found: dict[str, list[str]] = {}
    region = None
    for line in CLAUSES_MD.read_text(encoding="utf-8").splitlines():
        if heading := re.match(r"^## ([a-z][a-z0-9_]*) \(", line):
            region = heading.group(1)
        elif region and (row := re.match(rf"^\| ({region}\.[0-9a-z.]+) \|", line)):
            found.setdefault(region, []).append(row.group(1))
    return found


def test_every_listed_clause_is_encoded_and_tested() -> None:
    cat = load_catalogue(ROOT / "rules")
    policies, per_clause = coverage(cat, SCENARIOS)
    assert policies["region"].to_list() == cat.regions
    assert policies["paying_clauses"].sum() == len(cat.rules)
    assert (policies["encoded"] == policies["paying_clauses"]).all()
    assert (policies["tested"] == policies["paying_clauses"]).all()
    assert per_clause["listed"].all(), "a rule file that its policy.yaml does not list"


@pytest.mark.skipif(not CLAUSES_MD.is_file(), reason="shared/CLAUSES.md is not beside the repo")
def test_policies_list_exactly_the_clauses_of_the_contract() -> None:
    contract = contract_clauses()
    cat = load_catalogue(ROOT / "rules")
    assert cat.regions == sorted(contract)
    for region, policy in cat.policies.items():
        assert sorted(policy.paying_clauses) == sorted(contract[region]), region
    assert set(cat.rules) == {c for clauses in contract.values() for c in clauses}


def test_rules_list_csv_starts_with_the_fixed_columns() -> None:
    cat = load_catalogue(ROOT / "rules")
    region = cat.regions[0]
    mine = sorted((r.clause_id for r in cat.rules_of(region)), key=natural_key)
    result = CliRunner().invoke(app, ["rules", "list", "--format", "csv", "--region", region])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("clause_id,region,title,kind,")
    assert len(lines) == 1 + len(mine)
    assert lines[1].startswith(f"{mine[0]},{region},")


def test_rules_coverage_prints_the_table() -> None:
    result = CliRunner().invoke(app, ["rules", "coverage"])
    assert result.exit_code == 0
    assert "Not yet encoded or tested" not in result.stdout
    for region in load_catalogue(ROOT / "rules").regions:
        assert region in result.stdout


def test_a_new_region_is_data_only(tmp_path: Path) -> None:
    """A copy of the catalogue plus a region folder of YAML (tests/new_region/newland.yaml's `rules:`):
    the loader, coverage, `disburse rules list` and the job take it with no line of Python for it."""
    scenario = Scenario(NEW_REGION / "newland.yaml")
    rules = scenario.rules_dir(tmp_path / "rules")
    assert sorted(p.name for p in (rules / "newland").iterdir()) == ["newland.1.yaml", "newland.2.yaml", "policy.yaml"]
    project = load_catalogue(ROOT / "rules")
    cat = load_catalogue(rules)
    assert cat.regions == sorted([*project.regions, "newland"])
    assert set(cat.rules) - set(project.rules) == {"newland.1", "newland.2"}

    policies, _ = coverage(cat, NEW_REGION)
    newland = policies.filter(pl.col("region") == "newland").row(0, named=True)
    assert (newland["paying_clauses"], newland["encoded"], newland["tested"], newland["non_monetary"]) == (2, 2, 2, 1)

    listed = CliRunner().invoke(app, ["rules", "list", "--format", "csv", "--rules", str(rules), "--region", "newland"])
    assert listed.exit_code == 0, listed.output
    assert [line.split(",")[0] for line in listed.stdout.splitlines()[1:]] == ["newland.1", "newland.2"]

    scenario.run(tmp_path / "run")  # its years through the real job, against the copied catalogue


def test_the_handbook_carries_the_coverage_table() -> None:
    """docs/policy.md ("Coverage of the five policies") and the explorer's index carry the table as computed."""
    from disburse.coverage import markdown

    policies, _ = coverage(load_catalogue(ROOT / "rules"), SCENARIOS)
    assert markdown(policies) in (ROOT / "docs" / "policy.md").read_text(encoding="utf-8")
    assert markdown(policies) in (ROOT / "docs" / "rules" / "index.md").read_text(encoding="utf-8")
