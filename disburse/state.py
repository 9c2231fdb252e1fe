"""The DuckDB file that remembers what was paid (SPEC §2 --state).

A run for year Y reads what was paid in years before Y and replaces its own
(Y, region) records in one transaction: rerunning a year never double-counts.

The file knows its own history and guards it:

- it has a schema version (``schema_version``); an older file is migrated
  forward inside one transaction, a newer one is refused;
- a file that is not DuckDB, or is truncated, is named as such in one line;
- one run at a time holds it: ``acquire`` takes an exclusive lock on
  ``<state>.lock`` (which records the holder's run id) before anything is read;
- each (year, region) carries a digest of its rows (``sql/digest.sql``), and a
  later run refuses rows that no longer match it;
- ``approvals`` records the (year, region)s finance signed off; a later run never
  replaces their lines, it proposes ``adjustments`` instead (approved in turn);
- ``publishing`` lists runs whose rows are committed but whose files may not all
  be in place yet (see ``disburse.job.publish``).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from disburse import paths
from disburse.money import PPM, total_fen
from disburse.tables import CLAWBACK_SCHEMA, HISTORY_SCHEMA, paid_on

SQL = paths.SQL
SCHEMA_VERSION = 4
V1_TABLES = {"runs", "lines", "clawbacks"}  # schema 1 had no version table


class StateError(Exception):
    """The state file cannot be used; one line."""


class GapError(StateError):
    """Earlier years of a region were never run; one line. YEAR and GAPS (region -> years never run) let a
    caller word it for its own options (a deployment's parameters, flows.yearly)."""

    def __init__(self, message: str, year: int | None = None, gaps: dict[str, list[int]] | None = None) -> None:
        super().__init__(message)
        self.year, self.gaps = year, gaps or {}


# --- who holds the state ---------------------------------------------------------------

_held: dict[str, list] = {}  # resolved state path -> [fd, run_id, depth]


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def acquire(path: Path, run_id: str) -> None:
    """Hold the state for run RUN_ID (re-entrant for the same run); another run's hold is refused at once.

    The lock is an flock on ``<state>.lock``: the kernel drops it when the holding
    process dies, however it dies, so a killed run never leaves the state held.
    """
    key = str(path.resolve())
    if key in _held:
        fd, holder, depth = _held[key]
        if holder != run_id:
            raise StateError(f"{path}: state file is in use by run {holder} (process {os.getpid()}); "
                             f"wait for that run to finish")
        _held[key][2] = depth + 1
        return
    private_dir(path.parent)
    while True:
        fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("ascii", errors="replace").split()
            os.close(fd)
            who = f"run {holder[0]} (process {holder[1]})" if len(holder) == 2 else "another run"
            raise StateError(f"{path}: state file is in use by {who}; wait for that run to finish") from None
        try:
            if os.stat(lock_path(path)).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder removed the file as it let go: take the new one
    os.fchmod(fd, 0o600)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{run_id} {os.getpid()}\n".encode("ascii"), 0)
    _held[key] = [fd, run_id, 1]


def release(path: Path, run_id: str) -> None:
    key = str(path.resolve())
    if key not in _held or _held[key][1] != run_id:
        return
    _held[key][2] -= 1
    if _held[key][2] == 0:
        fd = _held.pop(key)[0]
        lock_path(path).unlink(missing_ok=True)  # while still held: a waiting run then takes a new file
        os.close(fd)  # closing the only descriptor drops the flock


@contextmanager
def held(path: Path, run_id: str):
    acquire(path, run_id)
    try:
        yield
    finally:
        release(path, run_id)


def private_dir(path: Path) -> None:
    """Create PATH (and parents) readable by the owner only; an existing directory is left as it is."""
    if not path.is_dir():
        path.mkdir(parents=True, mode=0o700)
        path.chmod(0o700)


# --- opening the file ------------------------------------------------------------------

def _sniff(path: Path) -> None:
    """Name a file that cannot be a state before DuckDB is asked to open it."""
    if path.is_dir():
        raise StateError(f"{path}: state file is a directory")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
    if size < 12 or head[8:12] != b"DUCK":
        raise StateError(f"{path}: not a DuckDB file, so not a state file")
    if size % 4096:  # DuckDB writes its file in whole 4 KiB sectors
        raise StateError(f"{path}: state file is truncated or damaged ({size} bytes is not whole blocks)")


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            pid = re.search(r"PID (\d+)", text)
            who = f" by process {pid.group(1)}" if pid else ""
            raise StateError(f"{path}: state file is in use{who}; wait for that run to finish") from None
        if "not a valid DuckDB" in text:
            raise StateError(f"{path}: not a DuckDB file, so not a state file") from None
        raise StateError(f"{path}: state file is truncated or damaged ({text.splitlines()[0]})") from None
    except duckdb.Error as exc:
        raise StateError(f"{path}: cannot open state file ({str(exc).splitlines()[0]})") from None


def _version(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """0 for a file with no tables yet, else the schema version it holds."""
    tables = {t for (t,) in con.execute(
        "select table_name from information_schema.tables where table_schema = 'main'").fetchall()}
    if not tables:
        return 0
    if "schema_version" in tables:
        row = con.execute("select max(version) from schema_version").fetchall()[0]
        if row and row[0] is not None:
            return int(row[0])
    if V1_TABLES <= tables and "schema_version" not in tables:
        return 1
    raise StateError(f"{path}: not a disburse state file (its tables are {', '.join(sorted(tables))})")


def _migrate(con: duckdb.DuckDBPyConnection, path: Path, version: int) -> None:
    """Bring an older schema forward, all in one transaction: a failure leaves the file as it was."""
    con.begin()
    try:
        if version == 0:
            con.execute((SQL / "state_schema.sql").read_text())
        if version == 1:
            con.execute((SQL / "migrate_1_to_2.sql").read_text())
        if version in (1, 2):
            con.execute((SQL / "migrate_2_to_3.sql").read_text())
        if version in (1, 2, 3):
            con.execute((SQL / "migrate_3_to_4.sql").read_text())
        if version == 1:  # schema 1 kept no digests: each (year, region)'s rows as they are now
            con.execute(f"update runs set digest = d.digest from ({_digest_sql()}) as d "
                        "where runs.year = d.year and runs.region = d.region")
        con.execute("delete from schema_version")
        con.execute("insert into schema_version values (?)", [SCHEMA_VERSION])
        con.commit()
    except duckdb.Error as exc:
        con.rollback()
        raise StateError(f"{path}: cannot migrate the state from schema version {version} to "
                         f"{SCHEMA_VERSION} ({str(exc).splitlines()[0]}); the file is unchanged") from None


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the state file: created with its tables if new, migrated forward if older, refused if it is not one.

    Read-only, a missing file is an empty in-memory state and an older schema is
    refused (only a run migrates). The caller holds the lock for a read-write open.
    """
    if read_only and not path.exists():
        con = duckdb.connect()  # nothing recorded yet: an empty in-memory state
        con.execute((SQL / "state_schema.sql").read_text())
        return con
    if path.exists():
        _sniff(path)
    else:
        private_dir(path.parent)
    con = _open(path, read_only)
    try:
        version = _version(con, path)
        if version > SCHEMA_VERSION:
            raise StateError(f"{path}: state schema version {version} is newer than this disburse knows "
                             f"({SCHEMA_VERSION}); use a newer disburse")
        if version < SCHEMA_VERSION:
            if read_only:
                raise StateError(f"{path}: state file has the older schema version {version or 'none'}; "
                                 f"the next `disburse run` migrates it to {SCHEMA_VERSION}")
            _migrate(con, path, version)
    except duckdb.Error as exc:
        con.close()
        raise StateError(f"{path}: state file is truncated or damaged ({str(exc).splitlines()[0]})") from None
    except BaseException:
        con.close()
        raise
    if not read_only:
        for f in (path, path.with_name(path.name + ".wal")):
            if f.exists():
                f.chmod(0o600)
    return con


@contextmanager
def opened(path: Path, run_id: str | None = None):
    """The state, held read-write by RUN_ID (default: a holder of its own) for a whole run; a file this run
    created is removed if the run fails."""
    run_id = run_id or f"process-{os.getpid()}-{id(path):x}"
    with held(path, run_id):
        created = not path.exists()
        con = connect(path)
        try:
            yield con
        except BaseException:
            con.close()
            if created:
                for leftover in (path, path.with_name(path.name + ".wal")):
                    leftover.unlink(missing_ok=True)
            raise
        else:
            con.close()


# --- what the state holds --------------------------------------------------------------

def _digest_sql() -> str:
    return (SQL / "digest.sql").read_text()


def check_recorded(con: duckdb.DuckDBPyConnection, path: Path, before: int | None = None) -> None:
    """Refuse rows changed since their run wrote them: each (year, region)'s digest, line count and totals.

    BEFORE limits the check to the years a run for BEFORE reads (None: every year).
    """
    limit = "" if before is None else f"where k.year < {int(before)}"
    bad = con.execute(f"""
        with d as ({_digest_sql()}),
        sums as (select year, region, count(*) as n, coalesce(sum(payable_fen), 0) as payable
                 from lines group by year, region),
        k as (select year, region from d)
        select k.year, k.region, r.run_id
        from k
        left join d using (year, region)
        left join runs as r using (year, region)
        left join sums as s using (year, region)
        {limit}
        {'and' if limit else 'where'} (r.run_id is null
           or (r.digest is not null and r.digest <> d.digest)
           or r.lines <> coalesce(s.n, 0) or r.total_payable_fen <> coalesce(s.payable, 0))
        order by k.year, k.region
    """).fetchall()
    if bad:
        year, region, run_id = bad[0]
        what = f"run {run_id}" if run_id else "no run recorded"
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise StateError(f"{path}: the state's rows for {year} {region} ({what}) were changed after they were "
                         f"written{more}; restore the state file from a copy, or rerun {year}")


def prior_installments(prior_payments: pl.DataFrame, shares: pl.DataFrame) -> pl.DataFrame:
    """Each accepted prior payment as a line of history: its installment, installments and award in fen.

    A row giving them (validated: all three, its clause's count) keeps them. A row without them is
    installment 1 of its clause's count (SPEC §3); under a clause paying in installments its award is
    inferred, amount ÷ the first share, half up to the fen, in exact integers (``award_inferred``);
    under a clause paying at once it is the amount. SHARES: ``compile_tables``' shares (every clause
    has at least its one share of 100%)."""
    plan = shares.group_by("clause_id").agg(
        pl.len().cast(pl.Int64).alias("_count"),
        pl.col("cum_ppm").sort_by("installment").first().alias("_first_ppm"),
    )
    given = pl.col("installments").is_not_null()
    inferred = ~given & (pl.col("_count").fill_null(1) > 1)
    amount = pl.col("amount").cast(pl.Int128)
    first = pl.col("_first_ppm").cast(pl.Int128)
    return prior_payments.join(plan, on="clause_id", how="left").select(
        "applicant_id", "clause_id", "matter_id", "year", "amount",
        pl.when(given).then(pl.col("installment")).otherwise(1).cast(pl.Int64).alias("installment"),
        pl.when(given).then(pl.col("installments")).otherwise(pl.col("_count").fill_null(1)).cast(pl.Int64)
        .alias("installments"),
        pl.when(given).then(pl.col("award"))
        .when(inferred).then((amount * (2 * PPM) + first) // (2 * first))  # amount ÷ share, half up
        .otherwise(pl.col("amount")).cast(pl.Int64).alias("award"),
        inferred.alias("award_inferred"),
    )


def history(con: duckdb.DuckDBPyConnection, prior_payments: pl.DataFrame, year: int,
            shares: pl.DataFrame) -> pl.DataFrame:
    """Payments of years before `year`, from state and prior_payments (HISTORY_SCHEMA); SHARES: the
    clauses' installment shares, to read a prior payment under a clause paying in installments."""
    for c, t in (("installment", pl.Int64), ("installments", pl.Int64), ("award", pl.Int64)):
        if c not in prior_payments.columns:  # a frame of the required columns only: no installments given
            prior_payments = prior_payments.with_columns(pl.lit(None, t).alias(c))
    con.register("prior_payments", prior_installments(prior_payments, shares))
    try:
        df = con.sql((SQL / "history.sql").read_text(), params={"year": year}).pl()
    finally:
        con.unregister("prior_payments")
    return df.select([pl.col(c).cast(t) for c, t in HISTORY_SCHEMA.items()])


def recovered(con: duckdb.DuckDBPyConnection, year: int) -> pl.DataFrame:
    """Amounts clawed back in years before `year` (CLAWBACK_SCHEMA without the reason)."""
    df = con.sql((SQL / "recovered.sql").read_text(), params={"year": year}).pl()
    return df.select([pl.col(c).cast(CLAWBACK_SCHEMA[c]) for c in ("applicant_id", "clause_id", "matter_id", "amount_fen")])


def years_run(con: duckdb.DuckDBPyConnection, regions: list[str]) -> dict[str, list[int]]:
    """The years recorded for each of REGIONS, ascending."""
    rows = con.execute("select region, year from runs where list_contains(?, region) order by year",
                       [regions]).fetchall()
    out: dict[str, list[int]] = {r: [] for r in regions}
    for region, year in rows:
        out[region].append(year)
    return out


def record(con: duckdb.DuckDBPyConnection, *, year: int, region: str, run_id: str,
           rules_fp: str, params_fp: str, lines: pl.DataFrame, clawbacks: pl.DataFrame,
           status: str = "done", gaps_allowed: list[int] | None = None) -> None:
    """Replace the (year, region) record, with its digest. The caller owns the transaction."""
    kept = lines.filter((pl.col("payable_fen") > 0) | (pl.col("award_fen") > 0)).select(
        pl.lit(year).alias("year"), pl.lit(region).alias("region"), "applicant_id", "clause_id", "matter_id",
        "installment", "installments", pl.col("award_fen").fill_null(0), "payable_fen",
        paid_on(pl.lit(year)).alias("dated_on"), "year_of_matter",
    )
    claws = clawbacks.select(pl.lit(year).alias("year"), pl.lit(region).alias("region"), "applicant_id",
                             "clause_id", "matter_id", "amount_fen", "reason")
    for table in ("runs", "lines", "clawbacks"):
        con.execute(f"delete from {table} where year = ? and region = ?", [year, region])
    con.register("new_lines", kept)
    con.register("new_clawbacks", claws)
    con.execute("insert into lines by name select * from new_lines")
    con.execute("insert into clawbacks by name select * from new_clawbacks")
    con.unregister("new_lines")
    con.unregister("new_clawbacks")
    digest = con.execute(f"select digest from ({_digest_sql()}) where year = ? and region = ?",
                         [year, region]).fetchall()
    con.execute(
        "insert into runs by name select ? as year, ? as region, ? as run_id, ? as recorded_at, "
        "? as rules_fingerprint, ? as params_fingerprint, ? as lines, ? as total_payable_fen, "
        "? as total_clawback_fen, ? as status, ? as digest, ? as gaps_allowed",
        [year, region, run_id, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), rules_fp, params_fp,
         kept.height, total_fen(kept["payable_fen"]), total_fen(claws["amount_fen"]), status,
         digest[0][0] if digest else None, ",".join(map(str, gaps_allowed)) if gaps_allowed else None],
    )


# --- publishing: rows committed before the files move in -------------------------------

@dataclass
class Publishing:
    run_id: str
    year_dir: Path
    staging: Path
    names: list[str]


def begin_publishing(con: duckdb.DuckDBPyConnection, p: Publishing) -> None:
    """Inside the run's transaction: its files are staged and will be moved in after the commit."""
    con.execute("insert into publishing values (?, ?, ?, ?)",
                [p.run_id, str(p.year_dir.resolve()), str(p.staging.resolve()), "/".join(p.names)])


def pending(con: duckdb.DuckDBPyConnection) -> list[Publishing]:
    rows = con.execute("select run_id, year_dir, staging, names from publishing order by run_id").fetchall()
    return [Publishing(r, Path(y), Path(s), n.split("/")) for r, y, s, n in rows]


def end_publishing(con: duckdb.DuckDBPyConnection, run_id: str, *, done: bool = True) -> None:
    """Every file of RUN_ID is in place (done), or its staged files are lost (not done: it stays pending)."""
    con.begin()
    if done:
        con.execute("update runs set status = 'done' where run_id = ?", [run_id])
    con.execute("delete from publishing where run_id = ?", [run_id])
    con.commit()


def run_records(con: duckdb.DuckDBPyConnection, year: int) -> dict[str, dict]:
    """Each region's record of YEAR: run id, status, lines, totals, and whether its rows still match the digest."""
    rows = con.execute(f"""
        select r.region, r.run_id, r.status, r.lines, r.total_payable_fen, r.total_clawback_fen,
               r.digest is null or r.digest = d.digest as intact
        from runs as r left join ({_digest_sql()}) as d using (year, region)
        where r.year = ?
    """, [year]).fetchall()
    cols = ("run_id", "status", "lines", "total_payable_fen", "total_clawback_fen", "intact")
    return {r[0]: dict(zip(cols, r[1:])) for r in rows}


def recorded_lines(con: duckdb.DuckDBPyConnection, year: int, region: str) -> pl.DataFrame:
    return con.sql("select applicant_id, clause_id, matter_id, year_of_matter, installment, payable_fen from lines "
                   "where year = $year and region = $region", params={"year": year, "region": region}).pl()


# --- approval: what finance signed off ---------------------------------------------------

def approved_regions(con: duckdb.DuckDBPyConnection, year: int) -> dict[str, str]:
    """Region -> the approved run id, for each region of YEAR finance has signed off."""
    return dict(con.execute("select region, run_id from approvals where year = ?", [year]).fetchall())


def adjustments(con: duckdb.DuckDBPyConnection, year: int, region: str, lines: pl.DataFrame) -> pl.DataFrame:
    """Per (applicant, clause, matter): approved (lines plus approved adjustments), recomputed, difference != 0."""
    keys = ["applicant_id", "clause_id", "matter_id"]
    approved = con.sql(
        "select applicant_id, clause_id, matter_id, sum(fen)::bigint as approved_fen from ("
        " select applicant_id, clause_id, matter_id, payable_fen as fen from lines where year = $y and region = $r"
        " union all"
        " select applicant_id, clause_id, matter_id, difference_fen from adjustments"
        " where year = $y and region = $r and approved_at is not null) group by all",
        params={"y": year, "r": region}).pl()
    approved = approved.select(*keys, pl.col("approved_fen").cast(pl.Int64))
    recomputed = lines.group_by(keys).agg(pl.col("payable_fen").cast(pl.Int64).sum().alias("recomputed_fen"))
    both = approved.join(recomputed, on=keys, how="full", coalesce=True).with_columns(
        pl.col("approved_fen").fill_null(0), pl.col("recomputed_fen").fill_null(0))
    return (both.with_columns((pl.col("recomputed_fen") - pl.col("approved_fen")).alias("difference_fen"))
            .filter(pl.col("difference_fen") != 0).sort(keys))


def record_adjustments(con: duckdb.DuckDBPyConnection, *, year: int, region: str, run_id: str,
                       adjusted: pl.DataFrame) -> None:
    """Replace the (year, region)'s unapproved adjustments by ADJUSTED. The caller owns the transaction."""
    con.execute("delete from adjustments where year = ? and region = ? and approved_at is null", [year, region])
    con.register("new_adjustments", adjusted.select(
        pl.lit(year).alias("year"), pl.lit(region).alias("region"), pl.lit(run_id).alias("run_id"),
        "applicant_id", "clause_id", "matter_id", "approved_fen", "recomputed_fen", "difference_fen"))
    con.execute("insert into adjustments by name select * from new_adjustments")
    con.unregister("new_adjustments")


@dataclass
class Approval:
    """What ``approve`` signed off: the run in place (KIND "run": its lines and total) or its pending
    adjustments (KIND "adjustments": how many, and the totals to pay and to recover, in fen)."""
    kind: str
    year: int
    region: str
    run_id: str  # the approved run; for adjustments, the rerun that proposed them
    by: str
    at: dt.datetime  # UTC, naive (as the state stores it)
    count: int = 0
    pay_count: int = 0
    pay_fen: int = 0
    recover_count: int = 0
    recover_fen: int = 0  # positive: the amount to recover
    approved_run_id: str = ""


def approve(con: duckdb.DuckDBPyConnection, path: Path, *, year: int, region: str, by: str,
            before_commit=None) -> Approval:
    """Sign off YEAR REGION: the run in place, or else its pending adjustments. BEFORE_COMMIT(approval), if
    given, runs inside the transaction once the approval is recorded (it stages the files that say so);
    if it raises, nothing is recorded."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    con.begin()
    try:
        approved = con.execute("select run_id from approvals where year = ? and region = ?", [year, region]).fetchall()
        if not approved:
            run = con.execute("select run_id, status, lines, total_payable_fen from runs where year = ? and region = ?",
                              [year, region]).fetchall()
            if not run:
                raise StateError(f"--year {year} --region {region}：{path} 中没有 {year} 年度 {region} 的运行记录，"
                                 f"请先运行该年度")
            run_id, status, lines, total = run[0]
            if status != "done":
                raise StateError(f"--year {year} --region {region}：运行 {run_id} 在发布文件时中断，"
                                 f"下一次运行会完成它，之后再审批")
            con.execute("insert into approvals values (?, ?, ?, ?, ?)", [year, region, run_id, by, now])
            what = Approval("run", year, region, run_id, by, now, count=int(lines or 0), pay_fen=int(total or 0),
                            approved_run_id=run_id)
        else:
            pending_rows = con.execute(
                "select run_id, count(*), count(*) filter (where difference_fen > 0),"
                " coalesce(sum(difference_fen) filter (where difference_fen > 0), 0)::hugeint,"
                " count(*) filter (where difference_fen < 0),"
                " coalesce(-sum(difference_fen) filter (where difference_fen < 0), 0)::hugeint"
                " from adjustments where year = ? and region = ? and approved_at is null group by run_id",
                [year, region]).fetchall()
            if not pending_rows:
                raise StateError(f"--year {year} --region {region}：运行 {approved[0][0]} 已经审批，"
                                 f"没有待审批的调整")
            rerun, n, n_pay, pay, n_recover, recover = pending_rows[0]
            con.execute("update adjustments set approved_by = ?, approved_at = ? where year = ? and region = ? "
                        "and approved_at is null", [by, now, year, region])
            what = Approval("adjustments", year, region, rerun, by, now, count=int(n), pay_count=int(n_pay),
                            pay_fen=int(pay), recover_count=int(n_recover), recover_fen=int(recover),
                            approved_run_id=approved[0][0])
        if before_commit is not None:
            before_commit(what)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    return what
