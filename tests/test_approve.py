"""Paid years are never overwritten (issue 10, item 4): approve, keep replaced runs, adjustments."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from disburse import state
from disburse.cli import app
from disburse.job import DEFAULT_RULES, run_year
from disburse.rules import compile_tables, load_catalogue
from tests.scenario import Scenario, credit_code

LEDGERS = Path(__file__).parent / "scenarios" / "engine" / "two_regions.yaml"
L1 = credit_code("L1")


@pytest.fixture
def ledgers(tmp_path: Path) -> Path:
    Scenario(LEDGERS).write_ledgers(tmp_path / "ledgers")
    return tmp_path / "ledgers"


def bill(ledgers: Path, amount: str) -> None:
    """Change L1's 2021 telecom bill (row B1), the base of lingang.4."""
    compute = pl.read_csv(ledgers / "compute.csv", infer_schema=False)
    compute.with_columns(pl.when(pl.col("row_id") == "B1").then(pl.lit(amount)).otherwise(pl.col("amount"))
                         .alias("amount")).write_csv(ledgers / "compute.csv")


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def state_rows(path: Path) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [con.execute(f"select * from {t} where region = 'lingang' order by all").fetchall()
                for t in ("runs", "lines", "clawbacks")]
    finally:
        con.close()


def paid_before(out: Path, year: int) -> int:
    """What a run for YEAR counts as paid to L1 under lingang.4 (the history it reads), in fen."""
    con = state.connect(out / "state.duckdb", read_only=True)
    try:
        none = pl.DataFrame(schema={c: pl.String for c in ("applicant_id", "clause_id", "matter_id")}
                            | {"year": pl.Int64, "amount": pl.Int64})
        h = state.history(con, none, year, compile_tables(load_catalogue(DEFAULT_RULES))["shares"])
    finally:
        con.close()
    return int(h.filter((pl.col("applicant_id") == L1) & (pl.col("clause_id") == "lingang.4"))["payable_fen"].sum())


def approve(out: Path, *args: str):
    return CliRunner().invoke(app, ["approve", "--year", "2021", "--region", "lingang", "--out", str(out), *args])


def test_an_unapproved_rerun_keeps_the_replaced_files_under_runs(ledgers: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first, _ = run_year(ledgers, out, 2021)
    before = tree(out / "2021" / "lingang")
    bill(ledgers, "900000.00")  # lingang.4: 10% × 300,000 + 50% × 600,000 = 330,000.00
    second, _ = run_year(ledgers, out, 2021)
    kept = out / "2021" / "lingang" / "runs" / first["run_id"]
    assert tree(kept) == before  # the replaced run's files, byte for byte
    assert pl.read_csv(out / "2021" / "lingang" / "payments.csv", infer_schema=False)["total_payable"].to_list() == ["330000.00"]
    assert paid_before(out, 2022) == 33_000_000  # not approved: the computed lines count, as before
    run_year(ledgers, out, 2021)
    assert sorted(p.name for p in (out / "2021" / "lingang" / "runs").iterdir()) == sorted([first["run_id"], second["run_id"]])
    assert tree(kept) == before
    result = CliRunner().invoke(app, ["verify", str(out / "2021")])
    assert result.exit_code == 0, result.output


def test_an_approved_year_is_never_overwritten_and_a_rerun_proposes_adjustments(ledgers: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first, _ = run_year(ledgers, out, 2021)
    result = approve(out, "--by", "王会计")
    assert result.exit_code == 0 and f"run {first['run_id']} of 2021 lingang approved by 王会计" in result.output
    con = duckdb.connect(str(out / "state.duckdb"), read_only=True)
    assert con.execute("select run_id, approved_by from approvals").fetchall() == [(first["run_id"], "王会计")]
    con.close()
    files, rows = tree(out / "2021" / "lingang"), state_rows(out / "state.duckdb")

    bill(ledgers, "900000.00")  # lingang.4 recomputed: 10% × 300,000 + 50% × 600,000 = 330,000.00
    second, _ = run_year(ledgers, out, 2021)
    now = tree(out / "2021" / "lingang")
    assert {k: v for k, v in now.items() if k != "adjustments.csv"} == files  # every approved file byte-identical
    assert state_rows(out / "state.duckdb") == rows  # runs, lines and clawbacks untouched
    adj = pl.read_csv(out / "2021" / "lingang" / "adjustments.csv", infer_schema=False)
    # by hand: approved 280,000.00, recomputed 330,000.00, 50,000.00 more to pay
    assert adj.select("applicant_id", "clause_id", "approved", "recomputed", "difference", "action").rows() == [
        (L1, "lingang.4", "280000.00", "330000.00", "50000.00", "pay")]
    assert adj["approved_run_id"][0] == first["run_id"] and adj["run_id"][0] == second["run_id"]
    assert second["adjustments"]["lingang"]["difference"] == "50000.00"
    assert second["regions"]["lingang"]["run_id"] == first["run_id"]  # the manifest still names the approved run
    assert "lingang" not in second["regions_in_this_run"]  # its files were not replaced
    assert paid_before(out, 2022) == 28_000_000  # the adjustment is not approved yet: only the approved lines count

    result = approve(out, "--by", "王会计")
    assert result.exit_code == 0 and "1 adjustment(s) of 2021 lingang" in result.output
    assert paid_before(out, 2022) == 28_000_000 + 5_000_000  # approved lines + approved adjustment
    assert tree(out / "2021" / "lingang") == now

    bill(ledgers, "700000.00")  # lingang.4: 30,000 + 50% × 400,000 = 230,000.00; approved so far 330,000.00
    run_year(ledgers, out, 2021)
    adj = pl.read_csv(out / "2021" / "lingang" / "adjustments.csv", infer_schema=False)
    assert adj.select("approved", "recomputed", "difference", "action").rows() == [
        ("330000.00", "230000.00", "-100000.00", "recover")]
    assert paid_before(out, 2022) == 33_000_000  # the pending recovery counts only once approved
    assert approve(out).exit_code == 0
    assert paid_before(out, 2022) == 23_000_000
    again = approve(out)
    assert again.exit_code == 2 and "already approved and no adjustments wait" in again.output
    result = CliRunner().invoke(app, ["verify", str(out / "2021")])
    assert result.exit_code == 0, result.output


def test_approving_a_year_never_run_is_one_line(ledgers: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_year(ledgers, out, 2021, region="changning")
    result = approve(out)
    assert result.exit_code == 2 and "no run recorded" in result.output


def test_a_schema_2_state_is_migrated_forward_and_can_be_approved(ledgers: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first, _ = run_year(ledgers, out, 2021)
    con = duckdb.connect(str(out / "state.duckdb"))
    con.execute("drop table approvals; drop table adjustments; update schema_version set version = 2")
    con.close()
    with pytest.raises(state.StateError, match="older schema version 2; the next `disburse run` migrates it to 4"):
        state.connect(out / "state.duckdb", read_only=True)
    result = approve(out)  # approving takes the state read-write, so it migrates it
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(out / "state.duckdb"), read_only=True)
    assert con.execute("select version from schema_version").fetchall() == [(state.SCHEMA_VERSION,)]
    assert con.execute("select run_id from approvals").fetchall() == [(first["run_id"],)]
    con.close()


def test_an_approved_year_rerun_after_a_firms_facts_changed_later_has_nothing_to_adjust(tmp_path: Path) -> None:
    """A firm small in 2021 and medium from 2023 (applicants by year): 2021 rerun after 2023 pays 2021 as approved."""
    s = Scenario(Path(__file__).parent / "scenarios" / "jinan" / "jinan.10.facts_by_year.yaml")
    ledgers, out = tmp_path / "ledgers", tmp_path / "out"
    s.write_ledgers(ledgers)
    params = s.params_file(tmp_path)
    first, _ = run_year(ledgers, out, 2021, region="jinan", params_file=params)
    result = CliRunner().invoke(app, ["approve", "--year", "2021", "--region", "jinan", "--out", str(out)])
    assert result.exit_code == 0, result.output
    files = tree(out / "2021" / "jinan")
    run_year(ledgers, out, 2022, region="jinan", params_file=params)
    s.doc["applicants"].append({"id": "A1", "year": 2023, "region": "jinan", "size": "medium"})  # grown in 2023
    s.write_ledgers(ledgers)
    run_year(ledgers, out, 2023, region="jinan", params_file=params)
    again, _ = run_year(ledgers, out, 2021, region="jinan", params_file=params)
    # 50% of 2021 still (60,000.00, not 48,000.00 at 40%): no adjustment proposed
    assert (again["adjustments"]["jinan"]["rows"], again["adjustments"]["jinan"]["difference"]) == (0, "0.00")
    assert pl.read_csv(out / "2021" / "jinan" / "adjustments.csv", infer_schema=False).is_empty()
    assert {k: v for k, v in tree(out / "2021" / "jinan").items() if k != "adjustments.csv"} == files
    assert again["regions"]["jinan"]["run_id"] == first["run_id"]
