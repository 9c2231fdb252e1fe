"""The files finance and auditors read (SPEC §4), written so no reader sees half a run.

Everything is first written under ``OUT/Y/.staging-<run>/`` (owner-only, fsynced);
the state then commits the run as pending, ``swap_in`` moves each entry into place,
and the run is marked done (``disburse.job.publish``). Files and directories are
created readable by their owner only, whatever the umask.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from disburse.audit import RunInfo, clause_totals, previous_year, write_audit  # noqa: F401 (re-exported)
from disburse.excel import write_payments_xlsx
from disburse.public_notice import write_public_notice
from disburse.money import fen_to_yuan_expr, rate_text, yuan_text
from disburse import killpoint
from disburse.tables import RegionResult


def disbursement_frame(result: RegionResult, *, as_text: bool) -> pl.DataFrame:
    money = yuan_text if as_text else (lambda c: fen_to_yuan_expr(pl.col(c)))
    return result.disbursements.select(
        "applicant_id", "applicant_name", "region", "year", "year_of_matter", "clause_id", "clause_title", "matter_id",
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


def write_parquet(df: pl.DataFrame, path: Path) -> None:
    # zstd at level 1: measured at 1M applicants, a quarter faster than polars' default level, same size
    df.write_parquet(path, compression="zstd", compression_level=1)


def sha256_all(paths: list[Path], threads: int) -> dict[Path, str]:
    """Each path's sha256, THREADS files at a time."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return dict(zip(paths, pool.map(sha256, paths)))


def _fsync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


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
    counts: dict[str, int] = {}
    for part in region_writers(result, rejected, year, directory, run, previous=previous, detail_limit=detail_limit):
        counts |= part()
    return counts


def region_writers(result: RegionResult, rejected: pl.DataFrame, year: int, directory: Path, run: RunInfo, *,
                   previous: pl.DataFrame | None = None, detail_limit: int | None = None,
                   ) -> list[Callable[[], dict[str, int]]]:
    """``write_region`` in independent parts (each writes its own files and returns their row counts), so
    that a run writes parts of several regions at once. DIRECTORY is made here."""
    directory.mkdir(parents=True)

    def tables() -> dict[str, int]:
        frames = {
            "disbursements.csv": disbursement_frame(result, as_text=True),
            "payments.csv": payments_frame(result, year, run.run_id),
            "clawbacks.csv": clawbacks_frame(result),
            "in_kind.csv": result.in_kind.select("applicant_id", "applicant_name", "clause_id", "clause_title",
                                                 "matter_id", pl.col("in_kind_quantity").alias("quantity"),
                                                 pl.col("in_kind_unit").alias("unit"), "steps"),
            "rejected.csv": rejected,
        }
        for name, df in frames.items():
            write_csv(df, directory / name)
        write_parquet(disbursement_frame(result, as_text=False), directory / "disbursements.parquet")
        write_parquet(result.lines, directory / "audit_lines.parquet")
        counts = {name: df.height for name, df in frames.items()}
        return counts | {"disbursements.parquet": frames["disbursements.csv"].height,
                         "audit_lines.parquet": result.lines.height}

    def audit() -> dict[str, int]:
        return write_audit(result, year, directory, run, rejected=rejected, previous=previous, detail_limit=detail_limit)

    def workbook() -> dict[str, int]:
        return {"payments.xlsx": write_payments_xlsx(
            directory / "payments.xlsx", year=year, region=result.label, run_id=run.run_id,
            rules_fp=run.rules_fingerprint, params_fp=run.params_fingerprint, payments=result.payments,
            lines=result.disbursements, totals=clause_totals(result.lines).filter(pl.col("payable_fen") > 0),
            budgets=result.budgets)}

    def public_notice() -> dict[str, int]:
        return write_public_notice(result, year, directory, run)

    return [tables, audit, workbook, public_notice]


SYNCS = 4  # files flushed to disk at once while sealing
MERGE = ".merge"  # in a staged region directory: merge its files into the live one (an approved region)
REPLACED = ".replaces-"  # in staging, per region: the run id of the region directory the new one replaces


def note_replaced(staged: "Staged", region: str, run_id: str) -> None:
    """Remember, in staging, which run's files REGION's new directory replaces (kept under runs/RUN_ID/)."""
    (staged.staging / f"{REPLACED}{region}").write_text(run_id + "\n", encoding="ascii")


NO_RECOMPUTED_LINE = "本次重算没有这一事项的明细行（台账中已无该行，或该行未通过校验）"
NO_APPROVED_LINE = "已审批的运行没有这一事项的明细行"
ADJUSTMENT_KEYS = ["applicant_id", "clause_id", "matter_id"]


def steps_by_matter(lines: pl.DataFrame | None) -> pl.DataFrame:
    """Per (applicant, clause, matter) of LINES (audit lines): the name, the clause title and every line's
    steps in words, one line of text each (a matter of several lines: each headed by its year and
    installment)."""
    schema = {k: pl.String for k in [*ADJUSTMENT_KEYS, "applicant_name", "clause_title", "steps"]}
    if lines is None or lines.is_empty():
        return pl.DataFrame(schema=schema)
    several = pl.len().over(ADJUSTMENT_KEYS) > 1
    text = pl.when(several).then(pl.format("［{} 年 第 {}/{} 期］{}", "year_of_matter", "installment", "installments",
                                           "steps")).otherwise(pl.col("steps"))
    return (lines.sort(*ADJUSTMENT_KEYS, "year_of_matter", "installment").with_columns(text.alias("_text"))
            .group_by(ADJUSTMENT_KEYS, maintain_order=True)
            .agg(pl.col("applicant_name").first(), pl.col("clause_title").first(), pl.col("_text").str.join("\n").alias("steps"))
            .select([pl.col(c).cast(t) for c, t in schema.items()]))


def adjustment_frame(adjusted: pl.DataFrame, recomputed_lines: pl.DataFrame | None,
                     approved_lines: pl.DataFrame | None) -> pl.DataFrame:
    """ADJUSTED (state.adjustments) with each matter's name, clause title and both computations' steps."""
    now = steps_by_matter(recomputed_lines).rename({"steps": "recomputed_steps"})
    then = steps_by_matter(approved_lines).rename({"steps": "approved_steps", "applicant_name": "_name",
                                                   "clause_title": "_title"})
    return adjusted.join(now, on=ADJUSTMENT_KEYS, how="left", maintain_order="left").join(
        then, on=ADJUSTMENT_KEYS, how="left", maintain_order="left").with_columns(
        pl.coalesce("applicant_name", "_name").alias("applicant_name"),
        pl.coalesce("clause_title", "_title").alias("clause_title"),
        pl.col("recomputed_steps").fill_null(NO_RECOMPUTED_LINE), pl.col("approved_steps").fill_null(NO_APPROVED_LINE),
    ).drop("_name", "_title")


def write_adjustments(adjusted: pl.DataFrame, directory: Path, *, year: int, region: str, approved_run: str,
                      run_id: str, recomputed_lines: pl.DataFrame | None = None,
                      approved_lines: pl.DataFrame | None = None) -> int:
    """An approved region's adjustments.csv and adjustments.xlsx, alone in DIRECTORY (staged to merge into the
    live directory). RECOMPUTED_LINES: the rerun's lines; APPROVED_LINES: the approved run's (its
    audit_lines.parquet), for the names and both computations' steps."""
    directory.mkdir(parents=True)
    from disburse.diff import signed_yuan_text
    from disburse.excel import write_adjustments_xlsx

    adjusted = adjustment_frame(adjusted, recomputed_lines, approved_lines)
    df = adjusted.select(
        pl.lit(year, pl.Int64).alias("year"), pl.lit(region).alias("region"),
        "applicant_id", "clause_id", "matter_id",
        signed_yuan_text("approved_fen").alias("approved"), signed_yuan_text("recomputed_fen").alias("recomputed"),
        signed_yuan_text("difference_fen").alias("difference"),
        pl.when(pl.col("difference_fen") > 0).then(pl.lit("pay")).otherwise(pl.lit("recover")).alias("action"),
        # the action in words: the code column above stays for scripts
        pl.when(pl.col("difference_fen") > 0).then(pl.lit("补付")).otherwise(pl.lit("追回")).alias("说明"),
        pl.lit(approved_run).alias("approved_run_id"), pl.lit(run_id).alias("run_id"),
        "applicant_name", "clause_title", "recomputed_steps", "approved_steps",
    )
    write_csv(df, directory / "adjustments.csv")
    write_adjustments_xlsx(directory / "adjustments.xlsx", year=year, region=region, approved_run=approved_run,
                           run_id=run_id, adjustments=adjusted)
    (directory / MERGE).write_bytes(b"")
    return df.height


@dataclass
class Staged:
    """A run's files, written but not yet in place: ``OUT/Y/.staging-<run>/``."""
    year_dir: Path
    staging: Path
    regions: list[str]

    def region_dir(self, region: str) -> Path:
        return self.staging / region

    @property
    def names(self) -> list[str]:
        """What moves in, in order: the region directories, then the year's files, the manifest last."""
        return [*self.regions, "rejected.csv", "manifest.json"]

    def seal(self) -> None:
        """Owner-only modes on everything staged, and every byte on disk before the state commits."""
        files = []
        for p in sorted(self.staging.rglob("*"), reverse=True):
            if p.is_dir():
                p.chmod(0o700)
            else:
                p.chmod(0o600)
                files.append(p)
        with ThreadPoolExecutor(max_workers=SYNCS) as pool:  # the disk takes several at once
            list(pool.map(_fsync, files))
        self.staging.chmod(0o700)
        _fsync_dir(self.staging)

    def swap_in(self) -> None:
        """Move each staged entry into place. Idempotent: after a kill it finishes what is left.

        A region directory is moved aside into staging first (a directory cannot be
        replaced in one step), then the new one in, then the old one under the new
        one's ``runs/RUN_ID/`` (earlier kept runs move along under ``runs/``); a file
        is replaced in one step. An approved region's staged directory holds only
        ``adjustments.csv`` and the ``.merge`` mark: its files move into the live
        directory one by one, leaving the approved files as they are.
        """
        for name in self.names:
            new, live, old = self.staging / name, self.year_dir / name, self.staging / f".old-{name}"
            if new.is_dir() and not new.is_symlink() and (new / MERGE).exists():
                for f in sorted(p for p in new.iterdir() if p.name != MERGE):
                    os.replace(f, live / f.name)
                _fsync_dir(live)
                (new / MERGE).unlink()
            if new.is_dir() and not new.is_symlink() and not any(new.iterdir()):
                new.rmdir()  # merged in before a kill
            if new.exists() or new.is_symlink():
                if new.is_dir():
                    if live.exists():
                        os.replace(live, old)
                        killpoint.reached(f"aside:{name}")
                    if (old / "runs").is_dir() and not (new / "runs").exists():
                        os.replace(old / "runs", new / "runs")
                os.replace(new, live)
                _fsync_dir(self.year_dir)
                killpoint.reached(f"in:{name}")
            if old.is_dir():
                replaced = self.staging / f"{REPLACED}{name}"
                run_id = replaced.read_text(encoding="ascii").strip() if replaced.is_file() else "replaced"
                private_dir(live / "runs")
                os.replace(old, live / "runs" / run_id)
                _fsync_dir(live / "runs")
                killpoint.reached(f"kept:{name}")

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        if self.year_dir.is_dir() and not any(self.year_dir.iterdir()):
            self.year_dir.rmdir()  # a first run that failed leaves no trace


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def stage(out_dir: Path, year: int, run_id: str, regions: list[str]) -> Staged:
    year_dir = out_dir / str(year)
    private_dir(year_dir)
    staging = year_dir / f".staging-{run_id}"
    staging.mkdir(mode=0o700)
    return Staged(year_dir, staging, regions)


def private_dir(path: Path) -> None:
    """Create PATH (and parents) readable by the owner only; an existing directory is left as it is."""
    if not path.is_dir():
        path.mkdir(parents=True, mode=0o700)
        path.chmod(0o700)


def clean_staging(out_dir: Path, keep: set[Path]) -> list[Path]:
    """Remove staging directories of runs killed before their state committed; returns what went."""
    gone = []
    for staging in sorted(out_dir.glob("*/.staging-*")):
        if staging.resolve() in keep or not staging.is_dir():
            continue
        shutil.rmtree(staging)
        gone.append(staging)
        if not any(staging.parent.iterdir()):
            staging.parent.rmdir()
    return gone


@contextmanager
def private_files():
    """Files and directories this process creates are its owner's only (umask 077) while inside."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def write_manifest(path: Path, manifest: dict) -> None:
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")


def read_manifest(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
