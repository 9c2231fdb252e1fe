"""Review before paying: two runs' disbursements side by side, per applicant and clause.

``disburse diff BEFORE AFTER`` reads ``disbursements.parquet`` from each directory
(e.g. ``OUT/Y/REGION/runs/RUN_ID`` and ``OUT/Y/REGION``), sums the payable per
(applicant, clause) in integer fen, and lists before, after and the difference
(after minus before: positive to pay, negative to recover). Exact: the parquet's
yuan are Decimal(18, 2), turned into fen without a float.

An approved region's files stay as approved when its year is rerun; the rerun's
recomputation lives in its ``adjustments.csv`` (per applicant, clause and matter
whose amount changed: approved, recomputed). A directory holding one is read as
its recomputation when it is AFTER (the files' lines, with each adjusted matter at
its recomputed amount), and ``disburse diff OUT/Y/REGION`` alone compares the
approved amounts with the recomputation.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from disburse.money import yuan_text

KEYS = ("applicant_id", "clause_id")


class DiffError(Exception):
    """A directory cannot be compared; one line."""


ADJUSTMENTS = "adjustments.csv"
MATTER = ("applicant_id", "clause_id", "matter_id")


def _fen(col: str) -> pl.Expr:
    """Decimal yuan (either sign) to Int64 fen, exact."""
    return (pl.col(col).cast(pl.Decimal(38, 2)) * 100).cast(pl.Decimal(38, 0)).cast(pl.Int64)


def adjustments(directory: Path) -> pl.DataFrame | None:
    """DIRECTORY's adjustments.csv (an approved region rerun since) per matter: approved_fen, recomputed_fen,
    and the rerun's run_id; None without one."""
    path = directory / ADJUSTMENTS
    if not path.is_file():
        return None
    df = pl.read_csv(path, infer_schema=False, columns=[*MATTER, "approved", "recomputed", "run_id"])
    return df.select(*MATTER, _fen("approved").alias("approved_fen"), _fen("recomputed").alias("recomputed_fen"), "run_id")


def payable_fen(directory: Path, amounts: str | None = None) -> pl.DataFrame:
    """Payable per (applicant, clause) in fen (Int64) from DIRECTORY/disbursements.parquet.

    AMOUNTS "approved" or "recomputed": each matter listed in DIRECTORY/adjustments.csv at that amount
    instead of its lines' (the approved amount counts adjustments approved before)."""
    path = directory / "disbursements.parquet"
    if not path.is_file():
        raise DiffError(f"{directory}: no disbursements.parquet (expected a region's output directory)")
    adjusted = adjustments(directory) if amounts else None
    if adjusted is None:
        df = pl.read_parquet(path, columns=[*KEYS, "payable"])
        return df.group_by(KEYS).agg(_fen("payable").sum().alias("fen"))
    lines = pl.read_parquet(path, columns=[*MATTER, "payable"]).select(*MATTER, _fen("payable").alias("fen"))
    matters = pl.concat([lines.join(adjusted, on=list(MATTER), how="anti"),
                         adjusted.select(*MATTER, pl.col(f"{amounts}_fen").alias("fen"))])
    return matters.group_by(KEYS).agg(pl.col("fen").sum())


def diff(before_dir: Path, after_dir: Path | None = None, *, recomputed: bool = True) -> pl.DataFrame:
    """One row per (applicant, clause) in either run: before_fen, after_fen, difference_fen; largest |difference| first.

    AFTER_DIR holding adjustments.csv counts as its recomputation (unless RECOMPUTED is false); without
    AFTER_DIR, BEFORE_DIR's approved amounts are compared with its recomputation."""
    if after_dir is None:
        if adjustments(before_dir) is None:
            raise DiffError(f"{before_dir}: no {ADJUSTMENTS}, so no recomputation of an approved run to compare with; "
                            f"give two directories")
        before = payable_fen(before_dir, "approved").rename({"fen": "before_fen"})
        after = payable_fen(before_dir, "recomputed").rename({"fen": "after_fen"})
    else:
        before = payable_fen(before_dir).rename({"fen": "before_fen"})
        after = payable_fen(after_dir, "recomputed" if recomputed else None).rename({"fen": "after_fen"})
    both = before.join(after, on=list(KEYS), how="full", coalesce=True).with_columns(
        pl.col("before_fen").fill_null(0), pl.col("after_fen").fill_null(0))
    both = both.with_columns((pl.col("after_fen") - pl.col("before_fen")).alias("difference_fen"))
    return (both.with_columns(pl.col("difference_fen").abs().alias("_size"))
            .sort(["_size", *KEYS], descending=[True, False, False]).drop("_size")
            .select(*KEYS, "before_fen", "after_fen", "difference_fen"))


def names(*directories: Path) -> pl.DataFrame:
    """applicant_id, applicant_name from the directories' disbursements.parquet (a later directory's name wins);
    a file written without names gives none."""
    frames = []
    for directory in directories:
        path = directory / "disbursements.parquet"
        if "applicant_name" in pl.read_parquet_schema(path):
            frames.append(pl.read_parquet(path, columns=["applicant_id", "applicant_name"]))
    if not frames:
        return pl.DataFrame(schema={"applicant_id": pl.String, "applicant_name": pl.String})
    return pl.concat(frames).unique("applicant_id", keep="last", maintain_order=True)


def signed_yuan_text(col: str) -> pl.Expr:
    """Int64 fen, either sign, to '-1234.56' text."""
    e = pl.col(col)
    return pl.when(e < 0).then(pl.lit("-") + yuan_text(-e)).otherwise(yuan_text(e))


def csv_frame(d: pl.DataFrame) -> pl.DataFrame:
    return d.select(*KEYS, signed_yuan_text("before_fen").alias("before"), signed_yuan_text("after_fen").alias("after"),
                    signed_yuan_text("difference_fen").alias("difference"))
