"""disburse synth: realistic ledgers of any size, the same bytes for the same seed."""

from __future__ import annotations

import hashlib
import re
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


# --------------------------------------------------------------------------
# --format xlsx: a workbook per ledger, as a bureau's
# --------------------------------------------------------------------------

def test_xlsx_is_a_workbook_per_ledger_with_chinese_names_and_typed_cells(tmp_path: Path) -> None:
    import datetime as dt

    import openpyxl

    from disburse.ledgers import ENUM_ZH

    for name in ("a", "b"):
        result = _synth(tmp_path / name, "--applicants", "200", "--format", "xlsx", "--bad-rows")
        assert result.exit_code == 0, result.output
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")  # the same seed, the same bytes
    out = tmp_path / "a"
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.xlsx" for n in LEDGERS)
    csv_dir = tmp_path / "csv"
    assert _synth(csv_dir, "--applicants", "200", "--format", "csv", "--bad-rows").exit_code == 0
    for name, ledger in LEDGERS.items():
        wb = openpyxl.load_workbook(out / f"{name}.xlsx", read_only=True)
        assert wb.sheetnames == [ledger.zh]
        rows = list(wb[ledger.zh].iter_rows(values_only=True))
        assert list(rows[0]) == [c.zh for c in ledger.columns]
        text = pl.read_csv(csv_dir / f"{name}.csv", infer_schema=False)
        assert len(rows) - 1 == text.height, name  # row n of the sheet is row n of the CSV file
        for j, col in enumerate(ledger.columns):
            for cell, value in zip((r[j] for r in rows[1:]), text[col.name]):
                if value is None:
                    assert cell is None, (name, col.name)
                elif col.type == "money" and re.fullmatch(r"-?\d+(\.\d{1,2})?", value):
                    assert isinstance(cell, (int, float)) and f"{cell:.2f}" == f"{float(value):.2f}", (name, value)
                elif col.type == "date" and value == "2021-02-30":
                    assert cell == value  # the faulty date stays the text it was
                elif col.type == "date":
                    assert cell == dt.datetime.fromisoformat(value), (name, col.name, value)
                elif col.type == "bool":
                    assert cell == {"true": "是", "false": "否"}.get(value, value), (name, col.name)
                elif col.enum:
                    assert cell == ENUM_ZH[col.enum].get(value, value), (name, col.name)
                elif col.type in ("str",):
                    assert cell == value, (name, col.name)


def test_xlsx_refuses_a_ledger_longer_than_a_sheet_before_writing(tmp_path: Path, monkeypatch) -> None:
    from disburse import synth

    monkeypatch.setattr(synth, "XLSX_ROWS", 100)
    result = _synth(tmp_path / "big", "--applicants", "100", "--format", "xlsx")
    assert result.exit_code == 2 and "more than a sheet holds" in result.output
    assert not (tmp_path / "big").exists()


def test_xlsx_reads_back_as_the_csv_city_and_pays_the_same(tmp_path: Path) -> None:
    from disburse.job import ledger_counts, run_year

    for fmt in ("csv", "xlsx"):
        assert _synth(tmp_path / fmt, "--applicants", "300", "--format", fmt, "--bad-rows").exit_code == 0
    csv_checked, xlsx_checked = (check(ingest(tmp_path / fmt)) for fmt in ("csv", "xlsx"))
    assert ledger_counts(csv_checked) == ledger_counts(xlsx_checked)
    faults = [set(c.rejected.select("ledger", "row", "reason").iter_rows()) for c in (csv_checked, xlsx_checked)]
    assert faults[0] == faults[1] and faults[0]
    for fmt in ("csv", "xlsx"):
        run_year(tmp_path / fmt, tmp_path / f"out-{fmt}", 2022, allow_gaps=True,
                 params_file=Path(__file__).parent.parent / "fixtures" / "demo" / "params.yaml")
    regions = sorted(p.name for p in (tmp_path / "out-csv" / "2022").iterdir() if p.is_dir())
    assert regions
    for region in regions:
        a, b = (pl.read_csv(tmp_path / f"out-{fmt}" / "2022" / region / "payments.csv", infer_schema=False).drop("run_id")
                for fmt in ("csv", "xlsx"))
        assert a.equals(b), region
