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

from disburse.ledgers import LEDGERS
from disburse.money import rate_to_ppm, yuan_to_fen
from disburse.params import ParamError, Params
from disburse.rules import Catalogue
from transforms.candidates import CANDIDATE_SCHEMA, Context, earlier_years_prefix, extract
from transforms.compute import PARAM_SCHEMA, clawbacks, compute_lines
from disburse.tables import AUDIT_COLUMNS, CLAUSE_TEXT_SCHEMA, RegionResult  # noqa: F401 (re-exported)
from transforms.budget import apply_budgets, carried_shortfall, explain_budget
from transforms.explain import explain

def params_table(params: Params, region: str) -> pl.DataFrame:
    rows = [
        {
            "clause_id": cid,
            "p_rate_ppm": None if p.rate is None else rate_to_ppm(p.rate),
            "p_annual_cap_fen": None if p.annual_cap is None else yuan_to_fen(p.annual_cap),
            "p_item_cap_fen": None if p.item_cap is None else yuan_to_fen(p.item_cap),
            "p_amount_fen": None if p.amount is None else yuan_to_fen(p.amount),
        }
        for cid, p in params.clauses.items()
        if cid.split(".", 1)[0] == region
    ]
    return pl.DataFrame(rows, schema=PARAM_SCHEMA)


def compute_region(
    accepted: dict[str, pl.DataFrame],
    cat: Catalogue,
    tables: dict[str, pl.DataFrame],
    params: Params,
    window: tuple[dt.date, dt.date] | None,
    history: pl.DataFrame,
    recovered: pl.DataFrame,
    year: int,
    region: str,
    *,
    of_region: bool = False,
) -> RegionResult:
    """ACCEPTED: every ledger's accepted rows; with OF_REGION, only the region's (``Validated.by_region``)."""
    clauses = tables["clauses"].filter(pl.col("region") == region)
    history = history.join(clauses.select("clause_id"), on="clause_id", how="semi")
    span = window or (dt.date.max, dt.date.max)
    applicants = accepted["applicants"].filter(pl.col("region") == region).drop("_row").with_columns(
        # 新注册或新迁入: registered in (founded in, or moved into) the region while the policy is in force
        pl.col("registered_in_region_on").is_between(pl.lit(span[0]), pl.lit(span[1])).alias("registered_in_window")
    )
    ctx = Context(accepted, applicants, year, span, tables["levels"], tables["steps"], of_region=of_region)
    rules = cat.rules_of(region)
    # every ledger row reaches a clause through an applicant of the region: none, no candidates
    parts = [extract(rule, ctx) for rule in rules if not params.suspended(rule.clause_id)] if applicants.height else []
    candidates = pl.concat(parts) if parts else pl.DataFrame(schema=CANDIDATE_SCHEMA)
    if window is None and not candidates.is_empty():
        raise ParamError(f"policy {region}: administrator parameter effective_from is missing "
                         f"(set policies.{region}.effective_from in the params file)")
    # earlier years' payments are found under these keys (SPEC §5.5 across years)
    across = [(r.clause_id, earlier_years_prefix(r)) for r in rules if earlier_years_prefix(r) is not None]
    prefixes = pl.DataFrame(across, schema={"clause_id": pl.String, "supersede_prefix": pl.String}, orient="row")
    region_tables = {**tables, "clauses": clauses, "supersede_prefixes": prefixes}
    lines = compute_lines(candidates, region_tables, params_table(params, region), applicants, history, year)
    # the fund ceiling cuts the payable the steps above arrived at, and says so last
    carried = carried_shortfall(history, applicants, clauses, year) if params.carry_budget_shortfall else None
    lines, budgets = apply_budgets(explain(lines), params.budgets_for(region, year), carried)
    lines = explain_budget(lines).with_columns(
        pl.col("name").alias("applicant_name"),
        pl.lit(region).alias("region"),
        pl.lit(year, pl.Int64).alias("year"),
        pl.col("title").alias("clause_title"),
    ).select(AUDIT_COLUMNS)
    pol = cat.policies[region].provisions
    claws = clawbacks(applicants, history, recovered, year, region,
                      pol.clawback_on_relocation_years, pol.clawback_text, pol.fraud_text)
    texts = pl.DataFrame([(r.clause_id, r.title, r.article, r.text) for r in cat.rules_of(region)],
                         schema=CLAUSE_TEXT_SCHEMA, orient="row")
    return RegionResult(region, lines, claws, texts, cat.policies[region].title, pol.keep_highest, budgets=budgets)
