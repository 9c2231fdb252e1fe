"""disburse diff: two runs' payable per applicant and clause, before, after, difference (issue 10, item 7)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from disburse.cli import app
from disburse.diff import diff

A, B, C = "91310000MA1FL0001A", "91310000MA1FL0002B", "91310000MA1FL0003C"


def disbursements(directory: Path, rows: list[tuple[str, str, str]]) -> Path:
    """A region directory holding disbursements.parquet with (applicant, clause, payable yuan) lines."""
    directory.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"applicant_id": [r[0] for r in rows], "clause_id": [r[1] for r in rows],
                  "payable": [Decimal(r[2]) for r in rows]},
                 schema={"applicant_id": pl.String, "clause_id": pl.String, "payable": pl.Decimal(18, 2)}
                 ).write_parquet(directory / "disbursements.parquet")
    return directory


def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    before = disbursements(tmp_path / "2021/lingang/runs/R1", [
        (A, "lingang.8", "100000.00"),
        (A, "lingang.8", "0.01"),           # a second line of the same clause: summed, 100,000.01
        (B, "lingang.12", "2500000.10"),
        (C, "lingang.3", "33.33"),          # gone from the rerun
    ])
    after = disbursements(tmp_path / "2021/lingang", [
        (A, "lingang.8", "99999.99"),       # 0.02 less than 100,000.01: -0.02
        (B, "lingang.12", "2500000.10"),    # unchanged
        (B, "lingang.3", "0.07"),           # new: +0.07
    ])
    return before, after


def test_diff_is_exact_per_applicant_and_clause_largest_first(tmp_path: Path) -> None:
    d = diff(*two_runs(tmp_path))
    # by hand: C lingang.3 33.33 -> 0 (-3,333 fen); B lingang.3 0 -> 0.07 (+7); A lingang.8 100,000.01 -> 99,999.99 (-2)
    assert d.rows() == [
        (C, "lingang.3", 3_333, 0, -3_333),
        (B, "lingang.3", 0, 7, 7),
        (A, "lingang.8", 10_000_001, 9_999_999, -2),
        (B, "lingang.12", 250_000_010, 250_000_010, 0),
    ]


def test_cli_diff_prints_the_table_and_writes_csv(tmp_path: Path) -> None:
    before, after = two_runs(tmp_path)
    out = tmp_path / "diff.csv"
    result = CliRunner().invoke(app, ["diff", str(before), str(after), "--csv", str(out), "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert "3 of 4" in result.output and "-33.33" in result.output and "+0.07" in result.output
    assert "-0.02" not in result.output and "1 more" in result.output  # capped at --limit
    assert "difference -33.28" in result.output  # -33.33 + 0.07 - 0.02
    csv = pl.read_csv(out, infer_schema=False)
    assert csv.rows() == [
        (C, "lingang.3", "33.33", "0.00", "-33.33"),
        (B, "lingang.3", "0.00", "0.07", "0.07"),
        (A, "lingang.8", "100000.01", "99999.99", "-0.02"),
        (B, "lingang.12", "2500000.10", "2500000.10", "0.00"),
    ]


def test_cli_diff_without_a_run_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["diff", str(tmp_path / "nothing"), str(tmp_path)])
    assert result.exit_code == 2 and "no disbursements.parquet" in result.output
