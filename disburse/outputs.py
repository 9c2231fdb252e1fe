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
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from disburse.money import fen_to_yuan_expr, fmt_fen, fmt_fen_expr, rate_text, yuan_text
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


def payments_frame(result: RegionResult) -> pl.DataFrame:
    return result.payments.select("applicant_id", "applicant_name", yuan_text("total_payable_fen").alias("total_payable"))


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


_env = Environment(loader=PackageLoader("disburse", "templates"), autoescape=select_autoescape())


def write_region(result: RegionResult, rejected: pl.DataFrame, year: int, directory: Path) -> dict[str, int]:
    """All of one region's files into DIRECTORY; returns row counts by file name."""
    directory.mkdir(parents=True)
    frames = {
        "disbursements.csv": disbursement_frame(result, as_text=True),
        "payments.csv": payments_frame(result),
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
    (directory / "audit.html").write_text(render_audit(result, year), encoding="utf-8")
    counts = {name: df.height for name, df in frames.items()}
    counts |= {"disbursements.parquet": frames["disbursements.csv"].height, "audit_lines.parquet": result.lines.height}
    return counts


def clause_totals(lines: pl.DataFrame) -> pl.DataFrame:
    return (
        lines.group_by("clause_id", "clause_title", "article")
        .agg(pl.len().alias("lines"), (pl.col("payable_fen") > 0).sum().alias("paid_lines"),
             pl.col("gross_fen").sum().alias("gross_fen"), pl.col("payable_fen").sum().alias("payable_fen"))
        .sort("clause_id")
    )


def _html(col: str | pl.Expr) -> pl.Expr:
    """Text escaped for HTML, vectorised."""
    e = pl.col(col) if isinstance(col, str) else col
    e = e.cast(pl.String).fill_null("")
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;")):
        e = e.str.replace_all(char, entity, literal=True)
    return e


def audit_rows(lines: pl.DataFrame) -> str:
    """One <tr> per line, built with polars string expressions (no Python loop over lines)."""
    if lines.is_empty():
        return ""
    row = pl.format(
        '<tr class="{}"><td>{}<br><small>{}</small></td><td>{}<br><small>{} ({})</small></td><td>{}</td>'
        '<td class="num">{}/{}</td><td class="num">{}</td><td class="steps">{}</td><td class="steps">{}</td></tr>',
        pl.when(pl.col("payable_fen") == 0).then(pl.lit("zero")).otherwise(pl.lit("")),
        _html("applicant_name"), _html("applicant_id"), _html("clause_id"), _html("clause_title"), _html("article"),
        _html("matter_id"), pl.col("installment"), pl.col("installments"), fmt_fen_expr(pl.col("payable_fen")),
        _html("steps"), _html("reasons"),
    )
    ordered = lines.sort("applicant_id", "clause_id", "matter_id", "installment")
    return ordered.select(row.str.join("\n")).item()


def render_audit(result: RegionResult, year: int) -> str:
    return _env.get_template("audit.html.j2").render(
        region=result.region, year=year, fmt=fmt_fen,
        totals=clause_totals(result.lines).to_dicts(),
        total_payable=int(result.lines["payable_fen"].sum() or 0),
        total_clawback=int(result.clawbacks["amount_fen"].sum() or 0),
        line_rows=Markup(audit_rows(result.lines)), clawbacks=result.clawbacks.to_dicts(),
    )


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
