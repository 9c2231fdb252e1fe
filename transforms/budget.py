"""Fund ceilings (资金池 / 预算额度): when a year's payable exceeds the budget, 按比例核减.

A budget names a region or one of its clauses and a year (params ``budgets``).
Inside its scope, what is already owed (later installments of awards earned
in earlier years, and shortfalls carried from last year: ``scheduled``) is
paid in full and comes off the budget first; every other payable line of the year is cut by one ratio,

    ratio = (budget − owed) / (this year's payable before the cut),

each line's share rounded to the fen so that the cut lines and the owed ones
add up to the budget exactly: every line gets the fen below its exact share,
and the fen left over go one each to the lines with the largest remainders
(ties by applicant id, then clause, matter, installment) — which is each share
rounded half up wherever that already adds up. Clause budgets are applied
first, the region's last, on what the clause budgets left. Clawbacks are
recoveries and never touch a budget.

What a cut takes is not owed later, unless the params say
``carry_budget_shortfall: true``: then the run for year Y pays what the cuts of
year Y−1 took (the state keeps each cut line's award, its amount before the
cut, beside what was paid) as lines of their own, installment 0, owed like
installments: paid in full and off Y's budget first. A firm found to have
committed fraud, or moved out, by the end of Y is not paid its shortfall.

Grain of ``facts``: one row per budget applied to the year (cut or not).
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_DOWN, Decimal

import polars as pl

from disburse.money import fmt_fen, fmt_fen_expr
from disburse.tables import FACTS_SCHEMA

ORDER = ["applicant_id", "clause_id", "matter_id", "year_of_matter", "installment"]
REASONS = ("budget_prorated", "budget_carried")  # the reason codes a ceiling gives a line


def ratio_text(numerator: int, denominator: int) -> str:
    """The ratio as a decimal of 6 places, cut (never rounded up): 0.727546."""
    return str((Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.000001"), rounding=ROUND_DOWN))


def _in_scope(scope: str) -> pl.Expr:
    return pl.lit(True) if "." not in scope else pl.col("clause_id") == scope


def prorate(lines: pl.DataFrame, scope: str, budget_fen: int) -> tuple[pl.DataFrame, dict]:
    """Cut the year's payable lines of SCOPE to BUDGET_FEN; returns the lines and the facts."""
    inside = _in_scope(scope)
    owed = int(lines.filter(inside & pl.col("scheduled"))["payable_fen"].cast(pl.Int128).sum() or 0)
    cuttable = inside & ~pl.col("scheduled") & (pl.col("payable_fen") > 0)
    uncut = int(lines.filter(cuttable)["payable_fen"].cast(pl.Int128).sum() or 0)
    facts = {"scope": scope, "budget_fen": budget_fen, "owed_fen": owed, "uncut_fen": owed + uncut,
             "paid_fen": owed + uncut, "ratio": "1", "cut": False, "lines_cut": 0}
    if owed + uncut <= budget_fen or uncut == 0:  # within the ceiling, or only owed lines (paid in full)
        return lines, facts
    room = max(budget_fen - owed, 0)
    # exact share p × room / uncut: the fen below it, and the remainder that decides the last fen
    share = pl.col("payable_fen").cast(pl.Int128) * room
    cut = (
        lines.with_row_index("_i").filter(cuttable)
        .with_columns((share // uncut).cast(pl.Int64).alias("_floor"), (share % uncut).alias("_rem"))
    )
    left_over = room - int(cut["_floor"].cast(pl.Int128).sum() or 0)
    cut = (
        cut.sort(["_rem", *ORDER], descending=[True] + [False] * len(ORDER)).with_row_index("_place")
        .select("_i", (pl.col("_floor") + (pl.col("_place") < left_over).cast(pl.Int64)).alias("_cut"))
    )
    ratio = ratio_text(room, uncut)
    words = (
        f"资金额度 {fmt_fen(budget_fen)}（{scope}）"
        + (f"，先付已欠的 {fmt_fen(owed)}（以往年度奖励的分期、上年核减的差额）" if owed else "")
        + f"；本年应付合计 {fmt_fen(uncut)}，按比例核减 {fmt_fen(room)} / {fmt_fen(uncut)} = {ratio}"
    )
    out = (
        lines.with_row_index("_i").join(cut, on="_i", how="left")
        .with_columns(
            pl.when(pl.col("_cut").is_not_null())
            .then(pl.format("{} ({} → {})", pl.lit(words), fmt_fen_expr(pl.col("payable_fen")), fmt_fen_expr(pl.col("_cut"))))
            .alias("_step")
        )
        .with_columns(
            pl.coalesce("_cut", "payable_fen").alias("payable_fen"),
            pl.when(pl.col("_step").is_null()).then(pl.col("budget_steps"))
            .when(pl.col("budget_steps").is_null()).then(pl.col("_step"))
            .otherwise(pl.format("{} → {}", pl.col("budget_steps"), pl.col("_step"))).alias("budget_steps"),
            pl.when(pl.col("_step").is_not_null()).then(pl.lit(ratio)).otherwise(pl.col("budget_ratio")).alias("budget_ratio"),
        )
        .drop("_i", "_cut", "_step")
    )
    facts |= {"paid_fen": budget_fen if owed <= budget_fen else owed, "ratio": ratio, "cut": True,
              "lines_cut": cut.height}
    return out, facts


def carried_shortfall(history: pl.DataFrame, applicants: pl.DataFrame, clauses: pl.DataFrame, year: int) -> pl.DataFrame:
    """Lines paying what year − 1's budget cuts took (one per cut line), owed in YEAR, in the shape of lines."""
    year_end = dt.date(year, 12, 31)
    still_here = applicants.filter(
        pl.col("fraud_found_on").is_null() | (pl.col("fraud_found_on") > year_end),
        pl.col("relocated_out_on").is_null() | (pl.col("relocated_out_on") > year_end),
    ).select("applicant_id", "name")
    shortfall = pl.col("award_fen") - pl.col("payable_fen")
    return (
        history.filter((pl.col("year") == year - 1) & (pl.col("installments") == 1) & (shortfall > 0))
        .join(still_here, on="applicant_id")
        .join(clauses.select("clause_id", "title", "article", "clause_order"), on="clause_id")
        .select(
            "applicant_id", "name", "clause_id", "title", "article", "clause_order", "matter_id",
            pl.lit(0, pl.Int64).alias("installment"), pl.lit(1, pl.Int64).alias("installments"),
            pl.lit(year, pl.Int64).alias("year_of_matter"), pl.lit(year_end).alias("line_date"), pl.lit("state").alias("source"),
            shortfall.alias("gross_fen"), shortfall.alias("award_fen"), shortfall.alias("payable_fen"),
            pl.lit(True).alias("scheduled"),
            pl.format("{} 年资金额度按比例核减少付 {}（核定 {}，已付 {}）：差额结转，{} 年优先补付（carry_budget_shortfall）",
                      pl.col("year"), fmt_fen_expr(shortfall), fmt_fen_expr(pl.col("award_fen")),
                      fmt_fen_expr(pl.col("payable_fen")), pl.lit(year)).alias("steps"),
            pl.lit(REASONS[1]).alias("reasons"),
        )
    )


def apply_budgets(lines: pl.DataFrame, budgets: dict[str, int],
                  carried: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every budget of the region's year in turn (clauses first, the region last).

    Adds ``before_budget_fen`` (the payable before any cut), ``budget_steps``
    (the cut in words, null where none) and ``budget_ratio`` (the last ratio
    that cut the line); returns the lines and one row of facts per budget.
    ``carried`` (``carried_shortfall``) joins the lines first, as owed.
    """
    if carried is not None and not carried.is_empty():
        lines = pl.concat([lines, carried], how="diagonal_relaxed").sort(
            "applicant_id", "clause_order", "matter_id", "year_of_matter", "installment")
    lines = lines.with_columns(
        pl.col("payable_fen").alias("before_budget_fen"),
        pl.lit(None, pl.String).alias("budget_steps"),
        pl.lit(None, pl.String).alias("budget_ratio"),
    )
    facts = []
    for scope, budget_fen in budgets.items():  # a loop over budgets, never over lines
        lines, f = prorate(lines, scope, budget_fen)
        facts.append(f)
    return lines, pl.DataFrame(facts, schema=FACTS_SCHEMA)


def explain_budget(lines: pl.DataFrame) -> pl.DataFrame:
    """The cut as the line's last step and the reason ``budget_prorated`` (REASONS[0])."""
    cut = pl.col("budget_steps").is_not_null()
    return lines.with_columns(
        pl.when(cut).then(pl.format("{} → {}", pl.col("steps"), pl.col("budget_steps"))).otherwise(pl.col("steps")).alias("steps"),
        pl.when(cut & (pl.col("reasons").fill_null("") != "")).then(pl.format("{};budget_prorated", pl.col("reasons")))
        .when(cut).then(pl.lit("budget_prorated")).otherwise(pl.col("reasons")).alias("reasons"),
    )
