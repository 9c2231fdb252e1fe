"""The DuckDB file that remembers what was paid (SPEC §2 --state).

A run for year Y reads what was paid in years before Y and replaces its own
(Y, region) records in one transaction: rerunning a year never double-counts.
"""

from __future__ import annotations

import datetime as dt
import re
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from disburse import paths
from disburse.money import total_fen
from transforms.compute import CLAWBACK_SCHEMA, HISTORY_SCHEMA

SQL = paths.SQL


class StateError(Exception):
    """The state file cannot be used; one line."""


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the state file (created with its tables if new). A file held by another run is refused at once."""
    if read_only and not path.exists():
        con = duckdb.connect()  # nothing recorded yet: an empty in-memory state
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            pid = re.search(r"PID (\d+)", str(exc))
            who = f" by process {pid.group(1)}" if pid else ""
            raise StateError(f"{path}: state file is in use{who}; wait for that run to finish") from None
        except duckdb.Error as exc:
            raise StateError(f"{path}: cannot open state file ({str(exc).splitlines()[0]})") from None
        if read_only:
            return con
    con.execute((SQL / "state_schema.sql").read_text())
    return con


@contextmanager
def opened(path: Path):
    """The state, held read-write for a whole run; a file this run created is removed if the run fails."""
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


def history(con: duckdb.DuckDBPyConnection, prior_payments: pl.DataFrame, year: int) -> pl.DataFrame:
    """Payments of years before `year`, from state and prior_payments (HISTORY_SCHEMA)."""
    con.register("prior_payments", prior_payments.select("applicant_id", "clause_id", "matter_id", "year", "amount"))
    try:
        df = con.sql((SQL / "history.sql").read_text(), params={"year": year}).pl()
    finally:
        con.unregister("prior_payments")
    return df.select([pl.col(c).cast(t) for c, t in HISTORY_SCHEMA.items()])


def recovered(con: duckdb.DuckDBPyConnection, year: int) -> pl.DataFrame:
    """Amounts clawed back in years before `year` (CLAWBACK_SCHEMA without the reason)."""
    df = con.sql((SQL / "recovered.sql").read_text(), params={"year": year}).pl()
    return df.select([pl.col(c).cast(CLAWBACK_SCHEMA[c]) for c in ("applicant_id", "clause_id", "matter_id", "amount_fen")])


def record(con: duckdb.DuckDBPyConnection, *, year: int, region: str, run_id: str,
           rules_fp: str, params_fp: str, lines: pl.DataFrame, clawbacks: pl.DataFrame) -> None:
    """Replace the (year, region) record. The caller owns the transaction."""
    kept = lines.filter((pl.col("payable_fen") > 0) | (pl.col("award_fen") > 0)).select(
        pl.lit(year).alias("year"), pl.lit(region).alias("region"), "applicant_id", "clause_id", "matter_id",
        "installment", "installments", pl.col("award_fen").fill_null(0), "payable_fen",
        pl.col("line_date").alias("dated_on"),
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
    con.execute(
        "insert into runs values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [year, region, run_id, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None), rules_fp, params_fp,
         kept.height, total_fen(kept["payable_fen"]), total_fen(claws["amount_fen"])],
    )
