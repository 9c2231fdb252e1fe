"""Paid years are never overwritten (issue 10, item 4): approve, keep replaced runs, adjustments."""

from __future__ import annotations

import hashlib
import json
import re
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
    assert result.exit_code == 0 and f"的运行 {first['run_id']}" in result.output and "审批人 王会计" in result.output
    con = duckdb.connect(str(out / "state.duckdb"), read_only=True)
    assert con.execute("select run_id, approved_by from approvals").fetchall() == [(first["run_id"], "王会计")]
    con.close()
    files, rows = tree(out / "2021" / "lingang"), state_rows(out / "state.duckdb")

    bill(ledgers, "900000.00")  # lingang.4 recomputed: 10% × 300,000 + 50% × 600,000 = 330,000.00
    second, _ = run_year(ledgers, out, 2021)
    now = tree(out / "2021" / "lingang")
    assert {k: v for k, v in now.items() if not k.startswith("adjustments.")} == files  # approved files byte-identical
    assert state_rows(out / "state.duckdb") == rows  # runs, lines and clawbacks untouched
    adj = pl.read_csv(out / "2021" / "lingang" / "adjustments.csv", infer_schema=False)
    # by hand: approved 280,000.00, recomputed 330,000.00, 50,000.00 more to pay
    assert adj.select("applicant_id", "clause_id", "approved", "recomputed", "difference", "action").rows() == [
        (L1, "lingang.4", "280000.00", "330000.00", "50000.00", "pay")]
    assert adj["approved_run_id"][0] == first["run_id"] and adj["run_id"][0] == second["run_id"]
    assert adj["说明"].to_list() == ["补付"]  # the action in words beside its code
    assert second["adjustments"]["lingang"]["difference"] == "50000.00"
    assert second["regions"]["lingang"]["run_id"] == first["run_id"]  # the manifest still names the approved run
    assert "lingang" not in second["regions_in_this_run"]  # its files were not replaced
    assert paid_before(out, 2022) == 28_000_000  # the adjustment is not approved yet: only the approved lines count

    result = approve(out, "--by", "王会计")
    assert result.exit_code == 0 and "1 项调整" in result.output and "补付 1 项 50,000.00 元" in result.output
    assert paid_before(out, 2022) == 28_000_000 + 5_000_000  # approved lines + approved adjustment
    # only adjustments.xlsx changes: its cover now says the adjustments were approved
    assert {k: v for k, v in tree(out / "2021" / "lingang").items() if k != "adjustments.xlsx"} == \
        {k: v for k, v in now.items() if k != "adjustments.xlsx"}

    bill(ledgers, "700000.00")  # lingang.4: 30,000 + 50% × 400,000 = 230,000.00; approved so far 330,000.00
    run_year(ledgers, out, 2021)
    adj = pl.read_csv(out / "2021" / "lingang" / "adjustments.csv", infer_schema=False)
    assert adj.select("approved", "recomputed", "difference", "action", "说明").rows() == [
        ("330000.00", "230000.00", "-100000.00", "recover", "追回")]
    assert paid_before(out, 2022) == 33_000_000  # the pending recovery counts only once approved
    assert approve(out).exit_code == 0
    assert paid_before(out, 2022) == 23_000_000
    again = approve(out)
    assert again.exit_code == 2 and "已经审批，没有待审批的调整" in again.output
    result = CliRunner().invoke(app, ["verify", str(out / "2021")])
    assert result.exit_code == 0, result.output


def test_approving_a_year_never_run_is_one_line(ledgers: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_year(ledgers, out, 2021, region="changning")
    result = approve(out)
    assert result.exit_code == 2 and "没有 2021 年度 lingang 的运行记录" in result.output


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
    assert {k: v for k, v in tree(out / "2021" / "jinan").items() if not k.startswith("adjustments.")} == files
    assert again["regions"]["jinan"]["run_id"] == first["run_id"]


# --- the signed papers say they are approved (issue 20, item 4) ------------------------------------------

def cover(path: Path) -> dict:
    openpyxl = pytest.importorskip("openpyxl")
    return {r[0]: r[1] for r in openpyxl.load_workbook(path)["封面"].iter_rows(values_only=True) if r[0]}


def test_approve_stamps_the_cover_and_the_audit_and_verify_still_passes(ledgers: Path, tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    out = tmp_path / "out"
    first, _ = run_year(ledgers, out, 2021)
    region = out / "2021" / "lingang"
    before = tree(region)
    assert cover(region / "payments.xlsx")["审批状态"].startswith("未审批")
    assert "审批人" not in cover(region / "payments.xlsx") or cover(region / "payments.xlsx")["审批人"] is None
    assert "<td>审批状态</td><td colspan=\"3\">未审批" in (region / "audit.html").read_text(encoding="utf-8")

    result = approve(out, "--by", "王会计")
    assert result.exit_code == 0, result.output
    assert "280,000.00" in result.output  # the total it approves
    page = cover(region / "payments.xlsx")
    assert page["审批状态"] == f"已审批（运行 {first['run_id']}）" and page["审批人"] == "王会计"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", page["审批时间（北京时间）"])
    html = (region / "audit.html").read_text(encoding="utf-8")
    assert f"已审批：运行 {first['run_id']}，应付合计 280,000.00 元" in html and "<b>王会计</b>" in html
    assert page["审批时间（北京时间）"] in html
    # nothing else changed: the other files byte for byte, the workbook's data sheets cell for cell
    after = tree(region)
    assert {k for k in after if after[k] != before[k]} == {"payments.xlsx", "audit.html"}
    wb = openpyxl.load_workbook(region / "payments.xlsx")
    assert list(wb["付款"].iter_rows(values_only=True))[1] == (L1, "L1", 280000)
    manifest = json.loads((out / "2021" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["regions"]["lingang"]["approval"]["by"] == "王会计"
    assert manifest["regions"]["lingang"]["outputs"]["lingang/payments.xlsx"]["sha256"] == after["payments.xlsx"]
    assert not list((out / "2021").glob(".staging-*"))
    result = CliRunner().invoke(app, ["verify", str(out / "2021")])
    assert result.exit_code == 0, result.output


def test_approve_refuses_to_sign_a_file_changed_since_its_run(ledgers: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_year(ledgers, out, 2021)
    payments = out / "2021" / "lingang" / "payments.csv"
    payments.write_bytes(payments.read_bytes().replace(b"280000.00", b"380000.00"))
    result = approve(out, "--by", "王会计")
    assert result.exit_code == 2 and "lingang/payments.csv" in result.output and "不能审批" in result.output
    con = duckdb.connect(str(out / "state.duckdb"), read_only=True)
    assert con.execute("select count(*) from approvals").fetchall() == [(0,)]  # nothing recorded
    con.close()
    assert cover(out / "2021" / "lingang" / "payments.xlsx")["审批状态"].startswith("未审批")


def test_approve_on_an_unknown_region_says_so(ledgers: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_year(ledgers, out, 2021)
    result = CliRunner().invoke(app, ["approve", "--year", "2021", "--region", "pudong", "--out", str(out)])
    assert result.exit_code == 2 and "--region pudong：未知区域" in result.output and "lingang" in result.output


# --- an approved year's rerun is seen (issue 20, item 5) --------------------------------------------------

@pytest.fixture
def rerun(ledgers: Path, tmp_path: Path) -> dict:
    """Run 2021, rerun it unchanged (the first run kept under runs/), approve, then bill L1 900,000.00 and rerun."""
    out = tmp_path / "out"
    first, _ = run_year(ledgers, out, 2021)
    second, _ = run_year(ledgers, out, 2021)
    assert approve(out, "--by", "王会计").exit_code == 0
    bill(ledgers, "900000.00")  # lingang.4 recomputed: 10% × 300,000 + 50% × 600,000 = 330,000.00 (approved 280,000.00)
    third, _ = run_year(ledgers, out, 2021)
    return {"out": out, "first": first, "approved": second, "rerun": third}


def test_the_runs_summary_prints_a_line_per_approved_region(rerun: dict, capsys) -> None:
    from disburse.cli import print_summary

    print_summary(rerun["rerun"], {}, rerun["out"] / "2021")
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.startswith("lingang："))
    assert f"已审批（运行 {rerun['approved']['run_id']}）" in line and "1 项调整" in line
    assert "补付 1 项 50,000.00 元" in line and "追回 0 项 0.00 元" in line and "待审批" in line
    entry = rerun["rerun"]["adjustments"]["lingang"]
    assert (entry["pay_rows"], entry["pay"], entry["recover_rows"], entry["recover"]) == (1, "50000.00", 0, "0.00")


def test_adjustments_carry_both_amounts_and_the_recomputed_steps(rerun: dict) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    region = rerun["out"] / "2021" / "lingang"
    adj = pl.read_csv(region / "adjustments.csv", infer_schema=False)
    row = adj.row(0, named=True)
    assert (row["approved"], row["recomputed"], row["difference"], row["action"]) == ("280000.00", "330000.00", "50000.00", "pay")
    assert row["applicant_name"] == "L1" and row["clause_title"]
    approved_steps = pl.read_parquet(region / "audit_lines.parquet").filter(pl.col("applicant_id") == L1)["steps"][0]
    assert row["approved_steps"] == approved_steps and "800,000.00" in approved_steps
    assert "900,000.00" in row["recomputed_steps"] and "330,000.00" in row["recomputed_steps"]
    wb = openpyxl.load_workbook(region / "adjustments.xlsx")
    assert wb.sheetnames == ["封面", "调整"]
    rows = list(wb["调整"].iter_rows(values_only=True))
    assert rows[0][:9] == ("统一社会信用代码", "名称", "条款", "条款标题", "事项", "已审批（元）", "重算（元）", "差额（元）", "处理")
    assert rows[1][:9] == (L1, "L1", "lingang.4", row["clause_title"], row["matter_id"], 280000, 330000, 50000, "补付")
    assert rows[1][9] == row["recomputed_steps"] and rows[1][10] == approved_steps
    assert rows[3][0] == "合计（1 项）" and rows[3][5:8] == (280000, 330000, 50000)
    assert wb["调整"].freeze_panes == "A2" and wb["调整"].auto_filter.ref == "A1:K2"
    page = cover(region / "adjustments.xlsx")
    assert page["审批状态"].startswith("待审批") and page["补付合计（元）"] == 50000 and page["追回合计（元）"] == 0
    assert page["已审批的运行"] == rerun["approved"]["run_id"] and page["重算运行"] == rerun["rerun"]["run_id"]

    assert approve(rerun["out"], "--by", "李处长").exit_code == 0
    page = cover(region / "adjustments.xlsx")
    assert page["审批状态"] == "已审批（1 项：补付 50,000.00 元，追回 0.00 元）" and page["审批人"] == "李处长"
    manifest = json.loads((rerun["out"] / "2021" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["adjustments"]["lingang"]["status"] == "approved"
    assert CliRunner().invoke(app, ["verify", str(rerun["out"] / "2021")]).exit_code == 0


def test_explain_shows_the_approved_and_the_recomputed_amount_and_why(rerun: dict) -> None:
    result = CliRunner().invoke(app, ["explain", "--year", "2021", "--applicant", L1, "--out", str(rerun["out"])])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "应付：280,000.00" in text  # the approved line
    assert f"以上为已审批运行 {rerun['approved']['run_id']} 的明细" in text
    assert "已审批 280,000.00 → 重算 330,000.00，差额 +50,000.00（补付，待审批）" in text
    why = text.split("重算的计算步骤")[1]
    assert "900,000.00" in why and "330,000.00" in why
    assert approve(rerun["out"]).exit_code == 0
    text = CliRunner().invoke(app, ["explain", "--year", "2021", "--applicant", L1, "--out", str(rerun["out"])]).output
    assert "（补付，已审批）" in text


def test_diff_compares_the_approved_run_with_its_recomputation(rerun: dict, tmp_path: Path) -> None:
    region = rerun["out"] / "2021" / "lingang"
    old = region / "runs" / rerun["first"]["run_id"]
    assert old.is_dir()
    # the approved files stay as they were, so as written nothing differs; the recomputation does
    as_written = CliRunner().invoke(app, ["diff", str(old), str(region), "--as-written"])
    assert as_written.exit_code == 0 and "0 of 1" in as_written.output
    for args in ([str(old), str(region)], [str(region)]):
        result = CliRunner().invoke(app, ["diff", *args, "--csv", str(tmp_path / "d.csv")])
        assert result.exit_code == 0, result.output
        assert "1 of 1" in result.output and "+50,000.00" in result.output and "adjustments.csv" in result.output
        assert pl.read_csv(tmp_path / "d.csv", infer_schema=False).rows() == [
            (L1, "lingang.4", "280000.00", "330000.00", "50000.00")]
    no_rerun = CliRunner().invoke(app, ["diff", str(old)])
    assert no_rerun.exit_code == 2 and "no adjustments.csv" in no_rerun.output


# --- find a firm by name (issue 20, item 6) ---------------------------------------------------------------

def test_explain_finds_a_firm_by_part_of_its_name(ledgers: Path, tmp_path: Path) -> None:
    applicants = pl.read_csv(ledgers / "applicants.csv", infer_schema=False)
    applicants.with_columns(pl.col("name").replace({"L1": "上海智汇算力科技有限公司", "C1": "长宁智汇数据有限公司"})
                            ).write_csv(ledgers / "applicants.csv")
    out = tmp_path / "out"
    run_year(ledgers, out, 2021)

    def explain(*args: str):
        return CliRunner().invoke(app, ["explain", "--year", "2021", "--out", str(out), *args])

    several = explain("--name", "智汇")
    assert several.exit_code == 0 and "2 户" in several.output
    assert L1 in several.output and credit_code("C1") in several.output and "长宁智汇数据有限公司" in several.output
    one = explain("--name", "算力")
    assert one.exit_code == 0 and "上海智汇算力科技有限公司" in one.output and "应付：280,000.00" in one.output
    none = explain("--name", "无此企业")
    assert none.exit_code == 1 and "没有名称含“无此企业”的申报主体" in none.output
    assert len(none.output.strip().splitlines()) == 1
    assert explain().exit_code == 2 and explain("--name", "x", "--applicant", L1).exit_code == 2


def test_an_approval_whose_stamped_files_failed_to_move_in_is_finished_by_the_next_run(
        ledgers: Path, tmp_path: Path, monkeypatch) -> None:
    from disburse import outputs

    out = tmp_path / "out"
    first, _ = run_year(ledgers, out, 2021)
    real = outputs.Staged.swap_in

    def broken(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.Staged, "swap_in", broken)
    result = approve(out, "--by", "王会计")
    assert result.exit_code == 2 and "the next run finishes it" in result.output
    con = duckdb.connect(str(out / "state.duckdb"), read_only=True)
    assert con.execute("select run_id from approvals").fetchall() == [(first["run_id"],)]  # committed
    con.close()
    assert cover(out / "2021" / "lingang" / "payments.xlsx")["审批状态"].startswith("未审批")
    monkeypatch.setattr(outputs.Staged, "swap_in", real)
    run_year(ledgers, out, 2021, region="changning")  # any run finishes what was left before it starts
    assert cover(out / "2021" / "lingang" / "payments.xlsx")["审批人"] == "王会计"
    assert not list((out / "2021").glob(".staging-*"))
    result = CliRunner().invoke(app, ["verify", str(out / "2021")])
    assert result.exit_code == 0, result.output
