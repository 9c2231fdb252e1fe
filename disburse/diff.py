"""Review before paying: two runs' disbursements side by side, per applicant and clause.

``disburse diff BEFORE AFTER`` reads ``disbursements.parquet`` from each directory
(e.g. ``OUT/Y/REGION/runs/RUN_ID`` and ``OUT/Y/REGION``), sums the payable per
(applicant, clause) in integer fen, and lists before, after and the difference
(after minus before: positive to pay, negative to recover). Exact: the parquet's
yuan are Decimal(18, 2), turned into fen without a float.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from disburse.money import yuan_text

KEYS = ("applicant_id", "clause_id")


class DiffError(Exception):
    """A directory cannot be compared; one line."""


def payable_fen(directory: Path) -> pl.DataFrame:
    """Payable per (applicant, clause) in fen (Int64) from DIRECTORY/disbursements.parquet."""
    path = directory / "disbursements.parquet"
    if not path.is_file():
        raise DiffError(f"{directory}: no disbursements.parquet (expected a region's output directory)")
    df = pl.read_parquet(path, columns=[*KEYS, "payable"])
    fen = (pl.col("payable").cast(pl.Decimal(38, 2)) * 100).cast(pl.Decimal(38, 0)).cast(pl.Int64)
    return df.group_by(KEYS).agg(fen.sum().alias("fen"))


def diff(before_dir: Path, after_dir: Path) -> pl.DataFrame:
    """One row per (applicant, clause) in either run: before_fen, after_fen, difference_fen; largest |difference| first."""
    before = payable_fen(before_dir).rename({"fen": "before_fen"})
    after = payable_fen(after_dir).rename({"fen": "after_fen"})
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
