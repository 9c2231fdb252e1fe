"""Spreadsheets and the bureau's own forms (issue 19): read exactly, never guessed.

Workbooks are written here with xlsxwriter. A password-protected .xlsx is an OLE2
compound file (Excel's encrypted package): the test writes that file's signature
with nothing after it, which is what the reader looks at first. No .ods fixture is
written (no ODS writer is a dependency); .ods goes through the same calamine reader.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
from typer.testing import CliRunner

from disburse.cli import app
from disburse.job import run_year
from disburse.ledgers import LEDGERS, ROW, InputError, read_ledgers
from tests.scenario import Scenario
from tests.test_validate import IDS, REGIONS, CLAUSES, frame, good_row
from transforms.validate import validate

ROOT = Path(__file__).parent.parent
DEMO, DEMO_XLSX = ROOT / "fixtures" / "demo", ROOT / "fixtures" / "demo_xlsx"
TWO_REGIONS = ROOT / "tests" / "scenarios" / "engine" / "two_regions.yaml"


def table(path: Path, region: str, name: str) -> pl.DataFrame:
    return pl.read_csv(path / region / name, infer_schema=False).drop("run_id", strict=False)


def test_the_demo_as_one_chinese_workbook_pays_exactly_what_the_csv_demo_pays(tmp_path: Path) -> None:
    for year in (2020, 2021):
        csv_out, xlsx_out = tmp_path / "csv", tmp_path / "xlsx"
        run_year(DEMO, csv_out, year, params_file=DEMO / "params.yaml", state_file=tmp_path / "csv.duckdb")
        run_year(DEMO_XLSX, xlsx_out, year, params_file=DEMO / "params.yaml", state_file=tmp_path / "xlsx.duckdb")
        regions = sorted(p.name for p in (csv_out / str(year)).iterdir() if p.is_dir())
        assert regions and regions == sorted(p.name for p in (xlsx_out / str(year)).iterdir() if p.is_dir())
        paid = 0
        for region in regions:
            for name in ("payments.csv", "disbursements.csv"):
                a, b = table(csv_out / str(year), region, name), table(xlsx_out / str(year), region, name)
                assert a.equals(b), (year, region, name)
                paid += a.height
        assert paid > 0


def test_the_demo_workbook_is_what_its_script_writes(tmp_path: Path) -> None:
    import subprocess, sys
    subprocess.run([sys.executable, str(ROOT / "fixtures" / "make_demo_xlsx.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    a = pl.read_excel(tmp_path / "台账.xlsx", sheet_id=0, engine="calamine")
    b = pl.read_excel(DEMO_XLSX / "台账.xlsx", sheet_id=0, engine="calamine")
    assert a.keys() == b.keys() and all(a[k].equals(b[k]) for k in a)


# --- cells read exactly -----------------------------------------------------------

def workbook(path: Path, sheets: dict[str, list[list]], hidden: tuple[str, ...] = ()) -> Path:
    """Write SHEETS (name -> rows, the first the header); a cell is a value or (kind, value)."""
    book = xlsxwriter.Workbook(path)
    date = book.add_format({"num_format": "yyyy-mm-dd"})
    for name, rows in sheets.items():
        ws = book.add_worksheet(name)
        if name in hidden:
            ws.hide()
        for i, row in enumerate(rows):
            for j, cell in enumerate(row):
                kind, v = cell if isinstance(cell, tuple) else ("auto", cell)
                if v is None and kind == "auto":
                    continue
                if kind == "formula":
                    ws.write_formula(i, j, v, None, "")  # no result stored, as a program writes it
                elif kind == "cached":
                    ws.write_formula(i, j, v[0], None, v[1])
                elif kind == "merge":
                    ws.merge_range(i, j, i + v[1] - 1, j, v[0])
                elif isinstance(v, bool):
                    ws.write_boolean(i, j, v)
                elif isinstance(v, (int, float)):
                    ws.write_number(i, j, v)
                elif isinstance(v, dt.date):
                    ws.write_datetime(i, j, dt.datetime(v.year, v.month, v.day), date)
                else:
                    ws.write_string(i, j, v)
    book.close()
    return path


def compute_rows(*rows: list) -> list[list]:
    head = ["账单编号", "统一社会信用代码", "年度", "账单日期", "算力类别", "服务商", "是否关联方", "账单金额"]
    return [head, *rows]


def bill(i: int, **kw) -> list:
    row = {"row_id": f"C{i}", "applicant_id": IDS[0], "year": 2021, "billed_on": dt.date(2021, 3, 1),
           "category": "云服务", "vendor": "某云", "related_party": "否", "amount": 100.5}
    row.update(kw)
    return list(row.values())


def applicants_csv(directory: Path) -> None:
    rows = [good_row("applicants", 0)]
    pl.DataFrame(rows).write_csv(directory / "applicants.csv")


def read_compute(tmp_path: Path, rows: list[list]) -> tuple[pl.DataFrame, pl.DataFrame]:
    d = tmp_path / "ledgers"
    d.mkdir(exist_ok=True)
    applicants_csv(d)
    workbook(d / "台账.xlsx", {"算力账单": compute_rows(*rows)})
    raw = read_ledgers(d).frames
    v = validate(raw, REGIONS, CLAUSES)
    return v.accepted["compute"], v.rejected


def test_cells_are_read_by_their_type_and_faults_are_rejected_rows_named_by_their_excel_row(tmp_path: Path) -> None:
    accepted, rejected = read_compute(tmp_path, [
        bill(1),                                                       # row 2: a good row
        bill(2, amount=("cached", ("=0.1+0.2", 0.1 + 0.2))),          # row 3: a result of 0.30000000000000004
        bill(3, applicant_id=913101150000000000),                      # row 4: a credit code as a number
        bill(4, billed_on=44256),                                      # row 5: a serial number in a number cell
        bill(5, billed_on="44256"),                                    # row 6: ... and in a text cell
        bill(6, amount=("formula", "=1+2")),                           # row 7: a formula with no result stored
        [None] * 8,                                                    # row 8: a blank row: skipped
        bill(7, amount=("cached", ("=100+0.5", 100.5))),               # row 9: a formula with its result: read
        bill(8, billed_on="3/4/2021"),                                 # row 10: day and month either way
        bill(9, amount="1.234,56"),                                    # row 11: separators either way
        ["合计", None, None, None, None, None, None, 301.0],            # row 12: a total row
        [None, None, None, None, None, None, None, 301.0],             # row 13: a blank id with a sum
    ])
    assert accepted[ROW].to_list() == [2, 9]
    assert accepted["amount"].to_list() == [10050, 10050]
    assert accepted["billed_on"].to_list() == [dt.date(2021, 3, 1)] * 2
    got = rejected.select("row", "column", pl.col("reason").str.split(":").list.first()).rows()
    assert got == [
        (3, "amount", "inexact_number"), (4, "applicant_id", "id_as_number"), (5, "billed_on", "serial_date"),
        (6, "billed_on", "serial_date"), (7, "amount", "formula_no_value"), (10, "billed_on", "ambiguous_date"),
        (11, "amount", "ambiguous_money"), (12, None, "total_row"), (13, None, "total_row"),
    ]
    assert rejected.filter(pl.col("row") == 3)["value"].item() == "0.30000000000000004"


def test_merged_cells_hold_their_value_in_the_first_row_only(tmp_path: Path) -> None:
    rows = [bill(1), bill(2)]
    rows[0][1] = ("merge", (IDS[0], 2))  # one applicant id merged over two rows
    rows[1][1] = None
    accepted, rejected = read_compute(tmp_path, rows)
    assert accepted[ROW].to_list() == [2]
    assert rejected.select("row", "column", pl.col("reason").str.split(":").list.first()).rows() == [
        (3, "applicant_id", "missing_value")]


def test_hidden_sheets_are_ignored_and_other_sheets_too(tmp_path: Path) -> None:
    d = tmp_path / "ledgers"
    d.mkdir()
    applicants_csv(d)
    workbook(d / "book.xlsx", {"说明": [["x"]], "算力账单": compute_rows(bill(1)), "rd": [["nonsense"]]}, hidden=("rd",))
    read = read_ledgers(d)
    assert read.frames["compute"].height == 1 and read.sheets["compute"][0] == "算力账单"
    assert read.frames["rd"].height == 0 and read.files["rd"] is None


def test_sheets_read_two_at_a_time_read_as_one_after_another(monkeypatch) -> None:
    import disburse.ledgers as ledgers

    together = read_ledgers(DEMO_XLSX)
    monkeypatch.setattr(ledgers, "SHEET_THREADS", 1)
    alone = read_ledgers(DEMO_XLSX)
    assert together.sheets == alone.sheets and all(v is not None for v in together.sheets.values())
    for name, frame in alone.frames.items():
        assert together.frames[name].equals(frame), name


def test_of_two_faulty_sheets_the_first_ledgers_fault_stops_the_run(tmp_path: Path) -> None:
    d = tmp_path / "ledgers"
    d.mkdir()
    applicants_csv(d)
    # rd comes before compute among the ledgers; compute's workbook, the larger, is read first
    workbook(d / "rd.xlsx", {"Sheet1": [["统一社会信用代码", "年度"]]})
    workbook(d / "compute.xlsx", {"Sheet1": [["账单编号"], *[[f"C{i}"] for i in range(200)]]})
    with pytest.raises(InputError, match="missing column rd_expense in ledger rd"):
        read_ledgers(d)


# --- what bad input gets: one line, the run stopped ------------------------------------

def bad_dir(tmp_path: Path, case: str) -> Path:
    d = tmp_path / "ledgers"
    Scenario(TWO_REGIONS).write_ledgers(d)
    if case == "password":
        (d / "compute.xlsx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504)
        (d / "compute.csv").unlink(missing_ok=True)
    elif case == "corrupt":
        (d / "台账.xlsx").write_bytes(b"PK\x03\x04" + b"\0" * 100)
    elif case == "lying_extension":
        shutil.copy(d / "applicants.csv", d / "台账.xlsx")
    elif case == "empty_workbook":
        workbook(d / "台账.xlsx", {"Sheet1": []})
    elif case == "empty_sheet":
        workbook(d / "rd.xlsx", {"Sheet1": []})
    elif case == "two_sheets":
        workbook(d / "台账.xlsx", {"研发投入": [["applicant_id", "year", "rd_expense"]],
                                    "rd": [["applicant_id", "year", "rd_expense"]]})
    elif case == "csv_and_sheet":
        pl.DataFrame({"applicant_id": [], "year": [], "rd_expense": []}, schema={k: pl.String for k in ("applicant_id", "year", "rd_expense")}).write_csv(d / "rd.csv")
        workbook(d / "台账.xlsx", {"研发投入": [["统一社会信用代码", "年度", "研发投入金额"]]})
    elif case == "missing_column":
        workbook(d / "台账.xlsx", {"研发投入": [["统一社会信用代码", "年度"]]})
    elif case == "both_names":
        workbook(d / "台账.xlsx", {"研发投入": [["统一社会信用代码", "applicant_id", "年度", "研发投入金额"]]})
    return d


@pytest.mark.parametrize("case, words", [
    ("password", "password-protected"),
    ("corrupt", "unreadable workbook"),
    ("lying_extension", "not a .xlsx workbook"),
    ("empty_workbook", "no visible sheet is named for a ledger"),
    ("empty_sheet", "is empty"),
    ("two_sheets", "two sources for ledger rd"),
    ("csv_and_sheet", "two sources for ledger rd"),
    ("missing_column", "missing column rd_expense in ledger rd (a header rd_expense or 研发投入金额)"),
    ("both_names", "header 统一社会信用代码 and header applicant_id both name column applicant_id"),
])
def test_bad_input_stops_the_run_with_one_line_and_exit_2_touching_nothing(tmp_path: Path, case: str, words: str) -> None:
    d = bad_dir(tmp_path, case)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", "--year", "2021", "--ledgers", str(d), "--out", str(out),
                                      "--state", str(tmp_path / "state.duckdb")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], result.output
    assert not out.exists() or not any(out.rglob("*.csv"))
    assert not (tmp_path / "state.duckdb").exists()


def test_chinese_headers_in_csv_read_as_the_english_ones(tmp_path: Path) -> None:
    d = tmp_path / "ledgers"
    Scenario(TWO_REGIONS).write_ledgers(d)
    out_en = tmp_path / "en"
    run_year(d, out_en, 2021, state_file=tmp_path / "en.duckdb")
    zh = tmp_path / "zh"
    zh.mkdir()
    for f in d.glob("*.csv"):
        ledger = LEDGERS[f.stem]
        df = pl.read_csv(f, infer_schema=False)
        df.rename({c: ledger.column_zh()[c] for c in df.columns if c in ledger.column_zh()}).write_csv(zh / f"{ledger.zh}.csv")
    out_zh = tmp_path / "zh_out"
    run_year(zh, out_zh, 2021, state_file=tmp_path / "zh.duckdb")
    for region in ("lingang", "changning"):
        assert table(out_en / "2021", region, "payments.csv").equals(table(out_zh / "2021", region, "payments.csv"))


# --- the twin test: every accepted form reads as its canonical value -------------------

FORMS = [  # (ledger, column, canonical, the bureau's form)
    ("applicants", "above_scale", "true", "是"), ("applicants", "above_scale", "false", "否"),
    ("applicants", "credit_ok", "true", "TRUE"), ("applicants", "credit_ok", "true", "True"),
    ("applicants", "established_on", "2021-03-31", "2021/3/31"),
    ("applicants", "established_on", "2021-03-31", "2021-3-31"),
    ("applicants", "established_on", "2021-03-31", "2021年3月31日"),
    ("applicants", "size", "small", "小型"), ("applicants", "sector", "ai", "人工智能"),
    ("applicants", "region", "xuhui", "徐汇区"),
    ("compute", "amount", "216543.22", "216,543.22"), ("compute", "amount", "216543.22", "¥216,543.22"),
    ("compute", "amount", "216543.22", "￥216543.22"), ("compute", "amount", "1000", "1,000"),
    ("compute", "category", "cloud", "云服务"), ("compute", "related_party", "false", "否"),
    ("financing", "kind", "loan", "贷款"), ("projects", "higher_level", "national", "国家级"),
    ("events", "kind", "forum", "论坛"), ("rent", "area_m2", "1234.5", "1,234.5"),
]


@pytest.mark.parametrize("ledger, column, canonical, form", FORMS)
def test_each_form_a_bureau_types_reads_as_its_canonical_value(ledger, column, canonical, form) -> None:
    def accepted(value: str) -> pl.DataFrame:
        rows = {"applicants": [good_row("applicants", 0)]}
        if ledger != "applicants":
            rows[ledger] = [good_row(ledger, 0)]
        rows[ledger][0][column] = value
        raw = {name: frame(name, r) for name, r in rows.items()}
        v = validate(raw, REGIONS, CLAUSES, region_zh={"xuhui": "徐汇区", "lingang": "临港新片区"})
        assert v.rejected.is_empty(), v.rejected.to_dicts()
        return v.accepted[ledger]
    assert accepted(form).equals(accepted(canonical))


@pytest.mark.parametrize("column, value, code", [
    ("established_on", "3/4/2021", "ambiguous_date"), ("established_on", "44286", "serial_date"),
    ("established_on", "2021/3/31 10:00", "bad_date"), ("size", "小微", "ambiguous_value"),
    ("size", "中小", "ambiguous_value"), ("above_scale", "Y", "bad_bool"),
])
def test_anything_that_could_mean_two_things_is_rejected_with_its_reason(column, value, code) -> None:
    row = good_row("applicants", 0)
    row[column] = value
    v = validate({"applicants": frame("applicants", [row])}, REGIONS, CLAUSES)
    assert v.rejected.select("column", pl.col("reason").str.split(":").list.first()).rows() == [(column, code)]


@pytest.mark.parametrize("value", ["1.234,56", "216,54.3", "1,23", "12,3456.00"])
def test_money_with_separators_that_could_mean_two_things_is_rejected(value) -> None:
    rows = {"applicants": [good_row("applicants", 0)], "rd": [good_row("rd", 0)]}
    rows["rd"][0]["rd_expense"] = value
    v = validate({n: frame(n, r) for n, r in rows.items()}, REGIONS, CLAUSES)
    assert v.rejected.select(pl.col("reason").str.split(":").list.first()).to_series().to_list() == ["ambiguous_money"]


def test_validate_lists_a_workbooks_faults_in_chinese(tmp_path: Path) -> None:
    d = tmp_path / "ledgers"
    d.mkdir()
    applicants_csv(d)
    workbook(d / "台账.xlsx", {"算力账单": compute_rows(bill(1), bill(2, amount=("cached", ("=0.1+0.2", 0.1 + 0.2))), bill(3, billed_on="3/4/2021"))})
    result = CliRunner().invoke(app, ["validate", "--ledgers", str(d), "--rejected", str(tmp_path / "rej.csv")],
                                terminal_width=400)
    assert result.exit_code == 0, result.output
    assert "台账.xlsx 工作表 算力账单 第 3 行 账单金额（amount）" in result.output
    assert "数字单元格的值不是精确到分的金额" in result.output and "日期有两种读法" in result.output
    rej = pl.read_csv(tmp_path / "rej.csv", infer_schema=False)
    assert rej.select("file", "sheet", "row", "reason", "说明").rows()[0][:3] == ("台账.xlsx", "算力账单", "3")
    assert rej["说明"].str.contains("[\u4e00-\u9fff]").all()


def test_verify_names_a_ledger_sheet_changed_since_the_run_and_only_that_sheet(tmp_path: Path) -> None:
    """The manifest holds each ledger file's sha256 and, for a sheet, the sheet's; `disburse verify` names a
    ledger changed since the run (a note: the outputs still match what the run read), and a workbook whose
    other sheets changed does not make its unchanged sheets look changed."""
    openpyxl = pytest.importorskip("openpyxl")
    ledgers, out = tmp_path / "ledgers", tmp_path / "out"
    shutil.copytree(DEMO_XLSX, ledgers)
    run_year(ledgers, out, 2020, params_file=DEMO / "params.yaml")
    runner = CliRunner()
    quiet = runner.invoke(app, ["verify", str(out / "2020")])
    assert quiet.exit_code == 0 and "注意" not in quiet.output, quiet.output
    book_path = next(ledgers.glob("*.xlsx"))
    book = openpyxl.load_workbook(book_path)
    sheet = book["房租"]
    sheet.cell(row=2, column=sheet.max_column).value = "改动"  # one cell of one sheet
    book.save(book_path)
    noted = runner.invoke(app, ["verify", str(out / "2020")])
    assert noted.exit_code == 0, noted.output  # the outputs are as the run wrote them
    notes = [line for line in noted.output.splitlines() if line.startswith("注意")]
    assert len(notes) == 1 and "台账 rent" in notes[0] and "房租" in notes[0], noted.output


def test_a_sheet_with_empty_columns_reads_with_nothing_on_stderr(tmp_path: Path) -> None:
    """The spreadsheet reader logs a warning for every empty column; a run or a check says nothing on stderr
    unless it fails."""
    import subprocess
    import sys

    book = xlsxwriter.Workbook(tmp_path / "台账.xlsx")
    sheet = book.add_worksheet("申报主体")
    header = ["统一社会信用代码", "企业名称", "region", "established_on", "registered_in_region_on", "size",
              "above_scale", "sector", "credit_ok", "relocated_out_on", "fraud_found_on"]
    sheet.write_row(0, 0, header)
    sheet.write_row(1, 0, [IDS[0], "甲", "lingang", "2019-01-01", "2019-01-01", "small", "是", "ai", "是"])
    book.close()
    done = subprocess.run([sys.executable, "-c", "from disburse.entry import main; main()", "validate",
                           "--ledgers", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
