"""The files finance and auditors read (SPEC §4), written so no reader sees half a run.

Everything is first written under ``OUT/Y/.staging-<run>/``; ``swap_in`` then
moves each region directory into place (keeping the old one aside until the
state transaction commits, so ``restore`` can put it back).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from disburse.audit import RunInfo, clause_totals, previous_year, write_audit  # noqa: F401 (re-exported)
from disburse.excel import write_payments_xlsx
from disburse.money import fen_to_yuan_expr, rate_text, yuan_text
from transforms.region import RegionResult


def disbursement_frame(result: RegionResult, *, as_text: bool) -> pl.DataFrame:
    money = yuan_text if as_text else (lambda c: fen_to_yuan_expr(pl.col(c)))
    return result.disbursements.select(
        "applicant_id", "applicant_name", "region", "year", "clause_id", "clause_title", "matter_id",
        money("base_fen").alias("base_amount"),
        rate_text("eff_rate_ppm").alias("rate"),
        money("gross_fen").alias("gross_amount"),
        money("payable_fen").alias("payable"),
        "installment", "installments", "reasons", "article", "steps",
    )


def payments_frame(result: RegionResult, year: int | None = None, run_id: str | None = None) -> pl.DataFrame:
    """SPEC §4's columns, then the year and the run id (so a file on its own says which run it is)."""
    extra = [] if year is None else [pl.lit(year, pl.Int64).alias("year"), pl.lit(run_id, pl.String).alias("run_id")]
    return result.payments.select("applicant_id", "applicant_name", yuan_text("total_payable_fen").alias("total_payable"),
                                  *extra)


def clawbacks_frame(result: RegionResult) -> pl.DataFrame:
    return result.clawbacks.select("applicant_id", "clause_id", "matter_id", yuan_text("amount_fen").alias("amount"), "reason")


def write_csv(df: pl.DataFrame, path: Path) -> None:
    df.write_csv(path, include_bom=True)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_region(result: RegionResult, rejected: pl.DataFrame, year: int, directory: Path, run: RunInfo, *,
                 previous: pl.DataFrame | None = None, detail_limit: int | None = None) -> dict[str, int]:
    """All of one region's files into DIRECTORY; returns row counts by file name (paths relative to DIRECTORY).

    PREVIOUS: the previous year's payable lines of the region (``audit.previous_year``), for the audit's comparison.
    Past detail_limit lines (default ``audit.DETAIL_LIMIT``) the audit's per-line detail goes to paged files under audit/.
    """
    directory.mkdir(parents=True)
    frames = {
        "disbursements.csv": disbursement_frame(result, as_text=True),
        "payments.csv": payments_frame(result, year, run.run_id),
        "clawbacks.csv": clawbacks_frame(result),
        "in_kind.csv": result.in_kind.select("applicant_id", "applicant_name", "clause_id", "clause_title", "matter_id",
                                             pl.col("in_kind_quantity").alias("quantity"), pl.col("in_kind_unit").alias("unit"),
                                             "steps"),
        "rejected.csv": rejected,
    }
    for name, df in frames.items():
        write_csv(df, directory / name)
    disbursement_frame(result, as_text=False).write_parquet(directory / "disbursements.parquet")
    result.lines.write_parquet(directory / "audit_lines.parquet")
    counts = {name: df.height for name, df in frames.items()}
    counts |= {"disbursements.parquet": frames["disbursements.csv"].height, "audit_lines.parquet": result.lines.height}
    counts |= write_audit(result, year, directory, run, rejected=rejected, previous=previous, detail_limit=detail_limit)
    counts["payments.xlsx"] = write_payments_xlsx(
        directory / "payments.xlsx", year=year, region=result.region, run_id=run.run_id,
        rules_fp=run.rules_fingerprint, params_fp=run.params_fingerprint, payments=result.payments,
        lines=result.disbursements, totals=clause_totals(result.lines).filter(pl.col("payable_fen") > 0),
        budgets=result.budgets)
    return counts


@dataclass
class Staged:
    """A run's files, written but not yet in place."""
    year_dir: Path
    staging: Path
    regions: list[str]
    moved: list[tuple[Path, Path | None]] = field(default_factory=list)  # (live dir, its old copy)

    def region_dir(self, region: str) -> Path:
        return self.staging / region

    def swap_in(self) -> None:
        """Move each staged region directory and year-level file into place, keeping the old aside."""
        names = [*self.regions, *(n for n in ("rejected.csv", "manifest.json") if (self.staging / n).exists())]
        for name in names:
            live, old = self.year_dir / name, None
            if live.exists():
                old = self.staging / f".old-{name}"
                os.replace(live, old)
            self.moved.append((live, old))
            os.replace(self.staging / name, live)

    def restore(self) -> None:
        """Undo swap_in (the run failed before its state committed)."""
        for live, old in reversed(self.moved):
            if live.is_dir():
                shutil.rmtree(live)
            elif live.exists():
                live.unlink()
            if old is not None:
                os.replace(old, live)
        self.moved.clear()

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        if self.year_dir.is_dir() and not any(self.year_dir.iterdir()):
            self.year_dir.rmdir()  # a first run that failed leaves no trace


def stage(out_dir: Path, year: int, run_id: str, regions: list[str]) -> Staged:
    year_dir = out_dir / str(year)
    year_dir.mkdir(parents=True, exist_ok=True)
    staging = year_dir / f".staging-{run_id}"
    staging.mkdir()
    return Staged(year_dir, staging, regions)


def write_manifest(path: Path, manifest: dict) -> None:
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")


def read_manifest(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
