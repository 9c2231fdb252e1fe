"""The stages of a yearly run as plain functions: ingest, check, compute, publish.

``flows.annual`` runs them as Prefect tasks; tests call them directly. A stage
that cannot proceed raises a ``JobError`` subclass whose message is one line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import polars as pl

from disburse import killpoint, outputs, paths, phrases, state
from disburse.compiled import Compiled, compile_catalogue
from disburse.money import fen_to_decimal, total_fen
from disburse.ledgers import LEDGER_ORDER, LEDGERS, InputError, check_ledgers_dir, read_ledgers
from disburse.phrases import REJECTIONS
from disburse.params import ParamError, Params, load_params, policy_windows
from disburse.rules import FROM_HISTORY_KINDS, Catalogue, RuleError, load_catalogue, region_names
from disburse.state import StateError
from transforms.region import RegionResult, compute_region
from transforms.validate import Validated, validate

EXPLAINED = "说明"  # the rejected line's reason in Chinese

JOB_ERRORS = (InputError, RuleError, ParamError, StateError)
WRITERS = 2  # parts of regions' files written at once while publishing (outputs.region_writers)
DEFAULT_RULES = paths.RULES


@dataclass
class Inputs:
    catalogue: Catalogue
    compiled: Compiled  # the catalogue and the parameters as the transforms read them, made once per run
    params: Params
    raw: dict[str, pl.DataFrame]
    files: dict[str, Path | None]
    encodings: dict[str, str | None]  # each file's text encoding: utf-8, utf-8-sig (with BOM), gb18030
    sheets: dict[str, tuple[str, str] | None] = field(default_factory=dict)  # a spreadsheet's sheet and its digest


def ingest(ledgers_dir: Path, rules_dir: Path | None = None, params_file: Path | None = None) -> Inputs:
    killpoint.reached("ingest")
    cat = load_catalogue(rules_dir or DEFAULT_RULES)
    params = load_params(params_file, cat)
    read = read_ledgers(ledgers_dir)
    return Inputs(cat, compile_catalogue(cat, params), params, read.frames, read.files, read.encodings, read.sheets)


def choose_regions(cat: Catalogue, region: str | None) -> list[str]:
    if region is None:
        return cat.regions
    if region not in cat.policies:
        raise InputError(f"--region {region}: unknown region (known: {', '.join(cat.regions)})")
    return [region]


def check(inputs: Inputs) -> Validated:
    """Validate, the accepted rows split by region as they are checked. It consumes the rows as read: ``inputs.raw`` is
    emptied (their counts and the applicants' regions kept on the result), so the rest of the run holds
    the ledgers once, typed."""
    killpoint.reached("validate")
    cat = inputs.catalogue
    rate_ranges = {cid: r.approved_rate_range for cid, r in cat.rules.items() if r.approved_rate_range}
    counts = {cid: len(r.installments or [1]) for cid, r in cat.rules.items()}
    names = region_names(cat)
    checked = validate(inputs.raw, cat.regions, cat.rules.keys(), rate_ranges, matter_ledgers=row_matter_ledgers(cat),
                       installment_counts=counts, region_zh=names)
    checked.rows_read = {name: df.height for name, df in inputs.raw.items()}
    region = pl.col("region").replace({z: r for r, z in names.items()})
    checked.applicant_regions = (  # as read, so a rejected applicant's rejected rows still find their region
        inputs.raw["applicants"].with_columns(region).filter(pl.col("region").is_in(cat.regions))
        .group_by("applicant_id").agg(pl.col("region").first())
    )
    checked.rejected = with_sources(checked.rejected, inputs)
    inputs.raw = {}
    return checked


def row_matter_ledgers(cat: Catalogue) -> dict[str, str]:
    """Clause -> ledger, for the clauses that pay on a ledger row: their matter_id is that row's id."""
    return {cid: r.base.ledger for cid, r in cat.rules.items()
            if r.base is not None and r.base.ledger != "recognitions" and r.base.per == "row"
            and r.kind not in FROM_HISTORY_KINDS}


@dataclass
class PaidBefore:
    """What years before this one paid (state and prior_payments) and what clawbacks recovered."""
    history: pl.DataFrame
    recovered: pl.DataFrame


def paid_before(con, inputs: Inputs, checked: Validated, year: int, state_path: Path | None = None) -> PaidBefore:
    """Read once per run, after checking the rows read are as their runs wrote them; every region's
    computation takes its own clauses from it. A payment already made is never dropped: a rejected
    prior payment, or a rejected applicant row of an applicant paid before, stops the run here
    (``refuse_lost_payments``)."""
    killpoint.reached("compute")
    state.check_recorded(con, state_path or Path("state"), before=year)
    history = state.history(con, checked.accepted["prior_payments"], year, inputs.compiled.tables["shares"])
    refuse_lost_payments(inputs, checked, history)
    return PaidBefore(history, state.recovered(con, year))


def _fault_text(path: Path | None, ledger: str, fault: dict) -> str:
    """One rejected row as a person reads it: file, row, column, the fault in words and its code
    (never the value: it may be an amount)."""
    code = fault["reason"].split(":")[0]
    column = f" {fault['column']}" if fault["column"] else ""
    return f"{path or ledger} 第 {fault['row']} 行{column}：{REJECTIONS.get(code, code)}（{code}）"


def refuse_lost_payments(inputs: Inputs, checked: Validated, history: pl.DataFrame) -> None:
    """Stop the run on a row whose loss would pay money again or lose money owed back (docs/reliability.md):

    - a ``prior_payments`` row that failed validation (``Ledger.stops_the_run``): left out, the payment it
      records would be paid a second time (a ladder's level-up, a cumulative cap, a one-off award);
    - an ``applicants`` row that failed validation whose applicant id was paid before (state or
      prior_payments): left out, its installments due this year and a clawback due this year would be
      lost for good, not merely paid late. An applicant never paid only loses this year's lines.
    A total row (``total_row``) stops nothing. One line: the first such row and how many more."""
    rejected = checked.rejected
    ids_paid = pl.concat([history.select("applicant_id"),
                          rejected.filter(pl.col("ledger") == "prior_payments").select("applicant_id")])
    stops = rejected.filter(
        pl.col("ledger").is_in([n for n, led in LEDGERS.items() if led.stops_the_run])
        | ((pl.col("ledger") == "applicants") & pl.col("applicant_id").is_in(ids_paid["applicant_id"].implode()))
    )
    # a total row (合计) of a ledger kept as a spreadsheet is no payment: rejected, never summed, not a stop
    totals = rejected.filter(pl.col("reason").str.starts_with("total_row")).select("ledger", "row")
    stops = stops.join(totals, on=["ledger", "row"], how="anti")
    if stops.is_empty():
        return
    order = {name: i for i, name in enumerate(LEDGER_ORDER)}
    stops = stops.with_columns(pl.col("ledger").replace_strict(order, return_dtype=pl.Int64).alias("_order")) \
        .sort("_order", "row", maintain_order=True)
    first = stops.row(0, named=True)
    rows = stops.select("ledger", "row").unique().height
    why = ("历史兑付记录的是已付款项，不能舍弃，否则将重复支付" if first["ledger"] != "applicants"
           else "该申报主体以往已获支付，舍弃此行将遗漏其应付分期或应追回的资金")
    more = f"；另有 {rows - 1} 行同样无法读取" if rows > 1 else ""
    raise InputError(f"{_fault_text(inputs.files.get(first['ledger']), first['ledger'], first)}。{why}，"
                     f"本次运行停止：请更正后重新运行{more}")


def compute(inputs: Inputs, checked: Validated, paid: PaidBefore, year: int, region: str) -> RegionResult:
    mine = checked.by_region.get(region)
    return compute_region(checked.accepted if mine is None else mine, inputs.compiled.regions[region],
                          paid.history, paid.recovered, year, of_region=mine is not None)


def with_sources(rejected: pl.DataFrame, inputs: Inputs) -> pl.DataFrame:
    """Rejected lines with the file and sheet each row was read from, and the reason in Chinese (说明)."""
    sources = pl.DataFrame({
        "ledger": list(inputs.files),
        "file": [p.name if p else None for p in inputs.files.values()],
        "sheet": [(inputs.sheets.get(n) or (None,))[0] for n in inputs.files],
    }, schema={"ledger": pl.String, "file": pl.String, "sheet": pl.String})
    out = rejected.join(sources, on="ledger", how="left", maintain_order="left")
    out = out.with_columns(phrases.rejection_expr("reason").alias(EXPLAINED))
    return out.select("ledger", "file", "sheet", "row", "column", "value", "reason", EXPLAINED,
                      *[c for c in rejected.columns if c not in ("ledger", "row", "column", "value", "reason")])


def rejected_by_region(checked: Validated) -> pl.DataFrame:
    """Each rejected line with the region of the applicant it names (null: no known applicant)."""
    return checked.rejected.join(checked.applicant_regions, on="applicant_id", how="left")


def publish(inputs: Inputs, checked: Validated, results: list[RegionResult], con, *, year: int, out_dir: Path,
            run_id: str, started: dt.datetime, gaps: dict[str, list[int]] | None = None,
            stale: dict[str, list[int]] | None = None) -> dict:
    """Write every file to staging, commit the state with the run pending, move the files in, mark it done.

    A kill before the commit leaves the previous files and state (the next run
    removes the staging directory); a kill after it leaves the run pending, and
    the next run moves the rest of its files in (``recover``) before anything else.
    """
    killpoint.reached("publish")
    regions = [r.region for r in results]
    approved = state.approved_regions(con, year)
    replaced = {r: rec["run_id"] for r, rec in state.run_records(con, year).items() if r in regions and r not in approved}
    staged = outputs.stage(out_dir, year, run_id, regions)
    try:
        rejected = rejected_by_region(checked)
        run = outputs.RunInfo(run_id, inputs.catalogue.fingerprint, inputs.params.fingerprint,
                              date=(started + dt.timedelta(hours=8)).date().isoformat(),  # China's day (UTC+8)
                              public_notice=inputs.params.public_notice)
        adjusted: dict[str, pl.DataFrame] = {}
        for res in results:
            if res.region in approved:  # signed off: its files and lines stay; the differences go to finance
                adjusted[res.region] = state.adjustments(con, year, res.region, res.lines)
                live = out_dir / str(year) / res.region / "audit_lines.parquet"
                outputs.write_adjustments(adjusted[res.region], staged.region_dir(res.region), year=year,
                                          region=res.region, approved_run=approved[res.region], run_id=run_id,
                                          recomputed_lines=res.lines,
                                          approved_lines=pl.read_parquet(live) if live.is_file() else None)
            elif res.region in replaced:
                outputs.note_replaced(staged, res.region, replaced[res.region])

        writing = sorted((res for res in results if res.region not in approved), key=lambda res: -res.lines.height)
        parts = [(res.region, part) for res in writing for part in outputs.region_writers(
            res, rejected.filter(pl.col("region") == res.region).drop("region", "applicant_id"), year,
            staged.region_dir(res.region),
            dataclasses.replace(run, gaps_allowed=tuple((gaps or {}).get(res.region, ()))),
            previous=outputs.previous_year(out_dir / str(year - 1) / res.region))]
        # Every part writes its own files (compression, file writes and polars release the GIL): WRITERS at
        # once, the largest regions' first. The files never depend on the order; each part counts its
        # own files, and the manifest lists them sorted.
        counts: dict[str, dict[str, int]] = {res.region: {} for res in writing}
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:
            for region, written in pool.map(lambda p: (p[0], p[1]()), parts):
                counts[region] |= written
        # The state's rows go in, uncommitted, while the files are hashed and flushed to disk (measured: no
        # gain while the files are still being written, both cores are busy then); the commit waits for
        # both, so the state still commits only once every file is staged and on disk.
        con.begin()
        try:
            stop = threading.Event()
            recorder = ThreadPoolExecutor(max_workers=1)
            recorded = recorder.submit(record_run, con, inputs, results, adjusted, approved, year=year,
                                       run_id=run_id, gaps=gaps, stop=stop)
            try:
                orphans = rejected.filter(pl.col("region").is_null()).drop("region", "applicant_id")
                outputs.write_csv(orphans, staged.staging / "rejected.csv")
                manifest = build_manifest(inputs, checked, [r for r in results if r.region not in approved],
                                          counts, staged, year=year, run_id=run_id, started=started,
                                          orphan_rows=orphans.height)
                # an approved region rerun before keeps its entry (adjustments.csv stays until its next rerun)
                earlier = {r: d for r, d in outputs.read_manifest(staged.year_dir / "manifest.json")
                           .get("adjustments", {}).items() if r in approved and r not in adjusted}
                if adjusted or earlier:
                    manifest["adjustments"] = dict(sorted({**earlier, **{
                        r: {"approved_run_id": approved[r], "file": f"{r}/adjustments.csv", "rows": df.height,
                            "difference": str(fen_to_decimal(int(df["difference_fen"].sum() or 0))),
                            **adjustment_totals(df), "run_id": run_id, "status": "pending"}
                        for r, df in adjusted.items()}}.items()))
                if replaced:  # the earlier run of the year each region replaces, its files kept in REGION/runs/RUN_ID
                    manifest["replaced_runs"] = dict(sorted(replaced.items()))
                if gaps:
                    manifest["gaps_allowed"] = {r: years for r, years in sorted(gaps.items())}
                if stale:
                    manifest["later_years_may_be_stale"] = {r: years for r, years in sorted(stale.items())}
                outputs.write_manifest(staged.staging / "manifest.json", manifest)
                if recorded.done():
                    recorded.result()  # the state failed: say so before flushing files that will not be used
                staged.seal()
            except BaseException:
                stop.set()
                raise
            finally:
                # The connection is the recorder's until it has stopped: a rollback before that would leave
                # its later statements committed one by one. So no interrupt cuts this wait short (one that
                # comes during it is raised after it, and the run rolls back).
                try:
                    _outlast(recorded)
                finally:
                    recorder.shutdown()
            recorded.result()
            killpoint.reached("staged")
            state.begin_publishing(con, state.Publishing(run_id, staged.year_dir, staged.staging, staged.names))
            con.commit()
        except BaseException:
            con.rollback()
            raise
    except BaseException:
        staged.discard()
        raise
    killpoint.reached("committed")
    move_in(con, staged, run_id)
    return manifest


def _outlast(future: Future) -> None:
    """Wait until FUTURE has finished, whatever interrupts the waiting (a second Ctrl-C, a termination);
    the first interrupt is raised once it has."""
    interrupted: BaseException | None = None
    while True:
        try:
            wait([future])
            break
        except BaseException as exc:  # noqa: BLE001 - raised below, once the wait is over
            interrupted = interrupted or exc
    if interrupted is not None:
        raise interrupted


def record_run(con, inputs: Inputs, results: list[RegionResult], adjusted: dict[str, pl.DataFrame],
               approved: dict[str, str], *, year: int, run_id: str, gaps: dict[str, list[int]] | None,
               stop: threading.Event | None = None) -> None:
    """Inside the caller's transaction: every region's lines, clawbacks and run record, pending (an approved
    region: its adjustments only). STOP set: it stops before the next region (the caller rolls back)."""
    for region, df in adjusted.items():
        state.record_adjustments(con, year=year, region=region, run_id=run_id, adjusted=df)
    for res in results:
        if stop is not None and stop.is_set():
            return
        if res.region in approved:
            continue
        state.record(con, year=year, region=res.region, run_id=run_id, rules_fp=inputs.catalogue.fingerprint,
                     params_fp=inputs.params.fingerprint, lines=res.lines, clawbacks=res.clawbacks,
                     status="pending", gaps_allowed=(gaps or {}).get(res.region))


def move_in(con, staged: outputs.Staged, run_id: str) -> None:
    """The second half of publishing: files into place, run marked done, staging removed."""
    try:
        staged.swap_in()
    except OSError as exc:
        raise StateError(f"run {run_id} is recorded but moving its files into {staged.year_dir} failed "
                         f"({exc.strerror or type(exc).__name__}); the next run finishes it") from None
    killpoint.reached("swapped")
    state.end_publishing(con, run_id)
    killpoint.reached("done")
    staged.discard()


def recover(con, out_dir: Path) -> None:
    """Finish every run killed while publishing, and remove staging left by runs killed before they committed."""
    for p in state.pending(con):
        staged = outputs.Staged(p.year_dir, p.staging, [n for n in p.names if n not in ("rejected.csv", "manifest.json")])
        if p.staging.is_dir():
            move_in(con, staged, p.run_id)
        else:  # its staged files are gone: the run stays pending, and `disburse verify` says so
            state.end_publishing(con, p.run_id, done=False)
    outputs.clean_staging(out_dir, set())


def find_gaps(con, inputs: Inputs, checked: Validated, year: int, regions: list[str]) -> dict[str, list[int]]:
    """Per region, the years before YEAR that were never run although there was something to pay.

    A gap is a year before YEAR with no run of the region in the state, while the
    accepted ledgers have rows of the region's applicants dated inside the
    region's policy window that year (a yearly figure: a year overlapping it) and
    prior_payments has no row of the region's applicants for that year.
    """
    run = state.years_run(con, regions)
    applicants = checked.accepted["applicants"].select("applicant_id", "region")
    prior = checked.accepted["prior_payments"].join(applicants, on="applicant_id").select("region", "year")
    gaps: dict[str, list[int]] = {}
    for region in regions:
        window = inputs.compiled.regions[region].window
        if window is None:
            continue  # a missing start parameter: the run stops on it where a line needs it
        start, end = window
        split = checked.by_region.get(region)  # the region's rows, split once by check (none: filter here)
        mine = None if split is not None else applicants.filter(pl.col("region") == region).select("applicant_id")
        years: set[int] = set()
        for name in LEDGER_ORDER:
            if name in ("applicants", "prior_payments"):
                continue
            df = checked.accepted[name] if split is None else split[name]
            if df.is_empty() or "year" not in df.columns:
                continue
            if split is None:
                df = df.join(mine, on="applicant_id", how="semi")
            df = df.filter(pl.col("year") < year)
            dated = LEDGERS[name].date_column
            inside = pl.col("year").is_between(start.year, end.year)
            if dated is not None:
                inside = pl.when(pl.col(dated).is_null()).then(inside) \
                    .otherwise(pl.col(dated).is_between(start, end) & (pl.col(dated).dt.year() == pl.col("year")))
            years |= set(df.filter(inside)["year"].unique().to_list())
        paid_before = set(prior.filter(pl.col("region") == region)["year"].to_list())
        missing = sorted(y for y in years - set(run[region]) - paid_before)
        if missing:
            gaps[region] = missing
    return gaps


def gap_error(year: int, gaps: dict[str, list[int]]) -> state.GapError:
    return state.GapError(f"--year {year}: earlier years were never run and the ledgers have rows for them "
                          f"({gap_list(gaps)}); run them first, from {first_gap(gaps)} on, or pass --allow-gaps",
                          year, gaps)


def gap_list(gaps: dict[str, list[int]]) -> str:
    """'jinan 2021, 2022; lingang 2023': the years never run, per region."""
    return "; ".join(f"{r} {', '.join(map(str, ys))}" for r, ys in sorted(gaps.items()))


def first_gap(gaps: dict[str, list[int]]) -> int:
    return min(y for ys in gaps.values() for y in ys)


def later_years(con, year: int, regions: list[str]) -> dict[str, list[int]]:
    """Years after YEAR already run, per region: their outputs may be stale once YEAR is rerun."""
    return {r: ys for r, ys in ((r, [y for y in yrs if y > year]) for r, yrs in state.years_run(con, regions).items()) if ys}


def stale_warning(year: int, later: dict[str, list[int]]) -> str:
    listed = "; ".join(f"{r} {', '.join(map(str, ys))}" for r, ys in sorted(later.items()))
    return (f"warning: later years were already run ({listed}); their outputs may now be stale: "
            f"rerun them in order after {year}")


def ledger_counts(checked: Validated) -> dict[str, dict[str, int]]:
    """Per ledger: rows read, rows accepted, rows rejected (a row with several faults counts once)."""
    rejected = checked.rejected.group_by("ledger").agg(pl.col("row").n_unique())
    rejected = dict(zip(rejected["ledger"], rejected["row"]))
    return {name: {"rows": checked.rows_read[name], "accepted": checked.accepted[name].height,
                   "rejected": rejected.get(name, 0)} for name in LEDGER_ORDER}


def build_manifest(inputs: Inputs, checked: Validated, results: list[RegionResult], counts: dict, staged,
                   *, year: int, run_id: str, started: dt.datetime, orphan_rows: int) -> dict:
    """Run id, fingerprints, every input and output file with sha256 and rows, totals.

    A run for one region keeps the other regions' entries of the previous manifest.
    """
    previous = outputs.read_manifest(staged.year_dir / "manifest.json")
    digest = outputs.sha256_all(  # every file hashed up front, WRITERS at a time (hashlib releases the GIL)
        list(dict.fromkeys(p for p in inputs.files.values() if p)) + [staged.staging / "rejected.csv"]
        + [staged.region_dir(res.region) / name for res in results for name in counts[res.region]], WRITERS)
    inputs_doc = {}
    for name, counts_of in ledger_counts(checked).items():
        path = inputs.files[name]
        sheet = inputs.sheets.get(name)
        inputs_doc[name] = {
            "file": str(path) if path else None,
            "sha256": digest[path] if path else None,
            "encoding": inputs.encodings.get(name),
            **({"sheet": sheet[0], "sheet_sha256": sheet[1]} if sheet else {}),
            **counts_of,
            "balanced": counts_of["rows"] == counts_of["accepted"] + counts_of["rejected"],
        }
    regions_doc = dict(previous.get("regions", {}))
    for res in results:
        d = staged.region_dir(res.region)
        regions_doc[res.region] = {
            "run_id": run_id,
            "name_zh": res.region_zh,
            "lines": res.lines.height,
            "payable_lines": res.disbursements.height,
            "total_payable": str(fen_to_decimal(total_fen(res.lines["payable_fen"]))),
            "total_clawback": str(fen_to_decimal(total_fen(res.clawbacks["amount_fen"]))),
            **({"budgets": budget_facts(res.budgets)} if not res.budgets.is_empty() else {}),
            "outputs": {f"{res.region}/{name}": {"sha256": digest[d / name], "rows": rows}
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
                                    "sha256": digest[staged.staging / "rejected.csv"]},
        "regions": dict(sorted(regions_doc.items())),
        "total_payable": str(total),
    }


def adjustment_totals(adjusted: pl.DataFrame) -> dict:
    """An approved region's proposed adjustments for the manifest: how many to pay and to recover, and their
    totals (yuan, the recovery positive)."""
    d = adjusted["difference_fen"].cast(pl.Int128)
    return {"pay_rows": int((d > 0).sum()), "pay": str(fen_to_decimal(int(d.filter(d > 0).sum() or 0))),
            "recover_rows": int((d < 0).sum()), "recover": str(fen_to_decimal(-int(d.filter(d < 0).sum() or 0)))}


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


def compute_each(inputs: Inputs, checked: Validated, paid: PaidBefore, year: int, regions: list[str]) -> list[RegionResult]:
    """Every region's computation, one after another, in the order of REGIONS."""
    return [compute(inputs, for_region(checked, r), paid, year, r) for r in regions]


def for_region(checked: Validated, region: str) -> Validated:
    """What one region's computation needs of the checked ledgers: its own rows (a task sent to another
    process carries only these)."""
    if region not in checked.by_region:
        return checked
    return dataclasses.replace(checked, accepted={}, by_region={region: checked.by_region[region]},
                               rejected=checked.rejected.clear(), applicant_regions=None)


@dataclass(frozen=True)
class Steps:
    """The callables a runner gives ``sequence`` for its stages: these plain functions by default; the
    Prefect flow gives its tasks (``flows.annual``), whose compute_regions runs the regions concurrently."""
    ingest: Callable = ingest
    check: Callable = check
    paid_before: Callable = paid_before
    compute_regions: Callable = compute_each
    publish: Callable = publish


def sequence(steps: Steps, ledgers_dir: Path, out_dir: Path, year: int, *, region: str | None = None,
             rules_dir: Path | None = None, params_file: Path | None = None, state_file: Path | None = None,
             allow_gaps: bool = False, run_id: str | None = None,
             clock: StageClock | None = None) -> tuple[dict, list[RegionResult]]:
    """The stages of a yearly run, in order, written once: the flow, ``run_year`` and the benchmark run
    this. CLOCK, if given, collects seconds per stage (ingest, validate, compute, write)."""
    started = dt.datetime.now(dt.timezone.utc)
    run_id = run_id or new_run_id()
    state_path = state_file or out_dir / "state.duckdb"
    timed = clock if clock is not None else StageClock()
    with state.held(state_path, run_id):
        inputs = timed("ingest", steps.ingest, ledgers_dir, rules_dir, params_file)
        regions = choose_regions(inputs.catalogue, region)
        checked = timed("validate", steps.check, inputs)
        with state.opened(state_path, run_id) as con:
            recover(con, out_dir)
            paid = timed("compute", steps.paid_before, con, inputs, checked, year, state_path)
            gaps = find_gaps(con, inputs, checked, year, regions)
            if gaps and not allow_gaps:
                raise gap_error(year, gaps)
            results = timed("compute", steps.compute_regions, inputs, checked, paid, year, regions)
            manifest = timed("write", steps.publish, inputs, checked, results, con, year=year, out_dir=out_dir,
                             run_id=run_id, started=started, gaps=gaps, stale=later_years(con, year, regions))
    return manifest, results


def run_year(ledgers_dir: Path, out_dir: Path, year: int, *, region: str | None = None, rules_dir: Path | None = None,
             params_file: Path | None = None, state_file: Path | None = None, allow_gaps: bool = False,
             run_id: str | None = None) -> tuple[dict, list[RegionResult]]:
    """The whole run without Prefect (tests, library use): ``sequence`` with the plain stages."""
    with outputs.private_files():
        return sequence(Steps(), ledgers_dir, out_dir, year, region=region, rules_dir=rules_dir,
                        params_file=params_file, state_file=state_file, allow_gaps=allow_gaps, run_id=run_id)


@dataclass
class Ready:
    """What the preflight found: the run id holding the state, and warnings to print."""
    run_id: str
    state_path: Path | None
    warnings: list[str]

    def release(self) -> None:
        if self.state_path is not None:
            state.release(self.state_path, self.run_id)


def parse_year(text: str) -> int:
    if not re.fullmatch(r"[12]\d{3}", text.strip()):
        raise InputError(f"--year {text}: not a year (expected four digits, e.g. 2022)")
    return int(text)


def preflight(ledgers_dir: Path, rules_dir: Path | None, params_file: Path | None, region: str | None,
              *, year: int | None = None, out_dir: Path | None = None, state_file: Path | None = None) -> Ready:
    """The checks that cost nothing, made before the flow starts: fail in a second, not after start-up.

    It takes the state for this run (another run's hold is refused with its run id)
    before any ledger is read, and checks the state file can be used.
    """
    cat = load_catalogue(rules_dir or DEFAULT_RULES)
    params = load_params(params_file, cat)
    check_ledgers_dir(ledgers_dir)
    regions = choose_regions(cat, region)
    warnings: list[str] = []
    if year is None or out_dir is None:  # no run yet (disburse serve): the inputs only
        return Ready(new_run_id(), None, warnings)
    windows = [w for w in policy_windows(cat, params).values() if w is not None]
    if windows and not any(start.year <= year <= end.year for start, end in windows):
        first, last = min(w[0].year for w in windows), max(w[1].year for w in windows)
        warnings.append(f"warning: --year {year} is outside every policy window ({first}-{last}); "
                        f"nothing will be payable")
    run_id = new_run_id()
    state_path = state_file or out_dir / "state.duckdb"
    state.acquire(state_path, run_id)
    try:
        if state_path.exists():
            try:
                con = state.connect(state_path, read_only=True)
            except StateError as exc:
                if "older schema" not in str(exc):
                    raise
                con = None  # the run migrates it
            if con is not None:
                try:
                    later = later_years(con, year, regions)
                finally:
                    con.close()
                if later:
                    warnings.append(stale_warning(year, later))
    except BaseException:
        state.release(state_path, run_id)
        raise
    return Ready(run_id, state_path, warnings)


class InternalError(Exception):
    """A fault of ours, told without the data it was handling: its type and a redacted first line."""


def redact(text: str) -> str:
    """The first line of TEXT with every quoted value, number and non-ASCII run replaced by '…'.

    Identifiers in quotes (column names, clause ids) stay: they name, they carry no data.
    """
    first = text.strip().splitlines()[0] if text.strip() else ""
    first = re.sub(r"'[^']*'|\"[^\"]*\"",
                   lambda m: m.group(0) if re.fullmatch(r"""(['"])[A-Za-z_][\w.]*\1""", m.group(0)) else "'…'", first)
    first = re.sub(r"[^\x00-\x7f]+", "…", first)
    return re.sub(r"(?<![A-Za-z_.])\d[\d,.:_-]*", "…", first)


def internal(exc: BaseException) -> InternalError:
    if isinstance(exc, InternalError):
        return exc
    message = redact(str(exc))
    return InternalError(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


def quietly(fn):
    """FN with any fault of ours replaced by an InternalError that carries no ledger data.

    Prefect logs and stores a task's exception; this keeps money and names out of
    both. DISBURSE_DEBUG=1 lets the original through, traceback and all.
    """
    import functools
    import os

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if os.environ.get("DISBURSE_DEBUG"):
                raise
            clean = exc if isinstance(exc, JOB_ERRORS) else internal(exc)
        # Raised outside the handler, without the frames it came through and with no chained
        # exception: Prefect keeps the exception in the run's state, and those frames would
        # keep DuckDB handles alive past the end of the run ("nanobind: leaked ..." at exit).
        clean.__traceback__ = clean.__context__ = clean.__cause__ = None
        raise clean

    return wrapped
