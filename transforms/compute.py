"""From candidate lines to payable lines: the modifiers of SPEC §5, in order.

Grain of ``lines``: one row per applicant, clause, matter and installment for
the year (installment 1 for a payment made at once). Every step keeps its
numbers in a column of its own (gross_fen, after_item_fen, alone_fen,
after_annual_fen, ...) so the explanation is data; ``transforms.explain``
renders it in words.

``history`` is what was paid before this year (state and prior_payments):
applicant_id, clause_id, matter_id, year, installment, installments,
payable_fen, award_fen, dated_on (the line's date; 31 December of its year for
a prior payment).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from disburse.compiled import RATED_KINDS, Region
from disburse.ledgers import FACT_COLUMNS
from disburse.money import PPM, apply_rate, fmt_fen_expr, fmt_ppm_expr, micro, round_micro, sum_fen
from disburse.tables import CLAWBACK_SCHEMA, HISTORY_SCHEMA, paid_on  # noqa: F401 (re-exported)
from transforms.facts import facts_for, in_force

YEARLY_FACTS = [c for c in FACT_COLUMNS if c != "name"]  # the facts a line's eligibility and rate read

# Codes of the limits across years and within a year (SPEC §5.7): a line they stop pays 0.00.
PERIOD_REASONS = {
    "one_off": "one_off_already_paid",
    "first_year_only": "period:first_year_only",
    "consecutive_years": "period:consecutive_years_over",
    "max_years": "period:max_years_reached",
    "min_gap_years": "period:too_soon_after_last_payment",
}


def _min(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """The smaller of two amounts; a missing bound does not bind."""
    return pl.min_horizontal(a, b.fill_null(a))


# An award paid in installments: its matter and the year it was earned (installment k is paid k − 1 years
# after). The job's own lines and a prior payment naming its installment (SPEC §3) alike.
AWARD = ["applicant_id", "clause_id", "matter_id", "_earned_year"]
EARNED_YEAR = (pl.col("year") - pl.col("installment") + 1).alias("_earned_year")


def _first_of_award() -> pl.Expr:
    """True on the history row of an award in installments that carries it: the earliest installment
    recorded (the first, or the one a prior payment begins with where the earlier ones predate the records)."""
    return pl.col("installment") == pl.col("installment").min().over(
        [pl.col(c) for c in AWARD[:-1]] + [pl.col("year") - pl.col("installment"), pl.col("installments")])


def _paid_before(history: pl.DataFrame, keys: list[str], name: str) -> pl.DataFrame:
    """What earlier years committed: payments, and an award paid in installments counted whole
    in the year it was earned (its later installments are already owed), once."""
    committed = (
        pl.when(pl.col("installments") == 1).then(pl.col("payable_fen"))
        .when(_first_of_award()).then(pl.col("award_fen"))
        .otherwise(0)
    )
    return history.group_by(keys).agg(sum_fen(committed).alias(name))


def scheduled_installments(history: pl.DataFrame, clauses: pl.DataFrame, year: int,
                           applicants: pl.DataFrame) -> pl.DataFrame:
    """Later installments of awards earned in earlier years (SPEC §5.10): for each award, the installment
    falling due this year, of the award its earliest recorded installment carries (``award_inferred``:
    inferred from a prior payment, ``inferred_from_fen`` that payment, SPEC §3)."""
    awards = (
        history.filter(pl.col("installments") > 1).with_columns(EARNED_YEAR)
        .group_by(AWARD).agg(
            pl.col(c).sort_by("installment").first().alias(a) for c, a in (
                ("installments", "installments"), ("award_fen", "award_fen"), ("award_inferred", "award_inferred"),
                ("payable_fen", "inferred_from_fen"))
        )
    )
    return (
        awards.with_columns((pl.lit(year) - pl.col("_earned_year") + 1).alias("installment"))
        .filter((pl.col("installment") >= 2) & (pl.col("installment") <= pl.col("installments")))
        .join(applicants.select("applicant_id"), on="applicant_id", how="semi")
        .join(clauses.select("clause_id"), on="clause_id", how="semi")
        .select(
            "applicant_id", "clause_id", "matter_id", "installment",
            pl.col("_earned_year").alias("earned_year"), "award_fen", "award_inferred",
            pl.when(pl.col("award_inferred")).then(pl.col("inferred_from_fen")).alias("inferred_from_fen"),
        )
    )


def eligibility_checks(year: int) -> list[tuple[pl.Expr, str]]:
    """(condition, reason code) in the order they are tried. Needs applicant and clause columns."""
    year_end = pl.lit(dt.date(year, 12, 31))
    age_limit = pl.col("established_on").dt.offset_by(pl.format("{}y", pl.col("elig_max_age_years")))
    move_limit = pl.col("registered_in_region_on").dt.offset_by(pl.format("{}y", pl.col("elig_max_years_since_move_in")))
    checks = [
        (~pl.col("in_window"), "outside_validity"),
        # the payee (the row's applicant, or the investor it names) must be an accepted applicant of the region
        (pl.col("applicant_region").is_null(), "ineligible:not_an_applicant_of_the_region"),
        (pl.col("fraud_found_on") <= year_end, "ineligible:fraud"),
        (pl.col("relocated_out_on") <= year_end, "ineligible:relocated_out"),
        (pl.col("registered_in_region_on") > year_end, "ineligible:not_yet_in_region"),
        (pl.col("elig_credit_ok") & ~pl.col("credit_ok"), "ineligible:credit"),
        (~pl.col("elig_sector").list.contains(pl.col("sector")), "ineligible:sector"),
        (~pl.col("elig_size").list.contains(pl.col("size")), "ineligible:size"),
        (pl.col("elig_above_scale") & ~pl.col("above_scale"), "ineligible:not_above_scale"),
        (pl.col("line_date") > age_limit, "ineligible:too_old"),
        (pl.col("line_date") > move_limit, "ineligible:moved_in_too_long_ago"),
        # N年内 after moving in: an event before the move-in is not within N years of it
        (pl.col("elig_max_years_since_move_in").is_not_null() & (pl.col("line_date") < pl.col("registered_in_region_on")),
         "ineligible:before_moving_in"),
        (pl.col("elig_moved_in") & (pl.col("registered_in_region_on") <= pl.col("established_on")), "ineligible:not_moved_in"),
        (pl.col("elig_new_in_region") & ~pl.col("registered_in_window"), "ineligible:not_new_in_region"),
        (~pl.col("recognized"), "ineligible:not_recognised"),
        (pl.col("recognition_in_advance") & (pl.col("recognized_on") > pl.col("line_date")),
         "ineligible:recognised_after_the_event"),
        (pl.col("recognition") & pl.col("kind").is_in(RATED_KINDS) & pl.col("rate_ppm").is_null()
         & pl.col("approved_ppm").is_null() & pl.col("max_rate_ppm").is_not_null(), "not_approved:no_rate"),
        (~pl.col("condition_met"), "condition_not_met"),
        (pl.col("quantity").fill_null(0) < pl.col("min_quantity"), "condition_not_met:quantity_below_minimum"),
    ]
    return checks


def eligibility_reason(year: int) -> pl.Expr:
    """The first reason a line cannot be paid, or null."""
    expr = pl.lit(None, pl.String)
    for cond, reason in reversed(eligibility_checks(year)):
        expr = pl.when(cond.fill_null(False)).then(pl.lit(reason)).otherwise(expr)
    return expr


def _progressive(lines: pl.DataFrame, tiers: pl.DataFrame) -> pl.DataFrame:
    """Sum over tiers of rate × the slice of the base inside the tier, one rounding per line."""
    if tiers.is_empty():
        return lines.with_columns(pl.lit(None, pl.Int64).alias("tiered_fen"))
    slices = (
        lines.select("_line", "clause_id", "base_fen").join(tiers, on="clause_id")
        .with_columns(
            (pl.min_horizontal(pl.col("base_fen"), pl.col("upper_fen").fill_null(pl.col("base_fen")))
             - pl.col("lower_fen")).clip(lower_bound=0).alias("_slice")
        )
        .group_by("_line").agg(micro(pl.col("_slice"), pl.col("rate_ppm")).sum().alias("_tiered_micro"))
        .select("_line", round_micro(pl.col("_tiered_micro")).alias("tiered_fen"))
    )
    return lines.join(slices, on="_line", how="left")


def _fill(lines: pl.DataFrame, amount: str, cap: str, group: list[str], order: list[str], out: str,
          already: str | None = None) -> pl.DataFrame:
    """Fill lines against a cap in order: each gets what is left of the cap, at most its amount.

    Only this year's capped lines take part; installments of earlier awards
    (``scheduled``) are never capped again and take no room.
    """
    wide = pl.col(amount).cast(pl.Int128)  # running sums never wrap
    before = wide.cum_sum().over(group, order_by=order) - wide
    used = before + (pl.col(already).fill_null(0) if already else 0)
    room = (pl.col(cap) - used).clip(lower_bound=0)
    filled = lines.filter(pl.col(cap).is_not_null() & ~pl.col("scheduled")).select(
        "_line", pl.min_horizontal(wide, room).cast(pl.Int64).alias("_filled")
    )
    return (
        lines.join(filled, on="_line", how="left")
        .with_columns(pl.coalesce("_filled", amount).alias(out))
        .drop("_filled")
    )


def _competing_paid(history: pl.DataFrame, prefixes: pl.DataFrame, clauses: pl.DataFrame) -> pl.DataFrame:
    """What each clause committed before for a matter, keyed as the lines compete (applicant,
    supersede_key, paid_for), with the matter's total over all clauses of the region."""
    part = ["applicant_id", "supersede_key", "paid_for"]
    keyed = (
        history.join(prefixes, on="clause_id").join(clauses.select("clause_id", "paid_for"), on="clause_id")
        .with_columns(pl.format("{}{}", pl.col("supersede_prefix"), pl.col("matter_id")).alias("supersede_key"))
    )
    by_clause = _paid_before(keyed, [*part, "clause_id"], "_own_fen").filter(pl.col("_own_fen") > 0)
    return by_clause.with_columns(
        sum_fen(pl.col("_own_fen")).over(part).alias("_matter_fen"),
        pl.col("clause_id").sort().over(part, mapping_strategy="join").alias("_paid_clauses"),
    )


def _years_paid(history: pl.DataFrame, keys: list[str], suffix: str) -> pl.DataFrame:
    """First year with a payment, the date of the last paid line, and how many years had one (the years
    the lines' matters belong to: a line paid late counts for its own year)."""
    return (
        history.filter(pl.col("payable_fen") > 0).group_by(keys)
        .agg(pl.col("year_of_matter").min().alias(f"first_year_{suffix}"), pl.col("dated_on").max().alias(f"last_paid_on_{suffix}"),
             pl.col("year_of_matter").n_unique().alias(f"n_years_{suffix}"))
    )


def compute_lines(
    candidates: pl.DataFrame,
    tables: dict[str, pl.DataFrame],
    compiled: Region,
    applicants: pl.DataFrame,
    history: pl.DataFrame,
    year: int,
    *,
    scheduled: bool = True,
) -> pl.DataFrame:
    """SPEC §5's modifiers in order, one named step each. Every step takes and returns the lines
    (one row per applicant, clause, matter and installment of the year) with its own columns added.
    COMPILED: the region's administrator parameters (``compiled.params``) and what is missing of them.
    APPLICANTS: every row of the region's applicants, one or more per applicant (``transforms.facts``).
    SCHEDULED: False for a pass over lines paid late (the installments falling due are this year's pass's)."""
    lines = assemble(candidates, tables, compiled.params, applicants, history, year, scheduled=scheduled)
    _require_params(lines, compiled)
    return (
        lines.pipe(approved_left, history)
        .pipe(formula, tables)
        .pipe(level_up_and_periods, history, year)
        .pipe(first_in_slot)
        .pipe(item_cap)
        .pipe(keep_the_highest, history, tables)
        .pipe(annual_caps, history, tables)
        .pipe(cumulative_caps)
        .pipe(installment_shares, tables)
        .drop("_line")
        .sort("applicant_id", "clause_order", "matter_id", "year_of_matter", "installment")
    )


def _by_scope(scope: str, matter: str, applicant: str) -> pl.Expr:
    """The matter's figure, or the applicant's where the clause counts by applicant."""
    return pl.when(pl.col(scope) == "applicant").then(pl.col(applicant)).otherwise(pl.col(matter))


LIVE = ~pl.col("scheduled")  # a line earned this year (not a later installment of an earlier award)


def assemble(candidates: pl.DataFrame, tables: dict[str, pl.DataFrame], params: pl.DataFrame,
             applicants: pl.DataFrame, history: pl.DataFrame, year: int, *, scheduled: bool = True) -> pl.DataFrame:
    """§5.1–5.2, §5.9–5.10: this year's candidates and the installments of earlier awards falling due,
    with their clause, parameters, applicant and size rate, and the first eligibility check a line fails
    (``blocked``). Adds ``_line``, a row number the later steps join back on."""
    clauses = tables["clauses"]
    # APPLICANTS: the region's applicants' rows, one or more per applicant (transforms.facts). What is one per
    # applicant (region, dates) and its name come from the row in force for the run's year; its facts (size,
    # 规上, sector, credit) from the row in force for the year of the line's matter.
    firms = in_force(applicants, year).drop(YEARLY_FACTS)
    # a pass over lines paid late schedules nothing: the installments falling due are the year's own pass's
    sched = scheduled_installments(history if scheduled else history.clear(), clauses, year, firms)
    new = candidates.with_columns(pl.lit(1, pl.Int64).alias("installment"), pl.lit(False).alias("scheduled"))
    first_share = tables["shares"].filter(pl.col("installment") == 1).select("clause_id", pl.col("cum_ppm").alias("_first_ppm"))
    # an award inferred from a prior payment (SPEC §3) says so, with the division it came from
    inferred = pl.format("（奖励总额按历史兑付第 1 期 {} ÷ {} 推算）", fmt_fen_expr(pl.col("inferred_from_fen")),
                         fmt_ppm_expr(pl.col("_first_ppm")))
    later = sched.join(first_share, on="clause_id", how="left").with_columns(
        pl.lit(year, pl.Int64).alias("year_of_matter"),  # an installment falling due is checked on this year's facts
        pl.lit(dt.date(year, 12, 31)).alias("line_date"), pl.lit(True).alias("in_window"),
        pl.lit(True).alias("recognized"), pl.lit(True).alias("condition_met"), pl.lit(True).alias("scheduled"),
        pl.concat_str(pl.format("{} 年核定奖励的第 {} 期", pl.col("earned_year"), pl.col("installment")),
                      pl.when(pl.col("award_inferred")).then(inferred), ignore_nulls=True).alias("detail"),
        pl.lit("以往年度兑付记录").alias("source"), pl.col("matter_id").alias("supersede_key"),
    ).drop("_first_ppm", "award_inferred", "inferred_from_fen")
    return (
        pl.concat([new, later], how="diagonal_relaxed")
        .with_row_index("_line")
        .join(clauses, on="clause_id", how="left")
        .pipe(_with_params, params)
        .join(firms.rename({"region": "applicant_region"}), on="applicant_id", how="left")
        .pipe(facts_for, applicants, "year_of_matter", YEARLY_FACTS)
        .join(tables["size_rates"], on=["clause_id", "size"], how="left")
        .with_columns(
            pl.coalesce("size_rate_ppm", "rate_ppm", "p_rate_ppm").alias("rate_ppm"),
            pl.coalesce("annual_cap_fen", "p_annual_cap_fen").alias("annual_cap_fen"),
            pl.coalesce("item_cap_fen", "p_item_cap_fen").alias("item_cap_fen"),
            pl.coalesce("fixed_fen", "p_amount_fen").alias("fixed_fen"),
            # the date a dated administrator value the line uses took effect (null: plain, or the rule's own)
            pl.when(pl.col("size_rate_ppm").is_null() & pl.col("rate_ppm").is_null()).then("p_rate_from").alias("rate_from"),
            pl.when(pl.col("annual_cap_fen").is_null()).then("p_annual_cap_from").alias("annual_cap_from"),
            pl.when(pl.col("item_cap_fen").is_null()).then("p_item_cap_from").alias("item_cap_from"),
            pl.when(pl.col("fixed_fen").is_null()).then("p_amount_from").alias("fixed_from"),
        )
        .with_columns(
            eligibility_reason(year).alias("blocked"),
            # a line of an earlier year's matter, paid late in this run (SPEC §3)
            (pl.col("year_of_matter") < year).alias("late"),
        )
    )


def _with_params(lines: pl.DataFrame, params: pl.DataFrame) -> pl.DataFrame:
    """The administrator's values in force on each line's date (SPEC §5.9): the row of its clause with the
    latest ``p_from`` on or before ``line_date`` (PARAM_SCHEMA). Without a dated value, one row a clause."""
    if params.height == params.get_column("clause_id").n_unique():
        return lines.join(params.drop("p_from"), on="clause_id", how="left")
    return (
        lines.sort("line_date", nulls_last=True)
        .join_asof(params.sort("p_from"), left_on="line_date", right_on="p_from", by="clause_id", strategy="backward",
                   check_sortedness=False)  # both sorted just above
        .drop("p_from")
        .sort("_line")
    )


def approved_left(lines: pl.DataFrame, history: pl.DataFrame) -> pl.DataFrame:
    """What earlier years committed to the line's matter under its clause (``paid_matter_fen``, read once
    here for every later step), and SPEC §3 经认定…never more than the approved amount. Where the clause's
    approved amount is the matter's total (``approved_scope`` matter: a project's support approved as a
    whole), that counts against it (``approved_paid_fen``; ``approved_left_fen`` what remains), so a project
    paid on its yearly rows does not take the amount again every year; a later recognition replaces the
    amount (a raise opens the difference). Elsewhere (``line``) it bounds each line."""
    matter = ["applicant_id", "clause_id", "matter_id"]
    whole = LIVE & pl.col("approved_fen").is_not_null() & (pl.col("approved_scope") == "matter")
    return lines.join(_paid_before(history, matter, "paid_matter_fen"), on=matter, how="left").with_columns(
        pl.col("paid_matter_fen").fill_null(0),
    ).with_columns(
        pl.when(whole).then(pl.col("paid_matter_fen")).alias("approved_paid_fen"),
        pl.when(whole).then((pl.col("approved_fen") - pl.col("paid_matter_fen")).clip(lower_bound=0))
        .otherwise(pl.col("approved_fen")).alias("approved_left_fen"),
    )


def formula(lines: pl.DataFrame, tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """§5.3 the formula of the line's kind (``formula_fen``, at ``eff_rate_ppm``), then ``gross_fen``: the
    formula bounded by what is left of an approved amount, 0 for a blocked line, the award for a later installment.
    An approved rate never exceeds the rule's rate or maximum."""
    lines = (
        _progressive(lines, tables["tiers"])
        .join(tables["levels"].select("clause_id", "level", "level_cap_fen", "level_cumulative_cap_fen"),
              on=["clause_id", "level"], how="left")
        .with_columns(pl.coalesce("level_cumulative_cap_fen", "cumulative_cap_fen").alias("cumulative_cap_fen"))
    )
    rule_rate = pl.coalesce("rate_ppm", "max_rate_ppm")
    # A clause with no recognition whose text gives only a ceiling (jinan.9a 不超过…5%) pays the
    # ceiling, or the administrator's lower rate (params `rate`); never more than the ceiling.
    eff_rate = (
        pl.when(pl.col("approved_ppm").is_not_null()).then(_min(pl.col("approved_ppm"), rule_rate))
        .when(~pl.col("recognition")).then(_min(rule_rate, pl.col("max_rate_ppm")))
        .otherwise(pl.col("rate_ppm"))
    )
    kind = pl.col("kind")
    # rate × base plus the capped rate × second amount, in millionths of a fen, rounded once
    second_micro = _min(micro(pl.col("second_fen"), pl.col("eff_rate_ppm")), micro(pl.col("second_cap_fen"), PPM)).fill_null(0)
    rated = round_micro(micro(pl.col("base_fen"), pl.col("eff_rate_ppm")) + second_micro)
    amount = (
        pl.when(kind.is_in(RATED_KINDS)).then(rated)
        .when(kind == "in_kind").then(0)
        .when(kind == "progressive").then(pl.col("tiered_fen"))
        .when(kind == "fixed").then(pl.col("fixed_fen"))
        .when(kind == "per_unit").then(pl.col("unit_fen").cast(pl.Int128) * pl.col("quantity"))
        .when(kind == "approved").then(pl.col("approved_fen"))
        .when(kind == "first_reach").then(
            pl.when(pl.col("eff_rate_ppm").is_not_null()).then(apply_rate(pl.col("base_fen"), pl.col("eff_rate_ppm")))
            .otherwise(pl.col("fixed_fen")))
        .otherwise(pl.col("target_fen"))  # level, ladder
    )
    lines = lines.with_columns(
        eff_rate.alias("eff_rate_ppm"),
        pl.when(kind == "in_kind").then(pl.min_horizontal("quantity", "in_kind_max")).alias("in_kind_quantity"),
    ).with_columns(amount.fill_null(0).cast(pl.Int64).alias("formula_fen"))  # strict: raises, never wraps
    return lines.with_columns(
        pl.when(pl.col("scheduled")).then(pl.col("award_fen"))
        .when(pl.col("blocked").is_not_null()).then(0)
        .when(kind != "approved").then(_min(pl.col("formula_fen"), pl.col("approved_left_fen")))
        .otherwise(pl.col("formula_fen")).alias("gross_fen")
    )


def level_up_and_periods(lines: pl.DataFrame, history: pl.DataFrame, year: int) -> pl.DataFrame:
    """§5.8 the level-up difference (``after_level_up_fen``) and §5.7 the one-off and period limits
    (``period_block``), from what earlier years paid the matter (``paid_matter_fen``, from ``approved_left``)
    and the applicant under the clause."""
    matter, applicant = ["applicant_id", "clause_id", "matter_id"], ["applicant_id", "clause_id"]
    lines = (
        lines.join(_paid_before(history, applicant, "paid_applicant_fen"), on=applicant, how="left")
        .join(_years_paid(history, matter, "m"), on=matter, how="left")
        .join(_years_paid(history, applicant, "a"), on=applicant, how="left")
        .with_columns(pl.col("paid_applicant_fen").fill_null(0))
    )
    first_year = _by_scope("period_scope", "first_year_m", "first_year_a")
    n_years = _by_scope("period_scope", "n_years_m", "n_years_a")
    # 三年后 counts by date: the line's date at least N years after the last paid line's date
    gap_ends = _by_scope("period_scope", "last_paid_on_m", "last_paid_on_a").dt.offset_by(pl.format("{}y", pl.col("min_gap_years")))
    return lines.with_columns(
        pl.when(LIVE & pl.col("level_up")).then((pl.col("gross_fen") - pl.col("paid_matter_fen")).clip(lower_bound=0))
        .otherwise(pl.col("gross_fen")).alias("after_level_up_fen"),
        pl.when(~LIVE).then(None)
        .when(pl.col("one_off") & (_by_scope("one_off_scope", "paid_matter_fen", "paid_applicant_fen") > 0)).then(pl.lit(PERIOD_REASONS["one_off"]))
        # 首次达到 is reached once: an award under the clause paid before (a prior payment too) was the first
        .when((pl.col("kind") == "first_reach") & (pl.col("paid_matter_fen") > 0)).then(pl.lit(PERIOD_REASONS["one_off"]))
        .when(pl.col("first_year_only") & first_year.is_not_null()).then(pl.lit(PERIOD_REASONS["first_year_only"]))
        .when((pl.col("year_of_matter") - first_year) >= pl.col("consecutive_years")).then(pl.lit(PERIOD_REASONS["consecutive_years"]))
        .when(n_years >= pl.col("max_years")).then(pl.lit(PERIOD_REASONS["max_years"]))
        .when(pl.col("line_date") < gap_ends).then(pl.lit(PERIOD_REASONS["min_gap_years"]))
        .alias("period_block"),
    )


def first_in_slot(lines: pl.DataFrame) -> pl.DataFrame:
    """§5.7 within the year: a one-off award, or one that needs years between payments, is paid for the
    first line of the year in its scope (by date, then matter); the others wait or never come."""
    slot_order = ["line_date", "matter_id"]
    open_ = LIVE & pl.col("blocked").is_null() & pl.col("period_block").is_null() & (pl.col("after_level_up_fen") > 0)
    one_off_group = [pl.col("applicant_id"), pl.col("clause_id"),
                     pl.when(pl.col("one_off_scope") == "applicant").then(pl.lit("")).otherwise(pl.col("matter_id"))]
    gap_group = [pl.col("applicant_id"), pl.col("clause_id"),
                 pl.when(pl.col("period_scope") == "applicant").then(pl.lit("")).otherwise(pl.col("matter_id"))]
    not_first = lambda group: pl.int_range(pl.len()).over(group, order_by=slot_order) > 0  # noqa: E731
    limited = lines.filter(open_ & (pl.col("one_off") | pl.col("min_gap_years").is_not_null())).select(
        "_line",
        pl.when(pl.col("one_off") & not_first(one_off_group)).then(pl.lit(PERIOD_REASONS["one_off"]))
        .when(pl.col("min_gap_years").is_not_null() & not_first(gap_group)).then(pl.lit(PERIOD_REASONS["min_gap_years"]))
        .alias("_slot_block"),
    )
    return lines.join(limited, on="_line", how="left").with_columns(
        pl.coalesce("period_block", "_slot_block").alias("period_block")
    ).drop("_slot_block")


def item_cap(lines: pl.DataFrame) -> pl.DataFrame:
    """§5.4 the per-item cap (a level's own cap first): ``after_item_fen``; 0 for a line a period stops.
    Also what the cumulative cap will count as paid before (``cum_paid_before_fen``)."""
    cap = pl.coalesce("level_cap_fen", "item_cap_fen")
    return lines.with_columns(
        pl.when(pl.col("period_block").is_not_null()).then(0)
        .otherwise(_min(pl.col("after_level_up_fen"), cap)).alias("after_item_fen"),
        cap.alias("item_cap_applied_fen"),
        _by_scope("cumulative_scope", "paid_matter_fen", "paid_applicant_fen").alias("cum_paid_before_fen"),
    )


def keep_the_highest(lines: pl.DataFrame, history: pl.DataFrame, tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """§5.5 就高不重复: each line bounded as if it were alone (``alone_fen``); less what the matter already
    received in earlier years under the competing clauses (``after_competing_fen``); then, among this
    year's lines of one matter and part, the highest is kept and the others are ``superseded_by`` it
    (``kept_fen``)."""
    cum_room = (pl.col("cumulative_cap_fen") - pl.col("cum_paid_before_fen")).clip(lower_bound=0)
    lines = lines.with_columns(
        pl.when(~LIVE).then(pl.col("after_item_fen"))
        .otherwise(_min(_min(pl.col("after_item_fen"), pl.col("annual_cap_fen")), cum_room)).alias("alone_fen")
    )
    # Across years too: a line pays at most its bounded amount minus what the matter already
    # received under the competing clauses (the same matter and part, another clause).
    part = ["applicant_id", "supersede_key", "paid_for"]
    competing = _competing_paid(history, tables["supersede_prefixes"], tables["clauses"])
    matter_total = competing.select(*part, "_matter_fen", "_paid_clauses").unique(part)
    own = competing.select(*part, "clause_id", "_own_fen")
    lines = (
        lines.join(matter_total, on=part, how="left")
        .join(own, on=[*part, "clause_id"], how="left")
        .with_columns(
            pl.when(LIVE).then(pl.col("_matter_fen").fill_null(0) - pl.col("_own_fen").fill_null(0))
            .otherwise(0).alias("competing_paid_fen"),
            pl.col("_paid_clauses").list.set_difference(pl.concat_list(pl.col("clause_id")))
            .list.sort().list.join(",").alias("competing_clauses"),
        )
        .with_columns(
            pl.when(pl.col("competing_paid_fen") > 0)
            .then((pl.col("alone_fen") - pl.col("competing_paid_fen")).clip(lower_bound=0))
            .otherwise(pl.col("alone_fen")).alias("after_competing_fen")
        )
        .drop("_matter_fen", "_paid_clauses", "_own_fen")
    )
    contest = [pl.col(c) for c in part]
    rank = pl.struct(-pl.col("after_competing_fen"), pl.col("clause_order")).rank("ordinal").over(contest)
    winner = pl.col("clause_id").sort_by([-pl.col("after_competing_fen"), pl.col("clause_order")]).first().over(contest)
    in_contest = LIVE & (pl.col("after_competing_fen") > 0)
    ranked = lines.filter(in_contest).with_columns(rank.alias("_rank"), winner.alias("_winner")).select("_line", "_rank", "_winner")
    lines = lines.join(ranked, on="_line", how="left").with_columns(
        pl.when(pl.col("_rank") > 1).then(pl.col("_winner")).alias("superseded_by")
    ).drop("_rank", "_winner")
    kept = (
        pl.when(pl.col("superseded_by").is_not_null()).then(0)
        .when(pl.col("competing_paid_fen") > 0).then(pl.min_horizontal("after_item_fen", "after_competing_fen"))
        .otherwise(pl.col("after_item_fen"))
    )
    return lines.with_columns(kept.alias("kept_fen"))


FILL_ORDER = ["line_date", "matter_id", "clause_order"]  # the order a cap is filled in: date, then matter


def annual_caps(lines: pl.DataFrame, history: pl.DataFrame, tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """§5.6 annual caps per applicant and clause (or group of clauses) and the year the matters belong to,
    filled in date order: ``after_annual_fen``. A line paid late for an earlier year fills what that year's
    cap left (``annual_paid_before_fen``: what the group paid for that year's matters); this year's lines
    have no earlier payment of their year."""
    group = ["applicant_id", "annual_group", "year_of_matter"]
    keyed = history.join(tables["clauses"].select("clause_id", "annual_group"), on="clause_id")
    lines = lines.join(_paid_before(keyed, group, "annual_paid_before_fen"), on=group, how="left")
    return _fill(lines, "kept_fen", "annual_cap_fen", group, FILL_ORDER, "after_annual_fen", already="annual_paid_before_fen")


def cumulative_caps(lines: pl.DataFrame) -> pl.DataFrame:
    """§5.7 cumulative caps per matter or applicant, counting what was paid before: ``after_cumulative_fen``."""
    cum_group = pl.when(pl.col("cumulative_scope") == "applicant").then(pl.lit("")).otherwise(pl.col("matter_id"))
    return _fill(lines.with_columns(cum_group.alias("_cum_group")), "after_annual_fen", "cumulative_cap_fen",
                 ["applicant_id", "clause_id", "_cum_group"], FILL_ORDER, "after_cumulative_fen",
                 already="cum_paid_before_fen").drop("_cum_group")


def installment_shares(lines: pl.DataFrame, tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """§5.10 installments: the award (``award_fen``) is paid in shares; the last share takes the remainder
    (``payable_fen``)."""
    return (
        lines.with_columns(
            # an earlier award's installment: its award, never above the clause's own cap (an award inferred from
            # a prior payment may be)
            pl.when(pl.col("scheduled")).then(pl.min_horizontal("award_fen", "after_item_fen"))
            .otherwise(pl.col("after_cumulative_fen")).alias("award_fen")
        )
        .join(tables["shares"], on=["clause_id", "installment"], how="left")
        .with_columns(
            pl.when(pl.col("blocked").is_not_null()).then(0)
            .otherwise(apply_rate(pl.col("award_fen"), pl.col("cum_ppm")) - apply_rate(pl.col("award_fen"), pl.col("prev_cum_ppm")))
            .alias("payable_fen"),
        )
    )


def paid_in_this_run(lines: pl.DataFrame, year: int) -> pl.DataFrame:
    """Lines of an earlier year's matter paid late in this run, as history (HISTORY_SCHEMA) for the lines
    computed after them: this year's lines count them as paid before (keep the highest, period limits,
    approved totals, cumulative caps), as they would have had the recognition come in time."""
    return lines.filter((pl.col("payable_fen") > 0) | (pl.col("award_fen") > 0)).select(
        *(pl.col(c).cast(t) if c in lines.columns else pl.lit(None, t).alias(c) for c, t in HISTORY_SCHEMA.items()
          if c not in ("year", "dated_on")),
        pl.lit(year, pl.Int64).alias("year"), paid_on(pl.lit(year)).alias("dated_on"),
    ).select(list(HISTORY_SCHEMA))


def _require_params(lines: pl.DataFrame, compiled: Region) -> None:
    """A live line of a clause whose administrator parameter is missing on its date (``p_missing``: not
    given, or dated after the line) and not given otherwise (a size rate) stops the run (SPEC §5.9)."""
    effective = {"rate": "rate_ppm", "annual_cap": "annual_cap_fen", "item_cap": "item_cap_fen", "amount": "fixed_fen"}
    live = lines.filter(pl.col("blocked").is_null() & ~pl.col("scheduled"))
    for name, col in effective.items():
        missing = live.filter(pl.col("p_missing").list.contains(name) & pl.col(col).is_null())
        if not missing.is_empty():
            first = missing.sort("clause_id", "line_date").row(0, named=True)
            raise compiled.missing_parameter(f"{first['clause_id']}.{name}", first["line_date"])


def clawbacks(applicants: pl.DataFrame, history: pl.DataFrame, recovered: pl.DataFrame, year: int, region: str,
              relocation_years: int | None, relocation_text: str | None, fraud_text: str | None) -> pl.DataFrame:
    """SPEC §5.11: what to recover in the run for the year the fraud or relocation falls in.

    Fraud recovers everything received; a move out before the
    `relocation_years`-th anniversary of the first line paid under the policy
    (its date: the ledger row's, 31 December of its year for a line summing a
    year's figures or a prior payment) recovers everything received under the
    policy. Reported once, in that year's run; a rerun of that year replaces it.
    """
    keys = ["applicant_id", "clause_id", "matter_id"]
    recovered = recovered.group_by(keys).agg(sum_fen(pl.col("amount_fen")).alias("_recovered"))
    received = (
        history.group_by(keys).agg(sum_fen(pl.col("payable_fen")).alias("amount_fen"))
        .join(recovered, on=keys, how="left")
        .with_columns((pl.col("amount_fen") - pl.col("_recovered").fill_null(0)).alias("amount_fen"))
        .filter(pl.col("amount_fen") > 0)
        .drop("_recovered")
    )
    first_paid = history.filter(pl.col("payable_fen") > 0).group_by("applicant_id").agg(pl.col("dated_on").min().alias("first_paid_on"))
    a = applicants.join(first_paid, on="applicant_id", how="left")
    fraud = a.filter(pl.col("fraud_found_on").dt.year() == year).select(
        "applicant_id",
        pl.format("{} 查实弄虚作假：追回已获得的全部支持资金{}", pl.col("fraud_found_on").dt.to_string("%Y-%m-%d"),
                  pl.lit(f"（{fraud_text}）" if fraud_text else "")).alias("reason"),
    )
    parts = [fraud]
    if relocation_years is not None:
        clock_ends = pl.col("first_paid_on").dt.offset_by(f"{relocation_years}y")
        moved = a.filter(
            (pl.col("relocated_out_on").dt.year() == year)
            & (pl.col("relocated_out_on") < clock_ends)
            & ~pl.col("applicant_id").is_in(fraud.get_column("applicant_id").implode())
        ).select(
            "applicant_id",
            pl.format("{} 迁出 {}，在本政策下首次获得支持（{}）后 {} 年内：退回已获得的全部支持资金{}",
                      pl.col("relocated_out_on").dt.to_string("%Y-%m-%d"), pl.lit(region),
                      pl.col("first_paid_on").dt.to_string("%Y-%m-%d"), pl.lit(relocation_years),
                      pl.lit(f"（{relocation_text}）" if relocation_text else "")).alias("reason"),
        )
        parts.append(moved)
    who = pl.concat(parts)
    return who.join(received, on="applicant_id").select(list(CLAWBACK_SCHEMA)).sort("applicant_id", "clause_id", "matter_id")
