"""The state knows its own history and guards it (issue 8, items 6-10).

Gaps and --allow-gaps, stale later years, state files that are not states,
schema versions and migration, the lock checked before anything is read,
tamper evidence (disburse verify, digests), owner-only files, errors that carry
no money or names, and one-line errors.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from disburse import state
from disburse.cli import app
from disburse.job import JOB_ERRORS, preflight, run_year
from disburse.state import GapError, StateError
from tests.scenario import Scenario, credit_code

LEDGERS = Path(__file__).parent / "scenarios" / "engine" / "two_regions.yaml"
V1_SCHEMA = """
create table runs (year integer not null, region varchar not null, run_id varchar not null,
    recorded_at timestamp not null, rules_fingerprint varchar not null, params_fingerprint varchar not null,
    lines integer not null, total_payable_fen bigint not null, total_clawback_fen bigint not null,
    primary key (year, region));
create table lines (year integer not null, region varchar not null, applicant_id varchar not null,
    clause_id varchar not null, matter_id varchar not null, installment integer not null,
    installments integer not null, award_fen bigint not null, payable_fen bigint not null,
    primary key (year, region, applicant_id, clause_id, matter_id, installment));
create table clawbacks (year integer not null, region varchar not null, applicant_id varchar not null,
    clause_id varchar not null, matter_id varchar not null, amount_fen bigint not null, reason varchar not null,
    primary key (year, region, applicant_id, clause_id, matter_id));
"""  # the schema at version 1, as the job wrote it before it had a version table


@pytest.fixture
def ledgers(tmp_path: Path) -> Path:
    """two_regions, plus a 2022 bill for L1 (lingang.4: 10% × 300,000 + 50% × 100,000 = 80,000.00)."""
    Scenario(LEDGERS).write_ledgers(tmp_path / "ledgers")
    compute = pl.read_csv(tmp_path / "ledgers" / "compute.csv", infer_schema=False)
    later = compute.filter(pl.col("row_id") == "B1").with_columns(
        pl.lit("B2").alias("row_id"), pl.lit("2022").alias("year"), pl.lit("2022-03-01").alias("billed_on"),
        pl.lit("400000.00").alias("amount"))
    pl.concat([compute, later]).write_csv(tmp_path / "ledgers" / "compute.csv")
    return tmp_path / "ledgers"


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- 6. a state that knows its own history ------------------------------------------------

def test_a_gap_stops_the_run_naming_the_years_and_the_flag(ledgers: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(GapError) as err:
        run_year(ledgers, out, 2022)
    assert str(err.value) == ("--year 2022: earlier years were never run and the ledgers have rows for them "
                              "(changning 2021; lingang 2021); run them first, from 2021 on, or pass --allow-gaps")
    assert not (out / "2022").exists() and not (out / "state.duckdb").exists()
    run_year(ledgers, out, 2021)
    manifest, _ = run_year(ledgers, out, 2022)
    assert manifest["regions"]["lingang"]["total_payable"] == "80000.00"
    assert "gaps_allowed" not in manifest


def test_allow_gaps_runs_anyway_and_the_manifest_and_audit_say_so(ledgers: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    manifest, _ = run_year(ledgers, out, 2022, region="lingang", allow_gaps=True)
    assert manifest["gaps_allowed"] == {"lingang": [2021]}
    assert json.loads((out / "2022" / "manifest.json").read_text())["gaps_allowed"] == {"lingang": [2021]}
    audit = (out / "2022" / "lingang" / "audit.html").read_text(encoding="utf-8")
    assert "本次运行使用了 --allow-gaps" in audit and "临港新片区（lingang） 的 2021 年度从未运行" in audit
    con = duckdb.connect(str(out / "state.duckdb"), read_only=True)
    assert con.execute("select gaps_allowed from runs where year = 2022").fetchall() == [("2021",)]
    con.close()


def test_prior_payments_for_a_year_fill_its_gap(ledgers: Path, tmp_path: Path) -> None:
    pl.DataFrame({"applicant_id": [credit_code("L1")], "clause_id": ["lingang.4"], "matter_id": [credit_code("L1")],
                  "year": ["2021"], "amount": ["280000.00"]}).write_csv(ledgers / "prior_payments.csv")
    manifest, _ = run_year(ledgers, tmp_path / "out", 2022, region="lingang")
    assert "gaps_allowed" not in manifest


def test_rerunning_an_earlier_year_warns_that_later_years_may_be_stale(ledgers: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_year(ledgers, out, 2021)
    run_year(ledgers, out, 2022, region="lingang")
    ready = preflight(ledgers, None, None, None, year=2021, out_dir=out)
    ready.release()
    assert ready.warnings == ["warning: later years were already run (lingang 2022); their outputs may now be "
                              "stale: rerun them in order after 2021"]
    manifest, _ = run_year(ledgers, out, 2021)
    assert manifest["later_years_may_be_stale"] == {"lingang": [2022]}


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("applicant_id,amount\n"), "not a DuckDB file, so not a state file"),
    (lambda p: p.write_bytes(b""), "not a DuckDB file, so not a state file"),
    (lambda p: p.write_bytes(p.with_name("good.duckdb").read_bytes()[:50_000]), "state file is truncated or damaged"),
    (lambda p: _with_version(p, 5), "state schema version 5 is newer than this disburse knows (4)"),
    (lambda p: _other_tables(p), "not a disburse state file"),
], ids=["csv", "empty", "truncated", "newer schema", "other database"])
def test_a_state_file_that_cannot_be_used_is_named_in_one_line(ledgers: Path, tmp_path: Path, make, message) -> None:
    out = tmp_path / "out"
    run_year(ledgers, out, 2021)
    shutil.copy(out / "state.duckdb", out / "good.duckdb")
    bad = out / "state.duckdb"
    bad.unlink()
    make(bad)
    before = bad.read_bytes()
    result = cli("run", "--year", "2022", "--ledgers", str(ledgers), "--out", str(out))
    assert result.exit_code == 2
    assert one_line(result) == f"disburse: {bad}: {message}" or message in one_line(result)
    assert bad.read_bytes() == before


def _with_version(path: Path, version: int) -> None:
    shutil.copy(path.with_name("good.duckdb"), path)
    con = duckdb.connect(str(path))
    con.execute("update schema_version set version = ?", [version])
    con.close()


def _other_tables(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute("create table payroll (id integer)")
    con.close()


def _v1_state(path: Path, ledgers: Path, tmp_path: Path, dated: bool = False) -> list[tuple]:
    """A state as the job wrote it at schema version 1, holding a 2021 run of lingang (DATED: with the
    lines.dated_on column that some version-1 files have)."""
    scratch = tmp_path / "scratch"
    run_year(ledgers, scratch, 2021, region="lingang")
    src = duckdb.connect(str(scratch / "state.duckdb"), read_only=True)
    lines = src.execute("select year, region, applicant_id, clause_id, matter_id, installment, installments, "
                        "award_fen, payable_fen from lines").fetchall()
    run = src.execute("select year, region, run_id, recorded_at, rules_fingerprint, params_fingerprint, lines, "
                      "total_payable_fen, total_clawback_fen from runs").fetchall()
    src.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute(V1_SCHEMA)
    if dated:
        con.execute("alter table lines add column dated_on date")
    con.executemany("insert into lines values (?, ?, ?, ?, ?, ?, ?, ?, ?" + (", null)" if dated else ")"), lines)
    con.executemany("insert into runs values (?, ?, ?, ?, ?, ?, ?, ?, ?)", run)
    con.close()
    return lines


@pytest.mark.parametrize("dated", [False, True], ids=["v1", "v1 with dated_on"])
def test_an_older_schema_is_migrated_forward_and_its_history_counts(ledgers: Path, tmp_path: Path, dated) -> None:
    out = tmp_path / "out"
    lines = _v1_state(out / "state.duckdb", ledgers, tmp_path, dated)
    with pytest.raises(StateError, match="older schema version 1; the next `disburse run` migrates it to 4"):
        state.connect(out / "state.duckdb", read_only=True)
    manifest, _ = run_year(ledgers, out, 2022, region="lingang")  # no gap: the migrated state holds 2021
    assert manifest["regions"]["lingang"]["total_payable"] == "80000.00"
    con = duckdb.connect(str(out / "state.duckdb"), read_only=True)
    assert con.execute("select version from schema_version").fetchall() == [(4,)]
    assert con.execute("select count(*) from lines where year = 2021 and dated_on is null").fetchall() == [(len(lines),)]
    assert con.execute("select status, digest is not null from runs where year = 2021").fetchall() == [("done", True)]
    con.close()


def test_a_schema_3_state_keeps_its_digests_and_its_lines_are_of_their_own_year(ledgers: Path, tmp_path: Path) -> None:
    """Schema 4 keys lines by year_of_matter: a schema-3 file's lines become lines of their own year, and
    the digests written before still hold (a line of its own year adds nothing to the digest's text)."""
    out = tmp_path / "out"
    run_year(ledgers, out, 2021, region="lingang")
    con = duckdb.connect(str(out / "state.duckdb"))
    before = con.execute("select year, region, digest from runs").fetchall()
    n = con.execute("select count(*) from lines").fetchall()[0][0]
    con.execute("create table lines_3 as select * exclude (year_of_matter) from lines")
    con.execute("drop table lines")
    con.execute("alter table lines_3 rename to lines")
    con.execute("update schema_version set version = 3")
    con.close()
    with pytest.raises(StateError, match="older schema version 3; the next `disburse run` migrates it to 4"):
        state.connect(out / "state.duckdb", read_only=True)
    run_year(ledgers, out, 2022, region="lingang")  # check_recorded refuses a 2021 whose digest no longer holds
    con = duckdb.connect(str(out / "state.duckdb"), read_only=True)
    assert con.execute("select version from schema_version").fetchall() == [(4,)]
    assert con.execute("select count(*) from lines where year = 2021 and year_of_matter = 2021").fetchall() == [(n,)]
    assert con.execute("select year, region, digest from runs where year = 2021").fetchall() == before
    con.close()


def test_a_migration_that_fails_leaves_the_file_as_it_was(ledgers: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    _v1_state(out / "state.duckdb", ledgers, tmp_path)
    sql = tmp_path / "sql"
    shutil.copytree(state.SQL, sql)
    (sql / "migrate_1_to_2.sql").write_text((sql / "migrate_1_to_2.sql").read_text() + "\nselect * from no_such_table;\n")
    monkeypatch.setattr(state, "SQL", sql)
    with pytest.raises(StateError, match="cannot migrate the state from schema version 1 to 4 .*the file is unchanged"):
        run_year(ledgers, out, 2022, region="lingang")
    con = duckdb.connect(str(out / "state.duckdb"), read_only=True)
    tables = {t for (t,) in con.execute("select table_name from information_schema.tables").fetchall()}
    columns = {c for (c,) in con.execute("select column_name from information_schema.columns "
                                         "where table_name = 'lines'").fetchall()}
    con.close()
    assert tables == {"runs", "lines", "clawbacks"} and "dated_on" not in columns


# --- 7. refuse at once --------------------------------------------------------------------

HOLD = ("import sys; from pathlib import Path; from disburse import state; "
        "state.acquire(Path(sys.argv[1]), 'RUN-HOLDER'); print('ready', flush=True); sys.stdin.read()")


def test_a_held_state_is_refused_in_the_preflight_with_the_holders_run_id(ledgers: Path, tmp_path: Path,
                                                                          monkeypatch) -> None:
    import disburse.job
    import flows.annual

    def must_not_run(*args, **kwargs):
        raise AssertionError("read a ledger or started the flow")

    monkeypatch.setattr(disburse.job, "read_ledgers", must_not_run)
    monkeypatch.setattr(flows.annual, "annual_run", must_not_run)
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out / "state.duckdb")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = cli("run", "--year", "2021", "--ledgers", str(ledgers), "--out", str(out))
        assert result.exit_code == 2, result.output
        assert one_line(result) == (f"disburse: {out / 'state.duckdb'}: state file is in use by run RUN-HOLDER "
                                    f"(process {holder.pid}); wait for that run to finish")
    finally:
        holder.communicate("", timeout=60)
    assert not (out / "state.duckdb").exists()


def test_a_killed_holder_never_leaves_the_state_held(ledgers: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out / "state.duckdb")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ready"
    holder.kill()
    holder.wait()
    run_year(ledgers, out, 2021)


# --- 8. tamper evidence -------------------------------------------------------------------

def test_verify_names_every_file_and_line_changed_since(ledgers: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_year(ledgers, out, 2021)
    ok = cli("verify", str(out / "2021"))
    assert ok.exit_code == 0, ok.output
    assert "match the manifest and the state" in ok.stdout
    lingang = out / "2021" / "lingang"
    for name in ("disbursements.csv", "payments.csv"):
        text = (lingang / name).read_text(encoding="utf-8-sig")
        (lingang / name).write_text(text.replace("280000.00", "380000.00"), encoding="utf-8-sig")
    (out / "2021" / "changning" / "notes.txt").write_text("added")
    con = duckdb.connect(str(out / "state.duckdb"))
    con.execute("update lines set payable_fen = payable_fen + 100 where region = 'changning'")
    con.close()
    result = cli("verify", str(out / "2021"))
    assert result.exit_code == 1
    L1, C1 = credit_code("L1"), credit_code("C1")
    found = result.stdout.splitlines()
    for expected in [
        "lingang/disbursements.csv: changed since the run that wrote it (sha256 differs from the manifest)",
        "lingang/payments.csv: changed since the run that wrote it (sha256 differs from the manifest)",
        "changning/notes.txt: not in the manifest",
        f"lingang/disbursements.csv line 2 (applicant_id {L1}, clause_id lingang.4, matter_id {L1}, year_of_matter 2021, installment 1): "
        "payable differs from the state's record",
        f"lingang/payments.csv line 2 (applicant_id {L1}): total differs from the state's record",
    ]:
        assert expected in found, result.stdout
    assert any(f.startswith("state: the rows of 2021 changning changed since run") for f in found), result.stdout
    assert (f"state: line 2021 changning (applicant_id {C1}, clause_id changning.8.2, matter_id {C1}, "
            "year_of_matter 2021, installment 1): payable changed since the run") in found, result.stdout
    assert "380000.00" not in result.output and "280000.00" not in result.output  # ids, never amounts
    assert "problem(s)" in one_line(result)


def test_a_hand_edited_earlier_year_is_refused_by_the_next_run(ledgers: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_year(ledgers, out, 2021)
    con = duckdb.connect(str(out / "state.duckdb"))
    con.execute("update lines set payable_fen = 0 where region = 'lingang'")  # as if 2021 paid nothing
    con.close()
    with pytest.raises(StateError) as err:
        run_year(ledgers, out, 2022, region="lingang")
    assert "the state's rows for 2021 lingang (run " in str(err.value)
    assert "were changed after they were written" in str(err.value) and "\n" not in str(err.value)
    assert not (out / "2022").exists()


# --- 9. data protection -------------------------------------------------------------------

def test_outputs_and_state_are_readable_by_their_owner_only_whatever_the_umask(ledgers: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    previous = os.umask(0)
    try:
        run_year(ledgers, out, 2021)
    finally:
        os.umask(previous)
    found = [p for p in out.rglob("*")]
    assert out / "state.duckdb" in found and out / "2021" / "lingang" / "payments.csv" in found
    for p in [out, *found]:
        mode = stat.S_IMODE(p.stat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), f"{p}: {oct(mode)}"


def test_an_internal_fault_says_no_money_and_no_name_on_stderr_or_to_prefect(ledgers: Path, tmp_path: Path,
                                                                            monkeypatch, prefect_api) -> None:
    from prefect.client.orchestration import get_client

    from disburse import job

    def broken(*args, **kwargs):
        raise ValueError("cannot pay 1234567.89 to '张三智能科技' (Acme Robotics) for column 'amount'")

    monkeypatch.setattr(job, "compute_region", broken)
    result = cli("run", "--year", "2021", "--ledgers", str(ledgers), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert one_line(result) == ("disburse: internal error, nothing was recorded: ValueError: cannot pay … to '…' "
                                "(Acme Robotics) for column 'amount' (DISBURSE_DEBUG=1 shows the traceback)") or \
        "1234567" not in result.stderr
    assert "1234567" not in result.stderr and "张三" not in result.stderr
    with get_client(sync_client=True) as client:
        told = [log.message for log in client.read_logs()]
        told += [r.state.message or "" for r in client.read_task_runs() if r.state]
        told += [r.state.message or "" for r in client.read_flow_runs() if r.state]
    assert any("ValueError" in t for t in told), told  # Prefect did record the failure...
    assert not [t for t in told if "1234567" in t or "张三" in t]  # ...without the money or the name


# --- 10. clean errors ---------------------------------------------------------------------

@pytest.mark.parametrize("year", ["abc", "20211", "2021.5", "-1"])
def test_a_year_that_is_not_a_year_is_one_line(ledgers: Path, tmp_path: Path, year: str) -> None:
    result = cli("run", "--year", year, "--ledgers", str(ledgers), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert one_line(result) == f"disburse: --year {year}: not a year (expected four digits, e.g. 2022)"


def test_a_year_outside_every_policy_window_warns_and_runs(ledgers: Path, tmp_path: Path, prefect_api) -> None:
    result = cli("run", "--year", "2010", "--ledgers", str(ledgers), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert one_line(result).startswith("disburse: warning: --year 2010 is outside every policy window (")
    assert (tmp_path / "out" / "2010" / "manifest.json").is_file()


def test_a_run_that_fails_after_opening_the_state_prints_one_line_and_nothing_else(ledgers: Path, tmp_path: Path,
                                                                                  prefect_api) -> None:
    """A real process: what it leaves on stderr at exit (DuckDB handles kept alive print 'nanobind: leaked')."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    args = [str(Path(sys.executable).parent / "disburse"), "run", "--year", "2022", "--ledgers", str(ledgers),
            "--out", str(tmp_path / "out")]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "disburse: --year 2022: earlier years were never run and the ledgers have rows for them "
        "(changning 2021; lingang 2021); run them first, from 2021 on, or pass --allow-gaps"]
    assert not (tmp_path / "out" / "state.duckdb").exists()


def test_disburse_debug_still_shows_the_traceback(ledgers: Path, tmp_path: Path, monkeypatch, prefect_api) -> None:
    from disburse import job

    def broken(*args, **kwargs):
        raise KeyError("clause_order")

    monkeypatch.setattr(job, "compute_region", broken)
    monkeypatch.setenv("DISBURSE_DEBUG", "1")
    result = cli("run", "--year", "2021", "--ledgers", str(ledgers), "--out", str(tmp_path / "out"))
    assert isinstance(result.exception, KeyError)
    import traceback

    frames = [f.name for f in traceback.extract_tb(result.exception.__traceback__)]
    assert "broken" in frames and "compute" in frames
    result.exception.__traceback__ = None  # the frames hold the run's DuckDB handles: let them go
