"""``disburse verify OUT/Y``: is every file of a year as its run wrote it, and does the state still agree?

Three records of a run are compared: the files, the manifest (sha256 and rows of
every file, totals) and the state (its rows, with a digest per (year, region)).
A file whose hash differs is named; for the finance files each line that no
longer matches the state is named (by ledger ids, never by amount or name); a
state whose rows no longer match their digest has each changed line named
against the run's audit_lines.parquet.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from disburse import outputs, state
from disburse.money import yuan_text
from disburse.state import StateError

KEY = ["applicant_id", "clause_id", "matter_id", "year_of_matter", "installment"]


def _key_text(row: dict, cols: list[str]) -> str:
    return ", ".join(f"{c} {row[c]}" for c in cols)


def _compare(file_df: pl.DataFrame, state_df: pl.DataFrame, key: list[str], value: str) -> list[tuple[str, dict]]:
    """(what, row) for rows only in the file, only in the state, or with a different VALUE (text)."""
    j = file_df.join(state_df, on=key, how="full", suffix="_state", coalesce=True, nulls_equal=True)
    found = []
    for row in j.filter(pl.col("_line").is_null() | pl.col("_in_state").is_null()
                        | (pl.col(value) != pl.col(f"{value}_state"))).sort("_line", nulls_last=True).iter_rows(named=True):
        if row["_line"] is None:
            found.append(("missing", row))
        elif row["_in_state"] is None:
            found.append(("extra", row))
        else:
            found.append(("differs", row))
    return found


def _csv(path: Path) -> pl.DataFrame:
    df = pl.read_csv(path, infer_schema=False)
    return df.with_row_index("_line", offset=2)


def input_notes(manifest: dict) -> list[str]:
    """The ledgers the run read, against the manifest: a file or sheet changed since (or gone) is named.

    Not a problem of the outputs (a bureau keeps all years in one set and adds rows): a note that the
    year's payments were computed from the ledger as it was; rerun the year to pay from it as it is now.
    A workbook that changed is read again to tell whether the run's sheet itself changed."""
    from disburse.ledgers import LEDGERS, InputError, Source, read_raw

    notes = []
    for name, doc in sorted(manifest.get("inputs", {}).items()):
        if not isinstance(doc, dict) or not doc.get("file"):
            continue
        path = Path(doc["file"])
        sheet = doc.get("sheet")
        where = f"{path}（工作表 {sheet}）" if sheet else str(path)
        if not path.is_file():
            notes.append(f"台账 {name}：{where} 已不在原处（本年度按运行时读取的内容计算）")
            continue
        if outputs.sha256(path) == doc.get("sha256"):
            continue
        if sheet and name in LEDGERS:
            try:
                same = read_raw(Source(path, sheet), LEDGERS[name]).sheet_sha256 == doc.get("sheet_sha256")
            except InputError:
                same = False
            if same:
                continue  # another sheet of the workbook changed; this ledger reads as it did
        notes.append(f"台账 {name}：{where} 在本次运行之后有改动（本年度的付款按运行时的内容计算；"
                     f"要按现在的内容支付，请重新运行该年度）")
    return notes


def verify_year(year_dir: Path, state_path: Path) -> tuple[list[str], int]:
    """Every problem found, one line each (empty: all as written), and the number of files checked."""
    manifest_path = year_dir / "manifest.json"
    if not manifest_path.is_file():
        raise StateError(f"{year_dir}: no manifest.json, so no run's outputs to verify")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        year, run_of = int(manifest["year"]), {r: d["run_id"] for r, d in manifest["regions"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise StateError(f"{manifest_path}: not a manifest this job wrote (changed since?)") from None
    problems: list[str] = []
    expected = {"rejected.csv": manifest.get("rejected_without_region", {})}
    for region, d in manifest["regions"].items():
        expected |= d.get("outputs", {})
    changed: set[str] = set()
    for rel, doc in sorted(expected.items()):
        f = year_dir / rel
        if not f.is_file():
            problems.append(f"{rel}: missing (the manifest lists it)")
            changed.add(rel)
        elif outputs.sha256(f) != doc.get("sha256"):
            problems.append(f"{rel}: changed since the run that wrote it (sha256 differs from the manifest)")
            changed.add(rel)
        elif rel.endswith(".csv") and _csv(f).height != doc.get("rows"):
            problems.append(f"{rel}: row count differs from the manifest")
    for f in sorted(year_dir.rglob("*")):
        rel = str(f.relative_to(year_dir))
        parts = Path(rel).parts
        kept = len(parts) > 2 and parts[1] == "runs" or parts[1:] in (("adjustments.csv",), ("adjustments.xlsx",))
        if f.is_file() and rel != "manifest.json" and rel not in expected and not rel.startswith(".staging-") and not kept:
            problems.append(f"{rel}: not in the manifest")

    con = state.connect(state_path, read_only=True)
    try:
        records = state.run_records(con, year)
        approvals = state.approved_regions(con, year)
        for region in sorted(manifest["regions"]):
            problems += _region(con, year_dir, year, region, manifest["regions"][region], records.get(region), changed)
            said = (manifest["regions"][region].get("approval") or {}).get("run_id")
            if said and approvals.get(region) != said:
                problems.append(f"{region}: the manifest says run {said} was approved, the state records "
                                f"{'run ' + approvals[region] if region in approvals else 'no approval'}")
    finally:
        con.close()
    return problems, len(expected) + 1


def _region(con, year_dir: Path, year: int, region: str, doc: dict, rec: dict | None, changed: set[str]) -> list[str]:
    problems = []
    if rec is None:
        return [f"{region}: the state holds no record of {year} {region}"]
    if rec["run_id"] != doc["run_id"]:
        problems.append(f"{region}: the files are from run {doc['run_id']}, the state records run {rec['run_id']}")
    if rec["status"] != "done":
        problems.append(f"{region}: run {rec['run_id']} was interrupted while publishing; the next run finishes it")
    if not rec["intact"]:
        problems.append(f"state: the rows of {year} {region} changed since run {rec['run_id']} wrote them "
                        f"(digest differs)")
    if str(yuan_of(rec["total_payable_fen"])) != doc.get("total_payable") or rec["lines"] is None:
        problems.append(f"{region}: the total payable in the manifest differs from the state's record")
    recorded = state.recorded_lines(con, year, region).with_columns(pl.col("year_of_matter", "installment").cast(pl.Int64))
    paid = recorded.filter(pl.col("payable_fen") > 0).select(*KEY, yuan_text("payable_fen").alias("payable"),
                                                              pl.lit(True).alias("_in_state"))
    rel = f"{region}/disbursements.csv"
    if (year_dir / rel).is_file() and rel in changed:
        file_df = _csv(year_dir / rel).select("_line", *KEY[:3], pl.col("year_of_matter", "installment").cast(pl.Int64, strict=False),
                                              "payable")
        for what, row in _compare(file_df, paid, KEY, "payable"):
            ids = _key_text(row, KEY)
            if what == "missing":
                problems.append(f"{rel}: no line for {ids}, which the state records as paid")
            elif what == "extra":
                problems.append(f"{rel} line {row['_line']} ({ids}): not in the state's record")
            else:
                problems.append(f"{rel} line {row['_line']} ({ids}): payable differs from the state's record")
    rel = f"{region}/payments.csv"
    if (year_dir / rel).is_file() and rel in changed:
        totals = recorded.group_by("applicant_id").agg(pl.col("payable_fen").sum()).filter(pl.col("payable_fen") > 0)
        totals = totals.select("applicant_id", yuan_text("payable_fen").alias("total_payable"), pl.lit(True).alias("_in_state"))
        file_df = _csv(year_dir / rel).select("_line", "applicant_id", "total_payable")
        for what, row in _compare(file_df, totals, ["applicant_id"], "total_payable"):
            where = f"{rel} line {row['_line']}" if row["_line"] is not None else rel
            problems.append(f"{where} (applicant_id {row['applicant_id']}): "
                            + {"missing": "missing; the state records a payment",
                               "extra": "not in the state's record",
                               "differs": "total differs from the state's record"}[what])
    audit = year_dir / region / "audit_lines.parquet"
    if not rec["intact"] and audit.is_file() and f"{region}/audit_lines.parquet" not in changed:
        written = pl.read_parquet(audit).filter((pl.col("payable_fen") > 0) | (pl.col("award_fen") > 0)).select(
            *KEY[:3], pl.col("year_of_matter", "installment").cast(pl.Int64), pl.col("payable_fen").cast(pl.Int64).alias("payable"))
        written = written.with_row_index("_line")
        now = recorded.select(*KEY, pl.col("payable_fen").cast(pl.Int64).alias("payable"), pl.lit(True).alias("_in_state"))
        for what, row in _compare(written, now, KEY, "payable"):
            ids = _key_text(row, KEY)
            problems.append(f"state: line {year} {region} ({ids}): " + {
                "missing": "added since the run", "extra": "removed since the run",
                "differs": "payable changed since the run"}[what])
    return problems


def yuan_of(fen: int | None):
    from disburse.money import fen_to_decimal

    return fen_to_decimal(int(fen or 0))
