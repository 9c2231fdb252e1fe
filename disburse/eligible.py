"""免申即享: firms whose ledgers meet a recognition-only clause but who hold no recognition for it yet.

The same computation as a run, twice. First as the ledgers are; its lines
that stop only for want of a recognition (``ineligible:not_recognised``, every
condition before it met) are the clause's candidate matters: a ledger row, a
year's figures, a project of a category the clause pays. A level clause paid
per recognised matter (a lab) has a candidate too where the firm holds a
recognition of the same matter at a level the clause pays under another
clause of its region (a level reached elsewhere). Then the missing
recognitions are written as if the bureau had granted them, at the clause's
ceiling: no approved amount, the clause's rate (its maximum rate where it
gives only a maximum), its highest level for a level clause with no level
known, dated the matter's date (within the policy window) in the year; and the
year is computed again. A clause whose administrator parameters are missing
(or that is suspended) cannot say what it would pay and is left out, and so is
a matter dated before a dated parameter of its clause has its first value. The lines whose recognition was written so, and that
pay, are the list: ``amount_if_recognised`` is the line's payable, and
``net_difference`` what the firm would receive for the matter in addition to
what it is paid now (a matter already paid under a competing clause shows the
difference only; a line that would add nothing is left out).

Grain of the list: one row per applicant, clause and matter. ``basis`` is a code for scripts
(``conditions_met``: its conditions met, no recognition; ``recognised_under:<clause>``: the matter is
recognised at a level this clause pays, under that other clause); ``说明`` says the same in words.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import polars as pl

from disburse import job, state
from disburse.ledgers import RECOGNITION_LEVELS_ZH
from disburse.money import rate_to_ppm
from transforms.validate import Validated

NOT_RECOGNISED = "ineligible:not_recognised"
KEY = ["applicant_id", "clause_id", "matter_id"]
LIST_COLUMNS = [
    "applicant_id", "applicant_name", "region", "year", "clause_id", "clause_title", "article", "matter_id", "basis",
    "说明", "level", "approved_rate", "recognized_on", "amount_if_recognised", "net_difference", "competing_clauses", "steps",
]


def _level_zh(col: str) -> pl.Expr:
    return pl.col(col).replace_strict(RECOGNITION_LEVELS_ZH, default=pl.col(col), return_dtype=pl.String)


def _ceilings(inputs: job.Inputs, region: str) -> pl.DataFrame:
    """Per recognition clause of the region: the approved rate to assume (its maximum where it gives no rate)
    and the level to assume where none is known (the highest it pays)."""
    levels = inputs.compiled.tables["levels"]
    compiled = {c.clause_id: c for c in inputs.compiled.regions[region].clauses}
    rows = []
    for r in inputs.catalogue.rules_of(region):
        given = inputs.params.clauses.get(r.clause_id)
        # a clause whose administrator parameter is missing cannot say what it would pay: not listed
        if not r.recognition or compiled[r.clause_id].missing or compiled[r.clause_id].suspended:
            continue
        has_rate = r.rate is not None or bool(r.size_rates) or (given is not None and given.rate is not None)
        top = levels.filter(pl.col("clause_id") == r.clause_id).sort("level_rank").tail(1)["level"].to_list()
        rows.append({"clause_id": r.clause_id,
                     "approved_rate": rate_to_ppm(r.max_rate) if r.max_rate is not None and not has_rate else None,
                     "top_level": top[0] if top else None})
    return pl.DataFrame(rows, schema={"clause_id": pl.String, "approved_rate": pl.Int64, "top_level": pl.String})


def synthetic_recognitions(baseline: pl.DataFrame, recognitions: pl.DataFrame, inputs: job.Inputs,
                           region: str, year: int) -> pl.DataFrame:
    """The recognitions the year's candidate matters lack, as ledger rows (the accepted schema, ``_row`` null),
    with ``basis`` (a code) and ``说明`` (in words): why the matter is a candidate."""
    window = inputs.compiled.regions[region].window
    empty = recognitions.clear().with_columns(pl.lit(None, pl.String).alias("basis"), pl.lit(None, pl.String).alias("说明"))
    if window is None:
        return empty
    # dated inside the policy window and the year, as a recognition granted now would be
    start, end = max(window[0], dt.date(year, 1, 1)), min(window[1], dt.date(year, 12, 31))
    if start > end:
        return empty
    ceilings = _ceilings(inputs, region)
    clip = lambda d: pl.min_horizontal(pl.max_horizontal(d, pl.lit(start)), pl.lit(end))  # noqa: E731
    from_lines = (
        baseline.filter(pl.col("blocked").str.starts_with(NOT_RECOGNISED) & (pl.col("installment") == 1))
        .join(ceilings, on="clause_id")
        .select(*KEY, pl.col("top_level").alias("level"), clip(pl.col("line_date")).alias("recognized_on"), "approved_rate",
                pl.col("line_date").alias("_on"),
                pl.lit("conditions_met").alias("basis"),
                pl.coalesce(pl.format("{}：条款条件均已满足，尚无认定", pl.col("source")),
                            pl.lit("条款条件均已满足，尚无认定")).alias("说明"))
    )
    # a level reached elsewhere: the same matter recognised at a level this clause pays, under another clause
    levels = inputs.compiled.tables["levels"].join(ceilings.select("clause_id"), on="clause_id").select("clause_id", "level")
    mine = recognitions.filter(pl.col("year") <= year).join(
        inputs.compiled.regions[region].tables["clauses"].select("clause_id"), on="clause_id", how="semi")
    held = mine.select(*KEY).unique()
    from_levels = (
        mine.filter(pl.col("level").is_not_null())
        .select("applicant_id", "matter_id", "level", "recognized_on", pl.col("clause_id").alias("_elsewhere"))
        .join(levels, on="level")
        .filter(pl.col("clause_id") != pl.col("_elsewhere"))
        .join(held, on=KEY, how="anti")
        .sort("recognized_on")
        .group_by(KEY).last()
        .select(*KEY, "level", clip(pl.col("recognized_on")).alias("recognized_on"),
                pl.lit(None, pl.Int64).alias("approved_rate"), clip(pl.col("recognized_on")).alias("_on"),
                pl.format("recognised_under:{}", pl.col("_elsewhere")).alias("basis"),
                pl.format("同一事项已于 {} 在 {} 下认定为{}（{}）", pl.col("recognized_on").dt.to_string("%Y-%m-%d"),
                          pl.col("_elsewhere"), _level_zh("level"), pl.col("level")).alias("说明"))
    )
    # a line dated before a dated parameter of its clause has its first value would need a value there is none of
    compiled = inputs.compiled.regions[region]
    starts = pl.DataFrame([(r.clause_id, on) for r in compiled.clauses if (on := compiled.in_force_from(r.clause_id))],
                          schema={"clause_id": pl.String, "_from": pl.Date}, orient="row")
    wanted = (
        pl.concat([from_lines, from_levels]).unique(KEY, keep="first", maintain_order=True)
        .join(starts, on="clause_id", how="left").filter(pl.col("_from").is_null() | (pl.col("_on") >= pl.col("_from")))
    )
    return wanted.select(
        pl.lit(None, pl.Int64).alias("_row"), *KEY, pl.lit(year, pl.Int64).alias("year"), "level", "recognized_on",
        pl.lit(None, pl.Int64).alias("approved_amount"), "approved_rate", pl.lit(None, pl.Int64).alias("quantity"), "basis",
        "说明",
    ).select([pl.col(c).cast(t) for c, t in recognitions.schema.items()] + ["basis", "说明"])


def push_list(inputs: job.Inputs, checked: Validated, paid: job.PaidBefore, year: int, region: str) -> pl.DataFrame:
    """The region's 免申即享 list for the year (LIST_COLUMNS; amounts in fen)."""
    baseline = job.compute(inputs, checked, paid, year, region).lines
    recognitions = checked.accepted["recognitions"]
    synthetic = synthetic_recognitions(baseline, recognitions, inputs, region, year)
    if synthetic.is_empty():
        return pl.DataFrame(schema={c: pl.String for c in LIST_COLUMNS})
    granted = dataclasses.replace(checked, accepted={**checked.accepted,
                                                     "recognitions": pl.concat([recognitions, synthetic.drop("basis", "说明")])},
                                  by_region={})  # the split was of the rows without them: compute filters afresh
    lines = job.compute(inputs, granted, paid, year, region).lines
    # what the lines the recognised one would supersede pay now: the firm gains only the difference
    before = baseline.select(*KEY, "installment", pl.col("payable_fen").alias("_before"))
    superseded = (
        lines.filter(pl.col("superseded_by").is_not_null()).join(before, on=[*KEY, "installment"], how="left")
        .group_by("applicant_id", "matter_id", pl.col("superseded_by").alias("clause_id"))
        .agg(pl.col("_before").sum().alias("_lost"), pl.col("clause_id").unique().sort().str.join(",").alias("_others"))
    )
    return (
        lines.filter(pl.col("installment") == 1)
        .join(synthetic.select(*KEY, "level", "approved_rate", "recognized_on", "basis", "说明").rename({"level": "_assumed_level"}),
              on=KEY, how="inner")
        .filter(pl.col("payable_fen") > 0)
        .join(superseded, on=KEY, how="left")
        .with_columns(
            pl.col("payable_fen").alias("amount_if_recognised"),
            (pl.col("payable_fen") - pl.col("_lost").fill_null(0)).alias("net_difference"),
            pl.col("_assumed_level").alias("level"),
            pl.col("_others").alias("competing_clauses"),
        )
        .filter(pl.col("net_difference") > 0)
        .select(LIST_COLUMNS)
        .sort("applicant_id", "clause_id", "matter_id")
    )


def eligible(ledgers_dir: Path, out_dir: Path, year: int, *, rules_dir: Path | None = None,
             params_file: Path | None = None, state_file: Path | None = None,
             region: str | None = None) -> dict[str, tuple[Path, pl.DataFrame]]:
    """Write one list per region, ``OUT/eligible-YEAR-REGION.csv``; the state is read from a copy."""
    import tempfile

    from disburse.outputs import private_files, write_csv
    from disburse.simulate import _state_copy
    from disburse.money import rate_text, yuan_text

    inputs = job.ingest(ledgers_dir, rules_dir, params_file)
    regions = job.choose_regions(inputs.catalogue, region)
    checked = job.check(inputs)
    with tempfile.TemporaryDirectory(prefix="disburse-eligible-") as tmp:
        con = state.connect(_state_copy(state_file, Path(tmp)))
        try:
            paid = job.paid_before(con, inputs, checked, year)
        finally:
            con.close()
    written = {}
    with private_files():  # firms' names and amounts: the owner's only, like a run's outputs
        out_dir.mkdir(parents=True, exist_ok=True)
        for r in regions:
            df = push_list(inputs, checked, paid, year, r)
            path = out_dir / f"eligible-{year}-{r}.csv"
            shown = df if df.is_empty() else df.with_columns(
                yuan_text("amount_if_recognised").alias("amount_if_recognised"),
                yuan_text("net_difference").alias("net_difference"),
                rate_text("approved_rate").alias("approved_rate"),
            )
            write_csv(shown, path)
            written[r] = (path, df)
    return written
