"""disburse synth: realistic ledgers of any size, the same bytes for the same seed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from disburse.cli import app
from disburse.job import check, ingest
from disburse.ledgers import LEDGERS


def _synth(out: Path, *args: str):
    return CliRunner().invoke(app, ["synth", "--out", str(out), *args])


def _digests(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_rows(tmp_path: Path) -> None:
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        assert _synth(tmp_path / name, "--applicants", "400", "--seed", seed).exit_code == 0
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert _digests(tmp_path / "a") != _digests(tmp_path / "c")
    assert sorted(p.stem for p in (tmp_path / "a").iterdir()) == sorted(LEDGERS)


def test_parquet_is_typed_and_every_row_is_accepted(tmp_path: Path) -> None:
    assert _synth(tmp_path, "--applicants", "300").exit_code == 0
    compute = pl.read_parquet(tmp_path / "compute.parquet")
    assert compute.schema["amount"] == pl.Decimal(18, 2) and compute.schema["billed_on"] == pl.Date
    assert pl.read_parquet(tmp_path / "applicants.parquet").height == 300
    checked = check(ingest(tmp_path))
    assert checked.rejected.is_empty()


def test_years_keep_their_rows_and_bad_rows_are_rejected_with_reasons(tmp_path: Path) -> None:
    result = _synth(tmp_path, "--applicants", "200", "--years", "2021-2022", "--format", "csv", "--bad-rows")
    assert result.exit_code == 0, result.output
    rd = pl.read_csv(tmp_path / "rd.csv", infer_schema=False)
    assert set(rd["year"].unique()) <= {"2021", "2022"}
    checked = check(ingest(tmp_path))
    assert checked.rejected.height > 0 and checked.rejected["reason"].null_count() == 0


def test_a_bad_argument_is_one_line(tmp_path: Path) -> None:
    result = _synth(tmp_path, "--applicants", "10", "--years", "2019-2022")
    assert result.exit_code == 2 and "--years" in result.output
