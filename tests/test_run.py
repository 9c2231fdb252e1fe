"""The run as a whole (issue: walking skeleton): CLI, file faults, state, reruns, atomicity."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from disburse import job, outputs, state
from disburse.cli import app
from disburse.job import check, ingest, ledger_counts, preflight, run_year
from disburse.ledgers import InputError
from tests.scenario import Scenario, credit_code

LEDGERS = Path(__file__).parent / "scenarios" / "engine" / "two_regions.yaml"


@pytest.fixture
def ledgers(tmp_path: Path) -> Path:
    Scenario(LEDGERS).write_ledgers(tmp_path / "ledgers")
    return tmp_path / "ledgers"


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".wal"}


def state_rows(path: Path) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select year, region, applicant_id, clause_id, matter_id, payable_fen from lines order by all").fetchall()
    finally:
        con.close()


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_cli_run_prints_summary_and_writes_files(ledgers: Path, tmp_path: Path, prefect_api) -> None:
    out = tmp_path / "out"
    result = cli("run", "--year", "2021", "--ledgers", str(ledgers), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "lingang" in result.output and "280,000.00" in result.output  # the terminal's yuan: thousands separated
    assert "已替换运行" not in result.output
    for name in ("disbursements.csv", "disbursements.parquet", "payments.csv", "clawbacks.csv", "rejected.csv",
                 "audit.html", "audit_lines.parquet"):
        assert (out / "2021" / "lingang" / name).is_file(), name
    manifest = json.loads((out / "2021" / "manifest.json").read_text())
    for name, d in manifest["inputs"].items():
        assert d["rows"] == d["accepted"] + d["rejected"], name
    assert manifest["inputs"]["compute"] == {**manifest["inputs"]["compute"], "rows": 3, "accepted": 2, "rejected": 1}
    assert manifest["regions"]["lingang"]["total_payable"] == "280000.00"
    for path, d in manifest["regions"]["lingang"]["outputs"].items():
        assert hashlib.sha256((out / "2021" / path).read_bytes()).hexdigest() == d["sha256"], path
    orphans = manifest["rejected_without_region"]
    assert orphans["sha256"] == hashlib.sha256((out / "2021" / "rejected.csv").read_bytes()).hexdigest()
    assert (out / "state.duckdb").is_file()
    # Run again: the terminal says which run it replaced and where that run's files are kept.
    rerun = cli("run", "--year", "2021", "--ledgers", str(ledgers), "--out", str(out))
    assert rerun.exit_code == 0, rerun.output
    kept = out / "2021" / "lingang" / "runs" / manifest["run_id"]
    assert f"lingang：已替换运行 {manifest['run_id']}，原文件保存在 {kept}" in rerun.output, rerun.output
    assert (kept / "payments.csv").is_file()
    assert json.loads((out / "2021" / "manifest.json").read_text())["replaced_runs"]["lingang"] == manifest["run_id"]


def test_finance_files_are_exact_yuan_with_bom(ledgers: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    manifest, _ = run_year(ledgers, out, 2021)
    raw = (out / "2021" / "lingang" / "payments.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    payments = pl.read_csv(out / "2021" / "lingang" / "payments.csv", infer_schema=False)
    assert payments.columns == ["applicant_id", "applicant_name", "total_payable", "year", "run_id"]
    assert payments.rows() == [(credit_code("L1"), "L1", "280000.00", "2021", manifest["run_id"])]
    parquet = pl.read_parquet(out / "2021" / "lingang" / "disbursements.parquet")
    assert parquet.schema["payable"] == pl.Decimal(18, 2)
    assert str(parquet["payable"][0]) == "280000.00"


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda d: (d / "applicants.csv").unlink(), "applicants.csv: required ledger applicants not found"),
        (lambda d: (d / "compute.csv").write_text("row_id,applicant_id,year,billed_on,category,vendor,related_party\n"),
         "compute.csv: missing column amount in ledger compute"),
        (lambda d: (d / "rd.parquet").write_bytes(b"not a parquet file"), "rd.parquet: unreadable rd file"),
    ],
    ids=["no applicants", "missing column", "unreadable file"],
)
def test_file_fault_exits_2_with_one_line_and_writes_nothing(ledgers: Path, tmp_path: Path, breakage, message) -> None:
    breakage(ledgers)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", "--year", "2021", "--ledgers", str(ledgers), "--out", str(out)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not out.exists() or not any(out.rglob("*"))


JINAN_BOND = """\
clause_id: jinan.11b
title: 发债补助
article: 五、11
text: "对发行公司债券、企业债券的，按实际融资额的2‰给予补助，每家企业每年补助额最高100万元。"
kind: rate
base: {ledger: financing, amount: amount, where: {kind: [bond]}, per: row}
rate: 0.002
annual_cap: 1000000
"""


def test_missing_admin_parameter_stops_the_run_and_names_it(ledgers: Path, tmp_path: Path, prefect_api) -> None:
    """jinan's start date is an administrator's parameter: a jinan line without it cannot be paid."""
    import shutil

    rules = tmp_path / "rules"
    shutil.copytree(Path(__file__).parent.parent / "rules", rules)
    if not (rules / "jinan" / "jinan.11b.yaml").exists():
        (rules / "jinan" / "jinan.11b.yaml").write_text(JINAN_BOND, encoding="utf-8")
    applicants = pl.read_csv(ledgers / "applicants.csv", infer_schema=False)
    jinan = applicants.head(1).with_columns(pl.lit(credit_code("J1")).alias("applicant_id"), pl.lit("jinan").alias("region"))
    pl.concat([applicants, jinan]).write_csv(ledgers / "applicants.csv")
    pl.DataFrame({"row_id": ["F1"], "applicant_id": [credit_code("J1")], "year": ["2021"], "kind": ["bond"],
                  "dated_on": ["2021-05-01"], "amount": ["10000000.00"]}).write_csv(ledgers / "financing.csv")
    out = tmp_path / "out"
    result = cli("run", "--year", "2021", "--ledgers", str(ledgers), "--out", str(out), "--rules", str(rules))
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == ("disburse: policy jinan: administrator parameter effective_from is missing "
                                     "(set policies.jinan.effective_from in the params file)")
    assert not (out / "2021").exists() and not (out / "state.duckdb").exists()
    params = tmp_path / "params.yaml"
    params.write_text("policies: {jinan: {effective_from: 2021-03-01}}\n")
    result = cli("run", "--year", "2021", "--ledgers", str(ledgers), "--out", str(out), "--rules", str(rules),
                 "--params", str(params))
    assert result.exit_code == 0, result.output
    payments = pl.read_csv(out / "2021" / "jinan" / "payments.csv", infer_schema=False)
    assert payments["total_payable"].to_list() == ["20000.00"]  # 2‰ × 10,000,000


def test_rerun_replaces_its_own_record_and_never_double_counts(ledgers: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_year(ledgers, out, 2021)
    first = state_rows(out / "state.duckdb")
    payments = lambda: pl.read_csv(out / "2021" / "lingang" / "payments.csv", infer_schema=False)  # noqa: E731
    first_files = payments()
    run_year(ledgers, out, 2021)
    assert state_rows(out / "state.duckdb") == first
    again = payments()
    assert again.drop("run_id").equals(first_files.drop("run_id")) and again["run_id"][0] != first_files["run_id"][0]
    con = state.connect(out / "state.duckdb", read_only=True)
    try:
        history = state.history(con, pl.DataFrame(schema={c: pl.String for c in ("applicant_id", "clause_id", "matter_id")}
                                                  | {"year": pl.Int64, "amount": pl.Int64}), 2022,
                                ingest(ledgers).compiled.tables["shares"])
    finally:
        con.close()
    assert history["payable_fen"].sum() == 28_000_000 + 50_000_000  # lingang 280,000.00 + changning 500,000.00


def test_region_run_leaves_other_regions_untouched(ledgers: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_year(ledgers, out, 2021)
    changning_before = tree_digest(out / "2021" / "changning")
    changning_state = [r for r in state_rows(out / "state.duckdb") if r[1] == "changning"]
    # Change both regions' ledgers, then recompute lingang only.
    compute = pl.read_csv(ledgers / "compute.csv", infer_schema=False).with_columns(pl.lit("600000.00").alias("amount"))
    compute.write_csv(ledgers / "compute.csv")
    run_year(ledgers, out, 2021, region="lingang")
    assert tree_digest(out / "2021" / "changning") == changning_before
    assert [r for r in state_rows(out / "state.duckdb") if r[1] == "changning"] == changning_state
    lingang = pl.read_csv(out / "2021" / "lingang" / "payments.csv", infer_schema=False)
    assert lingang["total_payable"].to_list() == ["180000.00"]  # 30,000 + 50% × 300,000
    manifest = json.loads((out / "2021" / "manifest.json").read_text())
    assert manifest["regions_in_this_run"] == ["lingang"]
    assert set(manifest["regions"]) >= {"lingang", "changning"}


def test_failure_after_computing_leaves_previous_outputs_and_state(ledgers: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    run_year(ledgers, out, 2021)
    files_before, state_before = tree_digest(out / "2021"), state_rows(out / "state.duckdb")
    recorded = []

    def record_then_fail(con, **kw):
        if recorded:
            raise OSError("disk full")
        recorded.append(kw["region"])
        original(con, **kw)

    original = state.record
    monkeypatch.setattr(state, "record", record_then_fail)
    compute = pl.read_csv(ledgers / "compute.csv", infer_schema=False).with_columns(pl.lit("1.00").alias("amount"))
    compute.write_csv(ledgers / "compute.csv")
    with pytest.raises(OSError, match="disk full"):
        run_year(ledgers, out, 2021)
    assert recorded  # the first region was recorded inside the transaction, then rolled back
    assert tree_digest(out / "2021") == files_before
    assert state_rows(out / "state.duckdb") == state_before


def test_an_interrupt_while_the_state_is_recorded_waits_for_it_then_rolls_back(ledgers: Path, tmp_path: Path,
                                                                              monkeypatch) -> None:
    """The state's rows go in on a second thread while the files are flushed. An interrupt then (a Ctrl-C,
    and a second one during the wait for that thread) must not roll back before the thread is done: its
    later statements would be committed one by one, beside the previous files."""
    import threading

    out = tmp_path / "out"
    run_year(ledgers, out, 2021)
    files_before, state_before = tree_digest(out / "2021"), state_rows(out / "state.duckdb")
    original, started = state.record, threading.Event()

    def slow_record(con, **kw):
        started.set()
        time.sleep(0.3)
        original(con, **kw)

    def interrupted_seal(self):
        started.wait(10)
        raise KeyboardInterrupt

    interrupts = iter([KeyboardInterrupt()])
    real_wait = job.wait

    def wait_cut_short(futures):  # the first wait for the recorder is cut short by a second Ctrl-C
        for interrupt in interrupts:
            raise interrupt
        return real_wait(futures)

    real_discard = outputs.Staged.discard

    def slow_discard(self):  # the connection stays open a while after a rollback: long enough to matter
        time.sleep(0.6)
        real_discard(self)

    monkeypatch.setattr(state, "record", slow_record)
    monkeypatch.setattr(outputs.Staged, "seal", interrupted_seal)
    monkeypatch.setattr(outputs.Staged, "discard", slow_discard)
    monkeypatch.setattr(job, "wait", wait_cut_short)
    compute = pl.read_csv(ledgers / "compute.csv", infer_schema=False).with_columns(pl.lit("1.00").alias("amount"))
    compute.write_csv(ledgers / "compute.csv")
    with pytest.raises(KeyboardInterrupt):
        run_year(ledgers, out, 2021)
    assert tree_digest(out / "2021") == files_before
    assert state_rows(out / "state.duckdb") == state_before


def test_state_in_use_is_refused_at_once(ledgers: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "out"
    run_year(ledgers, out, 2021)
    hold = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(out / "state.duckdb")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = CliRunner().invoke(app, ["run", "--year", "2021", "--ledgers", str(ledgers), "--out", str(out)])
        assert result.exit_code == 2
        assert f"state file is in use by process {holder.pid}" in result.stderr
    finally:
        holder.communicate("", timeout=30)


def test_parquet_ledgers_and_bom_csv_read_alike(ledgers: Path, tmp_path: Path) -> None:
    csv_out, pq_out = tmp_path / "csv", tmp_path / "pq"
    applicants = ledgers / "applicants.csv"
    applicants.write_bytes(b"\xef\xbb\xbf" + applicants.read_bytes())
    run_year(ledgers, csv_out, 2021)
    pq_dir = tmp_path / "pq_ledgers"
    pq_dir.mkdir()
    for f in ledgers.glob("*.csv"):
        pl.read_csv(f, infer_schema=False).write_parquet(pq_dir / f"{f.stem}.parquet")
    run_year(pq_dir, pq_out, 2021)
    for region in ("lingang", "changning"):
        csv_payments, pq_payments = (pl.read_csv(o / "2021" / region / "payments.csv", infer_schema=False).drop("run_id")
                                     for o in (csv_out, pq_out))
        assert csv_payments.equals(pq_payments)


def test_explain_prints_one_applicants_steps(tmp_path: Path) -> None:
    """The changning.8.2 worked example, told step by step for a person."""
    ledgers = tmp_path / "ledgers"
    Scenario(Path(__file__).parent / "scenarios" / "changning" / "changning.8.2.yaml").write_ledgers(ledgers)
    out = tmp_path / "out"
    run_year(ledgers, out, 2022)
    result = CliRunner().invoke(app, ["explain", "--year", "2022", "--applicant", credit_code("C1"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "changning.8.2" in text and "第八条（二）" in text
    assert "50% × 1,234,567.89 = 617,283.95" in text
    assert "年度上限 500,000.00" in text
    assert "cap:annual 年度上限" in text      # the code, and its words from the phrase table
    assert "应付合计：500,000.00" in text
    missing = CliRunner().invoke(app, ["explain", "--year", "2022", "--applicant", credit_code("NOBODY"), "--out", str(out)])
    assert missing.exit_code == 2 and "no lines in 2022" in missing.stderr


def test_awards_in_kind_go_to_their_own_file_never_to_payments(tmp_path: Path) -> None:
    ledgers = tmp_path / "ledgers"
    Scenario(Path(__file__).parent / "scenarios" / "hangzhou" / "hangzhou.10.yaml").write_ledgers(ledgers)
    out = tmp_path / "out"
    run_year(ledgers, out, 2024, region="hangzhou")
    in_kind = pl.read_csv(out / "2024" / "hangzhou" / "in_kind.csv", infer_schema=False).sort("matter_id")
    assert in_kind.select("matter_id", "quantity", "unit").rows() == [("FM1", "10", "PFLOPS"), ("FM2", "4", "PFLOPS")]
    assert pl.read_csv(out / "2024" / "hangzhou" / "payments.csv", infer_schema=False).is_empty()


def test_audit_page_lists_every_line_with_text_escaped(ledgers: Path, tmp_path: Path) -> None:
    applicants = pl.read_csv(ledgers / "applicants.csv", infer_schema=False)
    applicants.with_columns(pl.lit("A&B <智能> 科技").alias("name")).write_csv(ledgers / "applicants.csv")
    out = tmp_path / "out"
    _, results = run_year(ledgers, out, 2021)
    page = (out / "2021" / "lingang" / "audit.html").read_text(encoding="utf-8")
    assert "A&amp;B &lt;智能&gt; 科技" in page and "<智能>" not in page
    lingang = next(r for r in results if r.region == "lingang")
    assert page.count("<tr class=") - page.count('<tr class="approval"') == lingang.lines.height
    assert "280,000.00" in page


def test_an_internal_fault_is_one_line_and_records_nothing(ledgers: Path, tmp_path: Path, monkeypatch, prefect_api) -> None:
    from disburse import job

    def broken(*args, **kwargs):
        raise KeyError("clause_order")

    monkeypatch.setattr(job, "compute_region", broken)
    out = tmp_path / "out"
    result = cli("run", "--year", "2021", "--ledgers", str(ledgers), "--out", str(out))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "disburse: internal error, nothing was recorded: KeyError: 'clause_order' (DISBURSE_DEBUG=1 shows the traceback)"]
    assert not (out / "2021").exists() and not (out / "state.duckdb").exists()


# --- hostile files (issue 8): nothing silently absent, no row stops the run, CSV as bureaus save it ----------

@pytest.mark.parametrize("kind, why", [
    ("directory", "is a directory"),
    ("dangling symlink", "is a dangling symlink"),
    ("symlink loop", "is a symlink loop"),
])
def test_ledger_path_that_is_no_file_stops_the_run_before_it_starts(ledgers: Path, tmp_path: Path, kind, why,
                                                                    prefect_api) -> None:
    """Not read as an absent ledger (which pays as if it had no rows): one line naming the path."""
    target = ledgers / "compute.csv"
    target.unlink()
    if kind == "directory":
        target.mkdir()
    elif kind == "dangling symlink":
        target.symlink_to(ledgers / "moved-away.csv")
    else:
        target.symlink_to(target)
    out = tmp_path / "out"
    result = cli("run", "--year", "2021", "--ledgers", str(ledgers), "--out", str(out))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{target}: ledger compute {why}" in lines[0], result.stderr
    assert not out.exists()
    with pytest.raises(InputError, match=why):
        preflight(ledgers, None, None, None)  # before Prefect starts
    with pytest.raises(InputError, match=why):
        ingest(ledgers)  # `disburse validate` and library use alike


def test_malformed_records_are_rejected_rows_and_the_rest_is_read(ledgers: Path, tmp_path: Path) -> None:
    """A record with a field too many and one with a quote never closed are two rejected rows;
    the record after them, and a value spanning two lines, are read as usual."""
    compute = ledgers / "compute.csv"
    text = compute.read_text(encoding="utf-8").splitlines()
    header, rows = text[0], text[1:]
    width = header.count(",") + 1
    extra = rows[0].replace("L1", "L1x") + ",surplus"  # 9 fields
    open_quote = rows[0].replace(",中国电信,", ',"中国电信,')  # a quote never closed
    spanning = 'B9,' + rows[0].split(",", 1)[1].replace(",中国电信,", ',"中国\n电信",').replace("800000.00", "0.00")
    compute.write_text("\n".join([header, rows[0], extra, open_quote, spanning, *rows[1:]]) + "\n", encoding="utf-8")
    inputs = ingest(ledgers)
    raw = inputs.raw["compute"]
    checked = check(inputs)
    assert raw.height == 6 and raw["row_id"].to_list()[3] == "B9"
    assert raw.filter(pl.col("row_id") == "B9")["vendor"].to_list() == ["中国\n电信"]
    bad = checked.rejected.filter(pl.col("ledger") == "compute").select("row", "reason").rows()
    assert bad == [
        (3, f"malformed_row: {width + 1} fields where the header has {width}"),
        (4, "malformed_row: a quote is not closed or stands inside a value"),
        (7, bad[-1][1]),  # the three-decimal amount of the fixture
    ]
    assert ledger_counts(checked)["compute"] == {"rows": 6, "accepted": 3, "rejected": 3}
    _, results = run_year(ledgers, tmp_path / "out", 2021)
    lingang = next(r for r in results if r.region == "lingang")
    assert lingang.payments["total_payable_fen"].to_list() == [28_000_000]  # B1 alone, as before


def test_a_duplicated_header_column_stops_the_run_naming_it(ledgers: Path) -> None:
    """Taking the first copy would change the pay; which copy is meant is not ours to guess."""
    compute = ledgers / "compute.csv"
    lines = compute.read_text(encoding="utf-8").splitlines()
    compute.write_text("\n".join([lines[0] + ", amount", *(line + ",1.00" for line in lines[1:])]) + "\n",
                       encoding="utf-8")
    with pytest.raises(InputError) as caught:
        ingest(ledgers)
    assert str(caught.value) == f"{compute}: column amount appears 2 times in the header of ledger compute"


def test_gb18030_csv_is_read_and_the_manifest_records_each_encoding(ledgers: Path, tmp_path: Path) -> None:
    """What Excel on a Chinese Windows saves: not UTF-8, but GB18030."""
    applicants = ledgers / "applicants.csv"
    df = pl.read_csv(applicants, infer_schema=False).with_columns(pl.lit("临港智算科技有限公司").alias("name"))
    applicants.write_bytes(df.write_csv().encode("gb18030"))
    with pytest.raises(UnicodeDecodeError):
        applicants.read_bytes().decode("utf-8")
    compute = ledgers / "compute.csv"
    compute.write_bytes(b"\xef\xbb\xbf" + compute.read_bytes())
    out = tmp_path / "out"
    manifest, _ = run_year(ledgers, out, 2021)
    assert manifest["inputs"]["applicants"]["encoding"] == "gb18030"
    assert manifest["inputs"]["compute"]["encoding"] == "utf-8-sig"
    assert manifest["inputs"]["rd"]["encoding"] is None  # absent
    payments = pl.read_csv(out / "2021" / "lingang" / "payments.csv", infer_schema=False)
    assert payments.select("applicant_id", "applicant_name", "total_payable").rows() == [
        (credit_code("L1"), "临港智算科技有限公司", "280000.00")]


def test_csv_neither_utf8_nor_gb18030_stops_with_one_line(ledgers: Path) -> None:
    compute = ledgers / "compute.csv"
    compute.write_bytes(compute.read_bytes().replace("中国电信".encode(), b"\xff\xfe\xff"))
    with pytest.raises(InputError) as caught:
        ingest(ledgers)
    assert str(caught.value) == f"{compute}: neither UTF-8 nor GB18030 text; save it as UTF-8 CSV"


def test_parquet_money_with_a_wide_decimal_scale_reads_as_money(ledgers: Path, tmp_path: Path) -> None:
    """Decimal(38, 6) holding 800000.000000 is 800,000.00; 1.005000 still has three decimals."""
    from decimal import Decimal

    compute = pl.read_csv(ledgers / "compute.csv", infer_schema=False)
    compute = compute.with_columns(pl.col("amount").map_elements(Decimal, return_dtype=pl.Decimal(38, 6)))
    (ledgers / "compute.csv").unlink()
    compute.write_parquet(ledgers / "compute.parquet")
    assert pl.read_parquet(ledgers / "compute.parquet").schema["amount"] == pl.Decimal(38, 6)
    inputs = ingest(ledgers)
    checked = check(inputs)
    assert checked.accepted["compute"].sort("_row")["amount"].to_list() == [80_000_000, 100_000_002]
    assert checked.rejected.filter(pl.col("ledger") == "compute")["value"].to_list() == ["1.005"]


def test_a_year_of_bills_beyond_int64_is_refused_with_a_reason_never_paid_from_a_wrapped_sum(ledgers: Path,
                                                                                              tmp_path: Path) -> None:
    """Ten thousand bills of 9,999,999,999,999.99 sum past 2^63 fen: today's sum wrapped and paid 0 with
    no word. Now the set is refused, line by line in the region's rejected.csv; a firm whose bills sum
    within the bound still gets lingang.4's cap."""
    compute = pl.read_csv(ledgers / "compute.csv", infer_schema=False)
    first = compute.head(1)
    huge = pl.concat([first.with_columns(pl.lit(f"H{i}").alias("row_id"), pl.lit("9999999999999.99").alias("amount"))
                      for i in range(10_000)])
    applicants = pl.read_csv(ledgers / "applicants.csv", infer_schema=False)
    other = applicants.filter(pl.col("region") == "lingang").with_columns(pl.lit(credit_code("L2")).alias("applicant_id"),
                                                                          pl.lit("L2").alias("name"))
    pl.concat([applicants, other]).write_csv(ledgers / "applicants.csv")
    big = first.with_columns(pl.lit("BIG").alias("row_id"), pl.lit(credit_code("L2")).alias("applicant_id"),
                             pl.lit("9999999999999.99").alias("amount"))
    pl.concat([compute.slice(1), huge, big]).write_csv(ledgers / "compute.csv")
    out = tmp_path / "out"
    manifest, results = run_year(ledgers, out, 2021, region="lingang")
    lingang = results[0]
    assert lingang.payments.rows() == [(credit_code("L2"), "L2", 100_000_000)]  # 1,000,000.00: the yearly cap
    rejected = pl.read_csv(out / "2021" / "lingang" / "rejected.csv", infer_schema=False)
    assert rejected.height == 10_000
    assert rejected["reason"].unique().to_list() == [
        "sum_out_of_range: this applicant's amount rows sum beyond 100,000,000,000,000.00 yuan"]
    counts = manifest["inputs"]["compute"]
    assert (counts["rows"], counts["accepted"], counts["rejected"]) == (10_003, 2, 10_001)  # and the fixture's 1.005


# --- money already paid is never dropped (issue 18) -------------------------------------------------

def state_everything(path: Path) -> list:
    """Every table of the state file, every row (a byte comparison would see DuckDB's own checkpoints)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [t for (t,) in con.execute("select table_name from information_schema.tables order by 1").fetchall()]
        return [(t, con.execute(f"select * from {t} order by all").fetchall()) for t in tables]
    finally:
        con.close()


def test_an_unreadable_prior_payment_stops_the_run_in_one_line_and_writes_nothing(ledgers: Path, tmp_path: Path,
                                                                                   prefect_api) -> None:
    """A prior payment of '30万' used to be rejected and the run went on, paying it again. Now the run
    stops naming file, row and fault (never the value), and the outputs and the state stay as they were;
    `disburse validate` still lists the row and says it stops a run."""
    out = tmp_path / "out"
    assert cli("run", "--year", "2021", "--ledgers", str(ledgers), "--out", str(out)).exit_code == 0
    files, recorded = tree_digest(out), state_everything(out / "state.duckdb")
    prior = ledgers / "prior_payments.csv"
    pl.DataFrame({"applicant_id": [credit_code("L1"), credit_code("C1")], "clause_id": ["lingang.4", "changning.8.2"],
                  "matter_id": ["B0", "K0"], "year": ["2020", "2020"], "amount": ["100000.00", "30万"]}).write_csv(prior)
    result = cli("run", "--year", "2022", "--ledgers", str(ledgers), "--out", str(out))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines == [f"disburse: {prior} 第 3 行 amount：金额格式错误（应为元，最多两位小数）（bad_money）。"
                     "历史兑付记录的是已付款项，不能舍弃，否则将重复支付，本次运行停止：请更正后重新运行"], result.stderr
    assert "30万" not in result.stderr
    assert tree_digest(out) == files and state_everything(out / "state.duckdb") == recorded
    assert not (out / "2022").exists()
    checked = cli("validate", "--ledgers", str(ledgers))
    assert checked.exit_code == 0, checked.output
    said = "".join(checked.output.split())
    assert "历史兑付" in said and "第3行" in said and "30万" in said and "[bad_money]" in said, checked.output
    assert "历史兑付（prior_payments）有1行无法读取，更正前disburserun将停止" in said, checked.output


def test_a_total_row_of_prior_payments_is_rejected_and_does_not_stop_the_run(ledgers: Path, tmp_path: Path) -> None:
    """A bureau's 历史兑付 sheet often ends with a 合计 row: it records no payment, so it is rejected (never
    summed) and the run goes on; the payment above it still counts."""
    out = tmp_path / "out"
    pl.DataFrame({"applicant_id": [credit_code("L1"), "合计"], "clause_id": ["lingang.4", ""],
                  "matter_id": [credit_code("L1"), ""], "year": ["2020", ""],
                  "amount": ["100000.00", "100000.00"]}).write_csv(ledgers / "prior_payments.csv")
    manifest, _ = run_year(ledgers, out, 2021)
    assert manifest["inputs"]["prior_payments"]["rejected"] == 1
    rejected = pl.read_csv(out / "2021" / "rejected.csv", infer_schema=False)
    assert rejected.filter(pl.col("ledger") == "prior_payments")["reason"].str.starts_with("total_row").all()


@pytest.mark.parametrize("paid_before", [True, False], ids=["paid before: stops", "never paid: rejected only"])
def test_a_rejected_applicant_row_stops_the_run_only_if_the_applicant_was_paid_before(
        ledgers: Path, tmp_path: Path, paid_before: bool) -> None:
    """An applicant paid before whose row cannot be read would lose, for good, its installments and any
    clawback due this year; one never paid loses only this year's lines, so its row is rejected as any other."""
    out = tmp_path / "out"
    if paid_before:
        run_year(ledgers, out, 2021)  # L1 is paid 280,000.00 under lingang.4
    files = tree_digest(out) if out.exists() else {}
    applicants = pl.read_csv(ledgers / "applicants.csv", infer_schema=False)
    applicants.with_columns(pl.when(pl.col("name") == "L1").then(pl.lit("huge")).otherwise(pl.col("size"))
                            .alias("size")).write_csv(ledgers / "applicants.csv")
    if paid_before:
        with pytest.raises(InputError) as err:
            run_year(ledgers, out, 2022)
        assert str(err.value).startswith(f"{ledgers / 'applicants.csv'} 第 2 行 size：取值不在允许范围内（可填英文代码或中文名称）（not_allowed）。"
                                         "该申报主体以往已获支付"), err.value
        assert "\n" not in str(err.value) and tree_digest(out) == files
    else:
        manifest, _ = run_year(ledgers, out, 2021)
        assert manifest["inputs"]["applicants"]["rejected"] == 1
        assert manifest["regions"]["lingang"]["total_payable"] == "0.00"
