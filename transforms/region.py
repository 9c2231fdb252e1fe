"""One region's year: candidates → modifiers → explanation → finance tables.

Frames in, frames out; no files. Grains:
- ``lines`` (the audit): one row per applicant, clause, matter and installment,
  including lines that came to zero;
- ``disbursements``: the lines with payable > 0;
- ``payments``: one row per applicant with a payable line;
- ``clawbacks``: one row per applicant, clause and matter to recover.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from disburse.compiled import Region
from transforms.candidates import CANDIDATE_SCHEMA, Context, earlier_years_prefix, extract, late_recognitions
from transforms.compute import clawbacks, compute_lines, paid_in_this_run
from disburse.tables import AUDIT_COLUMNS, CLAUSE_TEXT_SCHEMA, RegionResult  # noqa: F401 (re-exported)
from transforms.budget import apply_budgets, carried_shortfall, explain_budget
from transforms.explain import explain
from transforms.facts import in_force, with_from


def compute_region(
    accepted: dict[str, pl.DataFrame],
    compiled: Region,
    history: pl.DataFrame,
    recovered: pl.DataFrame,
    year: int,
    *,
    of_region: bool = False,
) -> RegionResult:
    """ACCEPTED: every ledger's accepted rows; with OF_REGION, only the region's (``Validated.by_region``).
    COMPILED: the region's clauses, window and parameters, compiled once per run (``disburse.compiled``)."""
    region, window, tables = compiled.name, compiled.window, compiled.tables
    clauses = tables["clauses"]
    history = history.join(clauses.select("clause_id"), on="clause_id", how="semi")
    span = window or (dt.date.max, dt.date.max)
    # every row of the region's applicants: one per applicant, or one per applicant and year from which its
    # facts hold (transforms.facts); a line reads the row in force for its matter's year (compute.assemble)
    rows = with_from(accepted["applicants"].filter(pl.col("region") == region).drop("_row").with_columns(
        # 新注册或新迁入: registered in (founded in, or moved into) the region while the policy is in force
        pl.col("registered_in_region_on").is_between(pl.lit(span[0]), pl.lit(span[1])).alias("registered_in_window")
    ))
    # one row per applicant: its region and dates, and its facts and name as they are in the year paid
    applicants = in_force(rows, year)
    ctx = Context(accepted, applicants, year, span, tables["levels"], tables["steps"], of_region=of_region)
    rules = compiled.clauses
    # every ledger row reaches a clause through an applicant of the region: none, no candidates
    parts = [extract(rule, ctx) for rule in rules if not rule.suspended] if applicants.height else []
    if applicants.height and window is not None:
        parts.append(late_recognitions(rules, ctx))  # earlier years' rows recognised this year, paid late
    candidates = pl.concat(parts) if parts else pl.DataFrame(schema=CANDIDATE_SCHEMA)
    if window is None and not candidates.is_empty():
        raise compiled.missing_parameter("effective_from")
    # earlier years' payments are found under these keys (SPEC §5.5 across years)
    across = [(r.clause_id, earlier_years_prefix(r)) for r in rules if earlier_years_prefix(r) is not None]
    prefixes = pl.DataFrame(across, schema={"clause_id": pl.String, "supersede_prefix": pl.String}, orient="row")
    region_tables = {**tables, "supersede_prefixes": prefixes}
    # Lines paid late go first, an earlier year at a time, each as its year's run would have paid it had the
    # recognition come in time; then this year's lines, counting what the late ones paid as paid before.
    of_year = pl.col("year_of_matter")
    passes, seen = [], history
    for earlier in sorted(candidates.filter(of_year < year).get_column("year_of_matter").unique().to_list()):
        part = compute_lines(candidates.filter(of_year == earlier), region_tables, compiled, rows, seen, year,
                             scheduled=False)
        passes.append(part)
        seen = pl.concat([seen, paid_in_this_run(part, year)])
    passes.append(compute_lines(candidates.filter(of_year >= year), region_tables, compiled, rows, seen, year))
    lines = passes[0] if len(passes) == 1 else pl.concat(passes, how="diagonal_relaxed").sort(
        "applicant_id", "clause_order", "matter_id", "year_of_matter", "installment")
    # the fund ceiling cuts the payable the steps above arrived at, and says so last
    carried = carried_shortfall(history, applicants, clauses, year) if compiled.carry_budget_shortfall else None
    lines, budgets = apply_budgets(explain(lines), compiled.budgets.get(year, {}), carried)
    lines = explain_budget(lines).with_columns(
        pl.col("name").alias("applicant_name"),
        pl.lit(region).alias("region"),
        pl.lit(year, pl.Int64).alias("year"),
        pl.col("title").alias("clause_title"),
    ).select(AUDIT_COLUMNS)
    claws = clawbacks(applicants, history, recovered, year, region,
                      compiled.clawback_on_relocation_years, compiled.clawback_text, compiled.fraud_text)
    return RegionResult(region, lines, claws, compiled.texts, compiled.title, compiled.keep_highest, budgets=budgets,
                        region_zh=compiled.region_zh)
