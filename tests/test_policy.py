"""The policy office's commands (issue 11): simulate, eligible, and fund ceilings in the params file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from disburse.cli import app
from disburse.job import DEFAULT_RULES as PROJECT_RULES
from disburse.job import run_year
from disburse.rules import load_catalogue
from tests.scenario import Scenario, credit_code

SCENARIOS = Path(__file__).parent / "scenarios" / "engine"


@pytest.fixture
def ledgers(tmp_path: Path) -> Path:
    Scenario(SCENARIOS / "simulate_overlay.yaml").write_ledgers(tmp_path / "ledgers")
    return tmp_path / "ledgers"


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def overlay(tmp_path: Path, name: str, doc: dict) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_simulate_writes_impact_one_column_per_scenario_and_records_nothing(ledgers: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_year(ledgers, out, 2021)
    state_before = digest(out / "state.duckdb")
    outputs_before = {p: digest(p) for p in (out / "2021").rglob("*") if p.is_file()}
    cap = overlay(tmp_path, "cap", {"name": "cap 1.5M", "clauses": {"lingang.4": {"annual_cap": 1500000}}})
    budget = overlay(tmp_path, "budget", {"budgets": {"lingang": {2021: 2000000}}})
    result = cli("simulate", "--year", "2021", "--ledgers", str(ledgers), "--state", str(out / "state.duckdb"),
                 "--overlay", str(cap), "--overlay", str(budget), "--out", str(tmp_path / "what-if"))
    assert result.exit_code == 0, result.output
    assert digest(out / "state.duckdb") == state_before
    assert {p: digest(p) for p in (out / "2021").rglob("*") if p.is_file()} == outputs_before
    for path in (tmp_path / "what-if").iterdir():  # firms' names and amounts: the owner's only
        assert path.stat().st_mode & 0o077 == 0, path
    impact = pl.read_csv(tmp_path / "what-if" / "impact.csv", infer_schema=False)
    lg4 = impact.filter((pl.col("group") == "clause") & (pl.col("key") == "lingang.4")).row(0, named=True)
    # baseline 1,000,000 + 1,000,000 + 280,000 + 850,000 (see the scenario); cap 1.5M: L1 +130,000, L2 +500,000
    assert lg4["baseline"] == "3130000.00"
    assert (lg4["cap 1.5M"], lg4["cap 1.5M difference"], lg4["cap 1.5M firms gaining"], lg4["cap 1.5M firms losing"]) \
        == ("3760000.00", "630000.00", "2", "0")
    assert (lg4["budget"], lg4["budget difference"], lg4["budget firms losing"]) == ("2000000.00", "-1130000.00", "4")
    largest = impact.filter(pl.col("group") == "largest change: cap 1.5M")
    assert largest["key"].to_list() == [credit_code("L2"), credit_code("L1")]
    firms = pl.read_csv(tmp_path / "what-if" / "impact_firms.csv", infer_schema=False)
    assert firms.filter(pl.col("region") == "lingang")["budget"].cast(pl.Decimal(18, 2)).sum() == 2000000
    html = (tmp_path / "what-if" / "impact.html").read_text(encoding="utf-8")
    assert "cap 1.5M" in html and "<h2>资金额度</h2>" in html and "0.638977" in html
    # in Chinese throughout: headings, regions by their names, sectors and sizes by their Chinese names
    assert "<h2>按所属领域</h2>" in html and "临港新片区（lingang）" in html and "人工智能（ai）" in html
    assert "增加的企业" in html and "firms gaining" not in html and "Policy impact" not in html


def test_simulate_says_when_earlier_years_were_never_run_and_when_the_year_has_no_rows(ledgers: Path,
                                                                                       tmp_path: Path) -> None:
    """The scenario's ledgers have rows in 2021 only. 2022 with nothing run: 2021 was never run (a gap), and 2022
    has no rows (all zeros); each said in one line, in Chinese. 2021 after its run: neither."""
    def notes(year: str, state: Path) -> list[str]:
        result = cli("simulate", "--year", year, "--ledgers", str(ledgers), "--state", str(state),
                     "--out", str(tmp_path / "what-if"))
        assert result.exit_code == 0, result.output
        return [line for line in result.output.splitlines() if line.startswith("disburse: ")]

    gap, empty = notes("2022", tmp_path / "none.duckdb")
    assert gap.startswith("disburse: 注意：以下年度从未运行，台账中却有数据（") and "lingang 2021" in gap, gap
    assert empty.startswith("disburse: 注意：台账中没有 2022 年的数据行（"), empty
    run_year(ledgers, tmp_path / "out", 2021)
    assert notes("2021", tmp_path / "out" / "state.duckdb") == []


def test_simulate_refuses_a_bad_overlay_in_one_line(ledgers: Path, tmp_path: Path) -> None:
    bad = overlay(tmp_path, "bad", {"clauses": {"lingang.4": {"tiers": [{"up_to": 300000, "rate": 1.5}, {"rate": 0.5}]}}})
    result = cli("simulate", "--year", "2021", "--ledgers", str(ledgers), "--state", str(tmp_path / "none.duckdb"),
                 "--overlay", str(bad), "--out", str(tmp_path / "what-if"))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"disburse: {bad}: clauses.lingang.4.tiers.0.rate: "), result.output
    assert not (tmp_path / "what-if").exists()
    unknown = overlay(tmp_path, "unknown", {"clause": {"lingang.4": {"annual_cap": 1}}})
    result = cli("simulate", "--year", "2021", "--ledgers", str(ledgers), "--state", str(tmp_path / "none.duckdb"),
                 "--overlay", str(unknown), "--out", str(tmp_path / "what-if"))
    assert result.exit_code == 2 and f"{unknown}: clause: Extra inputs are not permitted" in result.output


def test_budget_in_the_params_file_cuts_the_run_and_the_manifest_says_so(ledgers: Path, tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("budgets: {lingang: {2021: 2000000}}\n", encoding="utf-8")
    manifest, results = run_year(ledgers, tmp_path / "out", 2021, params_file=params)
    lingang = manifest["regions"]["lingang"]
    assert lingang["total_payable"] == "2000000.00"
    assert lingang["budgets"] == [{"scope": "lingang", "budget": "2000000.00", "owed": "0.00", "uncut": "3130000.00",
                                   "paid": "2000000.00", "ratio": "0.638977", "cut": True, "lines_cut": 4}]
    assert "budgets" not in manifest["regions"]["changning"]
    on_disk = json.loads((tmp_path / "out" / "2021" / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk["regions"]["lingang"]["budgets"][0]["ratio"] == "0.638977"
    # the audit and payments.xlsx show the ceiling, the total before the cut and the ratio
    region_dir = tmp_path / "out" / "2021" / "lingang"
    audit = (region_dir / "audit.html").read_text(encoding="utf-8")
    assert "资金额度（lingang）" in audit and "2,000,000.00" in audit and "3,130,000.00" in audit and "0.638977" in audit
    assert "超出资金额度，按比例核减" in audit
    import openpyxl

    cover = {row[0]: row[1] for row in openpyxl.load_workbook(region_dir / "payments.xlsx")["封面"].iter_rows(values_only=True)
             if row and row[0]}
    assert cover["资金额度（lingang）（元）"] == 2000000 and cover["核减前应付（元）"] == 3130000
    assert cover["核减比例"] == "0.638977"


@pytest.mark.parametrize("doc, message", [
    ("budgets: {nowhere: {2021: 1}}", "budgets.nowhere: no such region or clause"),
    ("budgets: {lingang: {2021: -1}}", "budgets.lingang.2021: Input should be greater than or equal to 0"),
    ("budgets: {lingang: {2021: 1.001}}", "budgets.lingang.2021: Decimal input should have no more than 2 decimal places"),
    ("carry_budget_shortfall: maybe", "carry_budget_shortfall: Input should be a valid boolean"),
])
def test_bad_budgets_are_refused(ledgers: Path, tmp_path: Path, doc: str, message: str) -> None:
    from disburse.job import JOB_ERRORS

    params = tmp_path / "params.yaml"
    params.write_text(doc + "\n", encoding="utf-8")
    with pytest.raises(JOB_ERRORS, match=message):
        run_year(ledgers, tmp_path / "out", 2021, params_file=params)


def test_eligible_writes_one_list_per_region(tmp_path: Path) -> None:
    scenario = Scenario(SCENARIOS / "eligible_push_list.yaml")
    scenario.write_ledgers(tmp_path / "ledgers")
    params = scenario.params_file(tmp_path)
    result = cli("eligible", "--year", "2022", "--ledgers", str(tmp_path / "ledgers"), "--params", str(params),
                 "--out", str(tmp_path / "invite"))
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "invite").iterdir())
    assert files == [f"eligible-2022-{r}.csv" for r in load_catalogue(PROJECT_RULES).regions]
    assert all(p.stat().st_mode & 0o077 == 0 for p in (tmp_path / "invite").iterdir())
    assert (tmp_path / "invite").stat().st_mode & 0o077 == 0
    listed = pl.read_csv(tmp_path / "invite" / "eligible-2022-changning.csv", infer_schema=False)
    columns = ["applicant_id", "clause_id", "amount_if_recognised", "net_difference", "competing_clauses", "recognized_on"]
    assert sorted(listed.select(columns).rows()) == sorted([
        (credit_code("C1"), "changning.6.1b", "600000.00", "100000.00", "changning.6.1a", "2022-12-31"),
        (credit_code("C2"), "changning.6.1a", "200000.00", "200000.00", "changning.6.1b", "2022-12-31"),
    ])
    assert pl.read_csv(tmp_path / "invite" / "eligible-2022-lingang.csv", infer_schema=False).is_empty()


DATED = "clauses: {changning.6.1c: {rate: %s, annual_cap: 800000}}"


@pytest.mark.parametrize("rate, message", [
    ("[{from: 2023-07-01, value: 0.25}, {from: 2021-01-01, value: 0.3}]",
     "clauses.changning.6.1c.rate: the dates must increase: 2021-01-01 comes after 2023-07-01"),
    ("[{from: 2021-01-01, value: 0.3}, {from: 2021-01-01, value: 0.25}]",
     "clauses.changning.6.1c.rate: the date 2021-01-01 is given twice"),
    ("[{from: 2021-01-01, value: 0.3}, {from: 2023-07-01, value: 1.25}]",
     "clauses.changning.6.1c.rate.1.value: Input should be less than or equal to 1"),
    ("[{from: 2021-01-01, value: 0.1234567}]",
     "clauses.changning.6.1c.rate.0.value: Decimal input should have no more than 6 decimal places"),
    ("[{from: 2021-01-01, value: 0.3, until: 2023-06-30}]", "clauses.changning.6.1c.rate.0.until: Extra inputs are not permitted"),
    ("[{from: 2021-02-30, value: 0.3}]", "clauses.changning.6.1c.rate.0.from: Input should be a valid date"),
    ("[{value: 0.3}]", "clauses.changning.6.1c.rate.0.from: Field required"),
    ("[]", "clauses.changning.6.1c.rate: List should have at least 1 item"),
    ("[0.3]", "clauses.changning.6.1c.rate.0: Input should be a valid dictionary"),
])
def test_bad_dated_parameters_are_refused_naming_file_and_key(tmp_path: Path, rate: str, message: str) -> None:
    from disburse.params import ParamError, load_params

    params = tmp_path / "params.yaml"
    params.write_text(DATED % rate + "\n", encoding="utf-8")
    with pytest.raises(ParamError) as caught:
        load_params(params, load_catalogue(PROJECT_RULES))
    assert str(caught.value).startswith(f"{params}: {message}"), str(caught.value)


def test_a_dated_money_value_keeps_the_bounds_of_a_plain_one(tmp_path: Path) -> None:
    from disburse.params import ParamError, load_params

    params = tmp_path / "params.yaml"
    params.write_text("clauses: {changning.6.1c: {rate: 0.5, annual_cap: [{from: 2021-01-01, value: -1}]}}\n", encoding="utf-8")
    with pytest.raises(ParamError, match=r"clauses\.changning\.6\.1c\.annual_cap\.0\.value: Input should be greater than or equal to 0"):
        load_params(params, load_catalogue(PROJECT_RULES))


def test_the_params_fingerprint_covers_a_dated_value(tmp_path: Path) -> None:
    from disburse.params import load_params

    cat = load_catalogue(PROJECT_RULES)
    prints = set()
    for day in ("2023-07-01", "2023-07-02"):
        params = tmp_path / f"params-{day}.yaml"
        params.write_text(DATED % f"[{{from: 2021-01-01, value: 0.3}}, {{from: {day}, value: 0.25}}]" + "\n", encoding="utf-8")
        prints.add(load_params(params, cat).fingerprint)
    assert len(prints) == 2
