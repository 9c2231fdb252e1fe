"""The stages of a yearly run as plain functions: ingest, check, compute, publish.

``flows.annual`` runs them as Prefect tasks; tests call them directly. A stage
that cannot proceed raises a ``JobError`` subclass whose message is one line.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from decimal import Decimal
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from disburse import outputs, paths, state
from disburse.money import fen_to_decimal, total_fen
from disburse.ledgers import LEDGER_ORDER, InputError, check_ledgers_dir, read_ledgers
from disburse.params import ParamError, Params, load_params, policy_windows
from disburse.rules import Catalogue, RuleError, compile_tables, load_catalogue
from disburse.state import StateError
from transforms.region import RegionResult, compute_region
from transforms.validate import Validated, validate

JOB_ERRORS = (InputError, RuleError, ParamError, StateError)
DEFAULT_RULES = paths.RULES


@dataclass
class Inputs:
    catalogue: Catalogue
    tables: dict[str, pl.DataFrame]
    params: Params
    windows: dict
    raw: dict[str, pl.DataFrame]
    files: dict[str, Path | None]
    encodings: dict[str, str | None]  # each file's text encoding: utf-8, utf-8-sig (with BOM), gb18030


def ingest(ledgers_dir: Path, rules_dir: Path | None = None, params_file: Path | None = None) -> Inputs:
    cat = load_catalogue(rules_dir or DEFAULT_RULES)
    params = load_params(params_file, cat)
    raw, files, encodings = read_ledgers(ledgers_dir)
    return Inputs(cat, compile_tables(cat), params, policy_windows(cat, params), raw, files, encodings)


def choose_regions(cat: Catalogue, region: str | None) -> list[str]:
    if region is None:
        return cat.regions
    if region not in cat.policies:
        raise InputError(f"--region {region}: unknown region (known: {', '.join(cat.regions)})")
    return [region]


def check(inputs: Inputs) -> Validated:
    cat = inputs.catalogue
    rate_ranges = {cid: r.approved_rate_range for cid, r in cat.rules.items() if r.approved_rate_range}
    return validate(inputs.raw, cat.regions, cat.rules.keys(), rate_ranges, matter_ledgers=row_matter_ledgers(cat))


def row_matter_ledgers(cat: Catalogue) -> dict[str, str]:
    """Clause -> ledger, for the clauses that pay on a ledger row: their matter_id is that row's id."""
    return {cid: r.base.ledger for cid, r in cat.rules.items()
            if r.base is not None and r.base.ledger != "recognitions" and r.base.per == "row"
            and r.kind not in ("ladder", "first_reach", "growth")}


@dataclass
class PaidBefore:
    """What years before this one paid (state and prior_payments) and what clawbacks recovered."""
    history: pl.DataFrame
    recovered: pl.DataFrame


def paid_before(con, checked: Validated, year: int) -> PaidBefore:
    """Read once per run; every region's computation takes its own clauses from it."""
    return PaidBefore(state.history(con, checked.accepted["prior_payments"], year), state.recovered(con, year))


def compute(inputs: Inputs, checked: Validated, paid: PaidBefore, year: int, region: str) -> RegionResult:
    return compute_region(checked.accepted, inputs.catalogue, inputs.tables, inputs.params,
                          inputs.windows[region], paid.history, paid.recovered, year, region)


def rejected_by_region(inputs: Inputs, checked: Validated) -> pl.DataFrame:
    """Each rejected line with the region of the applicant it names (null: no known applicant)."""
    regions = (
        inputs.raw["applicants"].filter(pl.col("region").is_in(inputs.catalogue.regions))
        .group_by("applicant_id").agg(pl.col("region").first())
    )
    return checked.rejected.join(regions, on="applicant_id", how="left")


def publish(inputs: Inputs, checked: Validated, results: list[RegionResult], con, *, year: int, out_dir: Path,
            run_id: str, started: dt.datetime) -> dict:
    """Write every file, then record state and move the files in, all or nothing."""
    regions = [r.region for r in results]
    staged = outputs.stage(out_dir, year, run_id, regions)
    try:
        rejected = rejected_by_region(inputs, checked)
        run = outputs.RunInfo(run_id, inputs.catalogue.fingerprint, inputs.params.fingerprint)
        counts = {}
        for res in results:
            mine = rejected.filter(pl.col("region") == res.region).drop("region", "applicant_id")
            counts[res.region] = outputs.write_region(
                res, mine, year, staged.region_dir(res.region), run,
                previous=outputs.previous_year(out_dir / str(year - 1) / res.region))
        orphans = rejected.filter(pl.col("region").is_null()).drop("region", "applicant_id")
        outputs.write_csv(orphans, staged.staging / "rejected.csv")
        manifest = build_manifest(inputs, checked, results, counts, staged, year=year, run_id=run_id,
                                  started=started, orphan_rows=orphans.height)
        outputs.write_manifest(staged.staging / "manifest.json", manifest)
        con.begin()
        try:
            for res in results:
                state.record(con, year=year, region=res.region, run_id=run_id,
                             rules_fp=inputs.catalogue.fingerprint, params_fp=inputs.params.fingerprint,
                             lines=res.lines, clawbacks=res.clawbacks)
            staged.swap_in()
            con.commit()
        except BaseException:
            con.rollback()
            staged.restore()
            raise
    finally:
        staged.discard()
    return manifest


def ledger_counts(inputs: Inputs, checked: Validated) -> dict[str, dict[str, int]]:
    """Per ledger: rows read, rows accepted, rows rejected (a row with several faults counts once)."""
    rejected = checked.rejected.group_by("ledger").agg(pl.col("row").n_unique())
    rejected = dict(zip(rejected["ledger"], rejected["row"]))
    return {name: {"rows": inputs.raw[name].height, "accepted": checked.accepted[name].height,
                   "rejected": rejected.get(name, 0)} for name in LEDGER_ORDER}


def build_manifest(inputs: Inputs, checked: Validated, results: list[RegionResult], counts: dict, staged,
                   *, year: int, run_id: str, started: dt.datetime, orphan_rows: int) -> dict:
    """Run id, fingerprints, every input and output file with sha256 and rows, totals.

    A run for one region keeps the other regions' entries of the previous manifest.
    """
    previous = outputs.read_manifest(staged.year_dir / "manifest.json")
    inputs_doc = {}
    for name, counts_of in ledger_counts(inputs, checked).items():
        path = inputs.files[name]
        inputs_doc[name] = {
            "file": str(path) if path else None,
            "sha256": outputs.sha256(path) if path else None,
            "encoding": inputs.encodings.get(name),
            **counts_of,
            "balanced": counts_of["rows"] == counts_of["accepted"] + counts_of["rejected"],
        }
    regions_doc = dict(previous.get("regions", {}))
    for res in results:
        d = staged.region_dir(res.region)
        regions_doc[res.region] = {
            "run_id": run_id,
            "lines": res.lines.height,
            "payable_lines": res.disbursements.height,
            "total_payable": str(fen_to_decimal(total_fen(res.lines["payable_fen"]))),
            "total_clawback": str(fen_to_decimal(total_fen(res.clawbacks["amount_fen"]))),
            **({"budgets": budget_facts(res.budgets)} if not res.budgets.is_empty() else {}),
            "outputs": {f"{res.region}/{name}": {"sha256": outputs.sha256(d / name), "rows": rows}
                        for name, rows in sorted(counts[res.region].items())},
        }
    total = sum(Decimal(r["total_payable"]) for r in regions_doc.values())
    return {
        "run_id": run_id,
        "year": year,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "regions_in_this_run": [r.region for r in results],
        "rules_fingerprint": inputs.catalogue.fingerprint,
        "params_fingerprint": inputs.params.fingerprint,
        "inputs": inputs_doc,
        "rejected_without_region": {"file": "rejected.csv", "rows": orphan_rows,
                                    "sha256": outputs.sha256(staged.staging / "rejected.csv")},
        "regions": dict(sorted(regions_doc.items())),
        "total_payable": str(total),
    }


def budget_facts(facts: pl.DataFrame) -> list[dict]:
    """The fund ceilings of a region's year for the manifest: ceiling, installments owed, uncut total,
    paid, the ratio of the cut (transforms.budget)."""
    money = ("budget_fen", "owed_fen", "uncut_fen", "paid_fen")
    return [{**{k.removesuffix("_fen"): str(fen_to_decimal(v)) if k in money else v for k, v in row.items()}}
            for row in facts.to_dicts()]


class StageClock(dict):
    """Seconds per stage: ``clock("compute", fn, *args)`` runs fn and adds its time under "compute"."""

    def __call__(self, name: str, fn, *args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self[name] = self.get(name, 0.0) + time.perf_counter() - started


def new_run_id() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:8]


def run_year(ledgers_dir: Path, out_dir: Path, year: int, *, region: str | None = None, rules_dir: Path | None = None,
             params_file: Path | None = None, state_file: Path | None = None) -> tuple[dict, list[RegionResult]]:
    """The whole run without Prefect (tests, library use). Same stages, same order as the flow."""
    started = dt.datetime.now(dt.timezone.utc)
    inputs = ingest(ledgers_dir, rules_dir, params_file)
    regions = choose_regions(inputs.catalogue, region)
    checked = check(inputs)
    with state.opened(state_file or out_dir / "state.duckdb") as con:
        paid = paid_before(con, checked, year)
        results = [compute(inputs, checked, paid, year, r) for r in regions]
        manifest = publish(inputs, checked, results, con, year=year, out_dir=out_dir, run_id=new_run_id(), started=started)
    return manifest, results


def preflight(ledgers_dir: Path, rules_dir: Path | None, params_file: Path | None, region: str | None) -> None:
    """The checks that cost nothing, made before the flow starts: fail in a second, not after start-up."""
    cat = load_catalogue(rules_dir or DEFAULT_RULES)
    load_params(params_file, cat)
    check_ledgers_dir(ledgers_dir)
    choose_regions(cat, region)
