"""Fund ceilings (资金池 / 预算额度): when a year's payable exceeds the budget, 按比例核减.

A budget names a region or one of its clauses and a year (params ``budgets``).
Inside its scope, the installments already owed (later installments of awards
earned in earlier years, ``scheduled``) are paid in full and come off the
budget first; every other payable line of the year is cut by one ratio,

    ratio = (budget − owed) / (this year's payable before the cut),

each line's share rounded to the fen so that the cut lines and the owed ones
add up to the budget exactly: every line gets the fen below its exact share,
and the fen left over go one each to the lines with the largest remainders
(ties by applicant id, then clause, matter, installment) — which is each share
rounded half up wherever that already adds up. Clause budgets are applied
first, the region's last, on what the clause budgets left. Clawbacks are
recoveries and never touch a budget.

Grain of ``facts``: one row per budget applied to the year (cut or not).
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

import polars as pl

from disburse.money import fmt_fen, fmt_fen_expr

FACTS_SCHEMA = {
    "scope": pl.String, "budget_fen": pl.Int64, "owed_fen": pl.Int64, "uncut_fen": pl.Int64,
    "paid_fen": pl.Int64, "ratio": pl.String, "cut": pl.Boolean, "lines_cut": pl.Int64,
}
ORDER = ["applicant_id", "clause_id", "matter_id", "installment"]


def ratio_text(numerator: int, denominator: int) -> str:
    """The ratio as a decimal of 6 places, cut (never rounded up): 0.727546."""
    if denominator == 0:
        return "1"
    return str((Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.000001"), rounding=ROUND_DOWN))


def _in_scope(scope: str) -> pl.Expr:
    return pl.lit(True) if "." not in scope else pl.col("clause_id") == scope


def prorate(lines: pl.DataFrame, scope: str, budget_fen: int) -> tuple[pl.DataFrame, dict]:
    """Cut the year's payable lines of SCOPE to BUDGET_FEN; returns the lines and the facts."""
    inside = _in_scope(scope)
    owed = int(lines.filter(inside & pl.col("scheduled"))["payable_fen"].sum() or 0)
    cuttable = inside & ~pl.col("scheduled") & (pl.col("payable_fen") > 0)
    uncut = int(lines.filter(cuttable)["payable_fen"].sum() or 0)
    facts = {"scope": scope, "budget_fen": budget_fen, "owed_fen": owed, "uncut_fen": owed + uncut,
             "paid_fen": owed + uncut, "ratio": "1", "cut": False, "lines_cut": 0}
    if owed + uncut <= budget_fen:
        return lines, facts
    room = max(budget_fen - owed, 0)
    # exact share p × room / uncut: the fen below it, and the remainder that decides the last fen
    share = pl.col("payable_fen").cast(pl.Int128) * room
    cut = (
        lines.with_row_index("_i").filter(cuttable)
        .with_columns((share // uncut).cast(pl.Int64).alias("_floor"), (share % uncut).alias("_rem"))
    )
    left_over = room - int(cut["_floor"].sum() or 0)
    cut = (
        cut.sort(["_rem", *ORDER], descending=[True] + [False] * len(ORDER)).with_row_index("_place")
        .select("_i", (pl.col("_floor") + (pl.col("_place") < left_over).cast(pl.Int64)).alias("_cut"))
    )
    ratio = ratio_text(room, uncut)
    words = (
        f"fund ceiling {fmt_fen(budget_fen)} for {scope}"
        + (f" less {fmt_fen(owed)} installments owed" if owed else "")
        + f"; this year's lines total {fmt_fen(uncut)}: cut by {fmt_fen(room)} / {fmt_fen(uncut)} = {ratio}"
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


def apply_budgets(lines: pl.DataFrame, budgets: dict[str, int]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every budget of the region's year in turn (clauses first, the region last).

    Adds ``before_budget_fen`` (the payable before any cut), ``budget_steps``
    (the cut in words, null where none) and ``budget_ratio`` (the last ratio
    that cut the line); returns the lines and one row of facts per budget.
    """
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
    """The cut as the line's last step and the reason ``budget_prorated``."""
    cut = pl.col("budget_steps").is_not_null()
    return lines.with_columns(
        pl.when(cut).then(pl.format("{} → {}", pl.col("steps"), pl.col("budget_steps"))).otherwise(pl.col("steps")).alias("steps"),
        pl.when(cut & (pl.col("reasons").fill_null("") != "")).then(pl.format("{};budget_prorated", pl.col("reasons")))
        .when(cut).then(pl.lit("budget_prorated")).otherwise(pl.col("reasons")).alias("reasons"),
    )
