"""The tables the stages hand each other, with their grain: defined here, below both the
transforms that compute them and the state and outputs that store and write them.

- ``HISTORY_SCHEMA``: one row per line paid in an earlier year (state and prior_payments):
  applicant, clause, matter, year (paid), installment; ``year_of_matter`` is the year the line's
  matter belongs to (the year paid, or an earlier one for a line paid late); ``award_inferred``: a
  prior payment under a clause paying in installments that did not give its award (inferred from the
  first share, SPEC §3).
- ``CLAWBACK_SCHEMA``: one row per applicant, clause and matter to recover.
- ``FACTS_SCHEMA``: one row per fund ceiling of a region's year.
- ``AUDIT_COLUMNS``: the columns of ``RegionResult.lines``, one row per applicant, clause, matter,
  year of the matter and installment of the year, including lines that came to zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from disburse.money import sum_fen

HISTORY_SCHEMA = {
    "applicant_id": pl.String, "clause_id": pl.String, "matter_id": pl.String, "year": pl.Int64,
    "installment": pl.Int64, "installments": pl.Int64, "payable_fen": pl.Int64, "award_fen": pl.Int64,
    "dated_on": pl.Date, "year_of_matter": pl.Int64, "award_inferred": pl.Boolean,
}
CLAWBACK_SCHEMA = {
    "applicant_id": pl.String, "clause_id": pl.String, "matter_id": pl.String,
    "amount_fen": pl.Int64, "reason": pl.String,
}
FACTS_SCHEMA = {
    "scope": pl.String, "budget_fen": pl.Int64, "owed_fen": pl.Int64, "uncut_fen": pl.Int64,
    "paid_fen": pl.Int64, "ratio": pl.String, "cut": pl.Boolean, "lines_cut": pl.Int64,
}
AUDIT_COLUMNS = [
    "applicant_id", "applicant_name", "region", "year", "year_of_matter", "clause_id", "clause_title", "article", "matter_id",
    "installment", "installments", "line_date", "recognized_on", "source", "base_fen", "eff_rate_ppm", "formula_fen",
    "approved_fen", "approved_paid_fen", "approved_left_fen", "gross_fen",
    "paid_matter_fen", "after_level_up_fen", "item_cap_applied_fen", "after_item_fen", "alone_fen",
    "competing_paid_fen", "competing_clauses", "after_competing_fen", "superseded_by", "kept_fen", "annual_cap_fen", "after_annual_fen", "cumulative_cap_fen",
    "cum_paid_before_fen", "after_cumulative_fen", "award_fen", "payable_fen", "in_kind_quantity", "in_kind_unit",
    "blocked", "reasons", "steps", "before_budget_fen", "budget_ratio",
]


def region_label(region: str, region_zh: str | None) -> str:
    """临港新片区（lingang）; the id alone where the region has no Chinese name."""
    return f"{region_zh}（{region}）" if region_zh and region_zh != region else region


def paid_on(year: pl.Expr) -> pl.Expr:
    """The date a line counts from (the relocation clock, gaps between payments): its ledger date, or for a
    line paid late (its matter's year before YEAR, the year paid) the date of the recognition that made it
    payable, when later (自享受扶持政策起: support is not enjoyed before it is recognised)."""
    late_from = pl.when(pl.col("year_of_matter") < year).then(pl.col("recognized_on"))
    return pl.max_horizontal(pl.col("line_date"), late_from)


CLAUSE_TEXT_SCHEMA = {"clause_id": pl.String, "clause_title": pl.String, "article": pl.String, "text": pl.String}


@dataclass
class RegionResult:
    region: str
    lines: pl.DataFrame
    clawbacks: pl.DataFrame
    # for the audit: each clause's article quoted (CLAUSE_TEXT_SCHEMA), the policy's title and its 就高不重复 article
    clauses: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=CLAUSE_TEXT_SCHEMA))
    policy_title: str = ""
    keep_highest_text: str | None = None
    # one row per fund ceiling of the year (FACTS_SCHEMA): ceiling, uncut total, ratio
    budgets: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=FACTS_SCHEMA))
    region_zh: str = ""  # the region's Chinese name (policy.yaml region_zh)

    @property
    def label(self) -> str:
        """The region as a person reads it: 临港新片区（lingang）."""
        return region_label(self.region, self.region_zh)

    @property
    def disbursements(self) -> pl.DataFrame:
        return self.lines.filter(pl.col("payable_fen") > 0)

    @property
    def in_kind(self) -> pl.DataFrame:
        """Awards in kind (never money): one row per applicant, clause and matter granted."""
        return self.lines.filter(pl.col("in_kind_quantity").is_not_null() & pl.col("blocked").is_null())

    @property
    def payments(self) -> pl.DataFrame:
        return (
            self.disbursements.group_by("applicant_id", "applicant_name")
            .agg(sum_fen(pl.col("payable_fen")).alias("total_payable_fen"))
            .sort("applicant_id")
        )
