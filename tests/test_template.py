"""disburse template: the workbook a bureau fills in, and the ledger reference it shares with docs/ledgers.md."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from typer.testing import CliRunner

from disburse.cli import app
from disburse.job import DEFAULT_RULES, run_year
from disburse.ledgers import BOOL, DATE, ENUM_ZH, INT, LEDGERS, MONEY, NUMBER, RATE, STR
from disburse.reference import ID_COLUMNS, meaning, readers
from disburse.rules import load_catalogue, natural_key, region_names
from disburse.template import GUIDE_SHEET, LIST_SHEET

DEMO = Path(__file__).parent.parent / "fixtures" / "demo"
PARAMS = DEMO / "params.yaml"


def _template(out: Path, *args: str):
    return CliRunner().invoke(app, ["template", "--out", str(out), *args])


@pytest.fixture(scope="module")
def workbook(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "台账模板.xlsx"
    result = _template(path)
    assert result.exit_code == 0, result.output
    return path


def _column_formats(ws) -> dict[int, str]:
    """Column number (1-based) -> its own number format (a column group covers min..max)."""
    return {j: dim.number_format for dim in ws.column_dimensions.values() for j in range(dim.min, dim.max + 1)}


def test_a_sheet_per_ledger_with_the_chinese_header_and_english_names_in_comments(workbook: Path) -> None:
    wb = openpyxl.load_workbook(workbook)
    assert wb.sheetnames == [GUIDE_SHEET, *(ledger.zh for ledger in LEDGERS.values()), LIST_SHEET]
    assert wb[LIST_SHEET].sheet_state == "hidden" and wb[GUIDE_SHEET].sheet_state == "visible"
    for ledger in LEDGERS.values():
        ws = wb[ledger.zh]
        assert ws.max_row == 1, ledger.name  # the header only: no empty formatted cells for the reader to see
        assert [c.value for c in ws[1]] == [c.zh for c in ledger.columns]
        assert [c.comment.text.split("\n")[0] for c in ws[1]] == ledger.column_names
        assert ws.freeze_panes == "A2"


def test_ids_are_text_dates_and_money_formatted(workbook: Path) -> None:
    wb = openpyxl.load_workbook(workbook)
    want = {STR: "@", BOOL: "@", DATE: "yyyy-mm-dd", MONEY: "#,##0.00"}
    for ledger in LEDGERS.values():
        formats = _column_formats(wb[ledger.zh])
        for j, col in enumerate(ledger.columns, start=1):
            if col.type in want:
                assert formats.get(j) == want[col.type], (ledger.name, col.name, formats.get(j))
            if col.name in ID_COLUMNS:
                assert formats.get(j) == "@", (ledger.name, col.name)


def test_every_enumeration_yes_no_region_and_clause_column_has_its_drop_down(workbook: Path) -> None:
    wb = openpyxl.load_workbook(workbook)
    cat = load_catalogue(DEFAULT_RULES)
    lists = wb[LIST_SHEET]
    for ledger in LEDGERS.values():
        ws = wb[ledger.zh]
        found = {}
        for dv in ws.data_validations.dataValidation:
            sheet, first, last = re.fullmatch(r"'(.+)'!\$([A-Z]+)\$2:\$[A-Z]+\$(\d+)", dv.formula1).group(1, 2, 3)
            assert sheet == LIST_SHEET and dv.type == "list" and dv.allow_blank
            values = [lists[f"{first}{i}"].value for i in range(2, int(last) + 1)]
            for ref in str(dv.sqref).split():
                column = re.fullmatch(r"([A-Z]+)2:\1(\d+)", ref)
                assert column and column.group(2) == "1048576", ref  # every row under the header
                found[openpyxl.utils.column_index_from_string(column.group(1)) - 1] = values
        for j, col in enumerate(ledger.columns):
            if col.enum:
                expected = [ENUM_ZH[col.enum][v] for v in col.enum]
            elif col.type == BOOL:
                expected = ["是", "否"]
            elif col.name == "region":
                expected = [region_names(cat)[r] for r in cat.regions]
            elif col.name == "clause_id":
                expected = sorted(cat.rules, key=natural_key)
            else:
                assert j not in found, (ledger.name, col.name)
                continue
            assert found.get(j) == expected, (ledger.name, col.name)


def test_the_guide_explains_every_column_with_the_clauses_that_read_it(workbook: Path) -> None:
    rows = list(openpyxl.load_workbook(workbook)[GUIDE_SHEET].iter_rows(values_only=True))
    header = next(i for i, r in enumerate(rows) if r[0] == "台账")
    by = {(r[1], r[3]): r for r in rows[header + 1:] if r[3]}
    read = readers(load_catalogue(DEFAULT_RULES))
    for ledger in LEDGERS.values():
        for col in ledger.columns:
            row = by[(ledger.name, col.name)]
            assert row[0] == ledger.zh and row[2] == col.zh and row[6] == meaning(ledger.name, col.name).zh
            assert row[8] == ("、".join(read[(ledger.name, col.name)]) if (ledger.name, col.name) in read else "—")
    assert "changning.6.1a" in by[("rent", "rent_paid")][8] and "lingang.4" in by[("compute", "amount")][8]
    assert "jinan.9a" in by[("financing", "investor_id")][8]  # the payee


def test_every_example_is_a_value_its_column_accepts() -> None:
    cat = load_catalogue(DEFAULT_RULES)
    forms = {INT: r"\d+", NUMBER: r"\d+(\.\d+)?", RATE: r"0(\.\d{1,6})?|1", MONEY: r"\d{1,3}(,\d{3})*\.\d{2}",
             DATE: r"\d{4}-\d{2}-\d{2}", BOOL: "是|否"}
    for ledger in LEDGERS.values():
        for col in ledger.columns:
            example = meaning(ledger.name, col.name).example
            if not example:
                assert col.nullable, (ledger.name, col.name)
            elif col.enum:
                assert example in ENUM_ZH[col.enum].values(), (ledger.name, col.name, example)
            elif col.name == "region":
                assert example in region_names(cat).values()
            elif col.name == "clause_id":
                assert example in cat.rules
            elif col.type in forms:
                assert re.fullmatch(forms[col.type], example), (ledger.name, col.name, example)


def test_ledgers_option_keeps_the_applicants_and_bad_arguments_are_one_line(tmp_path: Path) -> None:
    result = _template(tmp_path / "t.xlsx", "--ledgers", "房租,compute")
    assert result.exit_code == 0, result.output
    assert openpyxl.load_workbook(tmp_path / "t.xlsx").sheetnames == [GUIDE_SHEET, "申报主体", "房租", "算力账单", LIST_SHEET]
    for args, words in (
        (("--ledgers", "rent,bills"), "bills is no ledger"),
        ((), "named after one ledger"),
    ):
        out = tmp_path / ("applicants.xlsx" if not args else "x.xlsx")
        result = _template(out, *args)
        assert result.exit_code == 2 and words in result.output and not out.exists(), result.output
    assert _template(tmp_path / "t.csv").exit_code == 2
    assert _template(tmp_path / "nowhere" / "t.xlsx").exit_code == 2
    (tmp_path / "dir.xlsx").mkdir()
    result = _template(tmp_path / "dir.xlsx")
    assert result.exit_code == 2 and "cannot be written" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.xlsx", "t.xlsx"]  # nothing left half-written


# --------------------------------------------------------------------------
# The round trip: the demo typed into the template pays what the demo's CSV files pay
# --------------------------------------------------------------------------

def _typed_as_a_bureau_would(col, value: str | None, regions: dict[str, str]):
    """A demo CSV value as a person fills the template in: dates as dates, money and numbers as numbers,
    yes/no as 是/否, enumerations and regions by their Chinese names; a faulty value stays the text it was."""
    if value is None or value == "":
        return None
    if col.type == DATE and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return value
    if col.type in (MONEY, NUMBER, RATE) and re.fullmatch(r"-?\d+(\.\d+)?", value):
        return float(value)
    if col.type == INT and re.fullmatch(r"\d+", value):
        return int(value)
    if col.type == BOOL:
        return {"true": "是", "false": "否"}.get(value, value)
    if col.enum:
        return ENUM_ZH[col.enum].get(value, value)
    if col.name == "region":
        return regions.get(value, value)
    return value


def fill_with_the_demo(template: Path, out: Path) -> None:
    regions = region_names(load_catalogue(DEFAULT_RULES))
    wb = openpyxl.load_workbook(template)
    for ledger in LEDGERS.values():
        ws = wb[ledger.zh]
        df = pl.read_csv(DEMO / f"{ledger.name}.csv", infer_schema=False)
        for i, row in enumerate(df.iter_rows(named=True), start=2):
            for j, col in enumerate(ledger.columns, start=1):
                value = _typed_as_a_bureau_would(col, row.get(col.name), regions)
                if value is not None:
                    ws.cell(i, j, value)
    wb.save(out)


def test_the_demo_typed_into_the_template_pays_what_its_csv_files_pay(workbook: Path, tmp_path: Path) -> None:
    filled = tmp_path / "ledgers" / "台账.xlsx"
    filled.parent.mkdir()
    fill_with_the_demo(workbook, filled)
    for year in (2020, 2021):
        run_year(DEMO, tmp_path / "csv", year, params_file=PARAMS)
        run_year(filled.parent, tmp_path / "xlsx", year, params_file=PARAMS)
        regions = sorted(p.name for p in (tmp_path / "csv" / str(year)).iterdir() if p.is_dir())
        assert regions == sorted(p.name for p in (tmp_path / "xlsx" / str(year)).iterdir() if p.is_dir())
        paid = 0
        for region in regions:
            csv_payments, xlsx_payments = (
                pl.read_csv(o / str(year) / region / "payments.csv", infer_schema=False).drop("run_id")
                for o in (tmp_path / "csv", tmp_path / "xlsx"))
            assert csv_payments.equals(xlsx_payments), (year, region)
            paid += csv_payments.height
        assert paid > 0, year


def test_ledgers_reference_prints_docs_ledgers_md_and_writes_it(tmp_path: Path) -> None:
    docs = Path(__file__).parent.parent / "docs" / "ledgers.md"
    printed = CliRunner().invoke(app, ["ledgers", "reference"])
    assert printed.exit_code == 0 and printed.output == docs.read_text(encoding="utf-8")
    assert CliRunner().invoke(app, ["ledgers", "reference", "--out", str(tmp_path / "l.md")]).exit_code == 0
    assert (tmp_path / "l.md").read_text(encoding="utf-8") == docs.read_text(encoding="utf-8")
    for ledger in LEDGERS.values():  # every ledger and column, by both names
        assert f"### `{ledger.name}` {ledger.zh}" in printed.output
        for col in ledger.columns:
            assert f"| `{col.name}` | {col.zh} |" in printed.output, (ledger.name, col.name)
