"""Every line in words: the chain of steps (in Chinese) and the reason codes (SPEC §5.12).

Reads only the step columns that ``transforms.compute`` keeps, so the audit,
``disburse explain`` and the finance files tell one story. Each step that
changed a line is decided once (FLAGS); its words and its reason code are
both rendered from that decision; the words of a code come from
``disburse.phrases``, the one table the audit and payments.xlsx use too.
"""

from __future__ import annotations

import polars as pl

from disburse.compiled import RATED_KINDS
from disburse.money import fmt_fen_expr as F
from disburse.money import fmt_ppm_expr as P
from disburse.phrases import REASONS, reasons_expr
from transforms.budget import REASONS as BUDGET_REASONS
from transforms.compute import PERIOD_REASONS, eligibility_checks

c = pl.col
FLAGS = {
    "late_recognition": c("late").fill_null(False),
    "approved_amount": ~c("scheduled") & c("approved_left_fen").is_not_null() & (c("approved_left_fen") < c("formula_fen")),
    "approved_rate_capped": ~c("scheduled") & (c("approved_ppm") > c("eff_rate_ppm")),
    "level_up": ~c("scheduled") & c("level_up") & (c("paid_matter_fen") > 0),
    "cap:item": c("period_block").is_null() & (c("after_item_fen") < c("after_level_up_fen")),
    "paid_before_under": ~c("scheduled") & (c("competing_paid_fen") > 0) & (c("after_item_fen") > 0),
    "superseded": c("superseded_by").is_not_null(),
    "cap:annual": c("after_annual_fen") < c("kept_fen"),
    "cap:cumulative": c("after_cumulative_fen") < c("after_annual_fen"),
    "installment": c("installments") > 1,
    "in_kind": (c("kind") == "in_kind") & c("blocked").is_null(),
}


# Reason codes that carry a value after their colon, by the flag that sets them.
VALUED = {"paid_before_under": "paid_before_under", "superseded": "superseded_by", "installment": "installment"}


def reason_codes() -> set[str]:
    """Every reason code a line can carry (a valued code by its name before the colon)."""
    return ({code for _, code in eligibility_checks(2000)} | set(PERIOD_REASONS.values())
            | {VALUED.get(name, name) for name in FLAGS} | set(BUDGET_REASONS))


def _flag(name: str) -> pl.Expr:
    return c(f"_flag_{name}").fill_null(False)


def _word(code: str) -> pl.Expr:
    return pl.lit(REASONS[code])


def _formula() -> pl.Expr:
    kind = c("kind")
    base_text = pl.when(c("excluded_fen") > 0).then(
        pl.format("{}（另有 {} 不在政策有效期内，未计入）", F(c("base_fen")), F(c("excluded_fen")))
    ).otherwise(F(c("base_fen")))
    return (
        pl.when(c("second_fen").is_not_null())
        .then(pl.format("{} × {} + {} × {}（最多 {}）= {}", P(c("eff_rate_ppm")), base_text, P(c("eff_rate_ppm")),
                        F(c("second_fen")), F(c("second_cap_fen")), F(c("formula_fen"))))
        .when(kind.is_in(RATED_KINDS) | ((kind == "first_reach") & c("eff_rate_ppm").is_not_null()))
        .then(pl.format("{} × {} = {}", P(c("eff_rate_ppm")), base_text, F(c("formula_fen"))))
        .when(kind == "in_kind").then(pl.format("{}：{} {}（{}）", _word("in_kind"), c("in_kind_quantity"), c("in_kind_unit"),
                                                c("in_kind_text")))
        .when(kind == "progressive").then(pl.format("分段计算（{}），基数 {} = {}", c("tiers_text"), base_text, F(c("formula_fen"))))
        .when(kind.is_in(["fixed", "first_reach"])).then(pl.format("定额奖励 {}", F(c("formula_fen"))))
        .when(kind == "per_unit").then(pl.format("{} × {} = {}", F(c("unit_fen")), c("quantity"), F(c("formula_fen"))))
        .when(kind == "approved").then(pl.format("核定金额 {}", F(c("formula_fen"))))
        .otherwise(pl.format("奖励 {}", F(c("formula_fen"))))
    )


# A dated administrator value a line uses (SPEC §5.9): its words, its value and the column of the date it took effect.
DATED_PARAMS = [("比例", P(c("p_rate_ppm")), "rate_from"), (REASONS["cap:annual"], F(c("p_annual_cap_fen")), "annual_cap_from"),
                (REASONS["cap:item"], F(c("p_item_cap_fen")), "item_cap_from"), ("定额", F(c("p_amount_fen")), "fixed_from")]


def _dated_params() -> pl.Expr:
    """'管理部门参数 比例 25%（自 2023-07-01 起）': each dated value in force on the line's date that it uses."""
    parts = [pl.when(c(since).is_not_null()).then(pl.format("{} {}（自 {} 起）", pl.lit(word), value, c(since).dt.to_string("%Y-%m-%d")))
             for word, value, since in DATED_PARAMS]
    used = ~c("scheduled") & pl.any_horizontal(c(since).is_not_null() for _, _, since in DATED_PARAMS)
    return pl.when(used).then(pl.format("管理部门参数 {}", pl.concat_str(parts, separator="，", ignore_nulls=True)))


def _steps() -> list[pl.Expr]:
    return [
        pl.when(_flag("late_recognition")).then(pl.format(
            "补付以往年度事项：属 {} 年度，{}晚于该年度，按 {} 年度的规定计算、计入该年度的上限，在本年度补付",
            c("year_of_matter"),
            pl.when(c("recognized_on").is_not_null()).then(pl.format("{} 认定", c("recognized_on").dt.to_string("%Y-%m-%d")))
            .otherwise(pl.lit("验收记录")), c("year_of_matter"))),
        pl.when(c("detail").is_not_null()).then(pl.format("{}：{}", c("source"), c("detail"))).otherwise(c("source")),
        _dated_params(),
        pl.when(_flag("approved_rate_capped"))
        .then(pl.format("核定比例 {} 高于条款比例 {}，按 {}", P(c("approved_ppm")), P(c("eff_rate_ppm")), P(c("eff_rate_ppm")))),
        pl.when(c("scheduled")).then(pl.format("{} 年核定奖励 {}", c("earned_year"), F(c("award_fen")))).otherwise(_formula()),
        pl.when(_flag("approved_amount")).then(
            pl.when(c("approved_paid_fen") > 0)
            .then(pl.format("{} {}（该事项合计），减去以往年度已付 {}，余 {}", _word("approved_amount"), F(c("approved_fen")),
                            F(c("approved_paid_fen")), F(c("approved_left_fen"))))
            .otherwise(pl.format("{} {}", _word("approved_amount"), F(c("approved_fen"))))),
        pl.when(_flag("level_up"))
        .then(pl.format("晋级补差：减去此前已付 {} = {}", F(c("paid_matter_fen")), F(c("after_level_up_fen")))),
        pl.when(c("period_block").is_not_null()).then(pl.format("0.00（{}）", reasons_expr("period_block"))),
        pl.when(_flag("cap:item")).then(pl.format("{} {} → {}", _word("cap:item"), F(c("item_cap_applied_fen")), F(c("after_item_fen")))),
        pl.when(_flag("paid_before_under"))
        .then(pl.format("{} 减去同一事项以往年度在 {} 下已获得的 {}（不重复享受）= {}",
                        F(c("alone_fen")), c("competing_clauses"), F(c("competing_paid_fen")), F(c("after_competing_fen")))),
        pl.when(_flag("superseded")).then(pl.format("0.00：就高不重复，由 {} 替代（同一事项只取最高一项）", c("superseded_by"))),
        pl.when(_flag("cap:annual") & (c("annual_paid_before_fen").fill_null(0) > 0))
        .then(pl.format("{} 年度{} {}，该年度已付 {}（按日期先后计入）→ {}", c("year_of_matter"), _word("cap:annual"),
                        F(c("annual_cap_fen")), F(c("annual_paid_before_fen")), F(c("after_annual_fen"))))
        .when(_flag("cap:annual"))
        .then(pl.format("{} {}（按日期先后计入）→ {}", _word("cap:annual"), F(c("annual_cap_fen")), F(c("after_annual_fen")))),
        pl.when(_flag("cap:cumulative"))
        .then(pl.format("{} {}，此前已付 {} → {}", _word("cap:cumulative"), F(c("cumulative_cap_fen")),
                        F(c("cum_paid_before_fen")), F(c("after_cumulative_fen")))),
        pl.when(_flag("installment")).then(pl.format("分期拨付第 {}/{} 期：{}", c("installment"), c("installments"), F(c("payable_fen")))),
        pl.when(c("blocked").is_not_null()).then(pl.format("不予支付：{}", reasons_expr("blocked"))),
    ]


def _reasons() -> list[pl.Expr]:
    return [
        pl.when(_flag("late_recognition")).then(pl.lit("late_recognition")),
        c("blocked"),
        *(pl.when(_flag(name)).then(pl.lit(name)) for name in ("approved_amount", "approved_rate_capped", "level_up")),
        c("period_block"),
        pl.when(_flag("cap:item")).then(pl.lit("cap:item")),
        pl.when(_flag("paid_before_under")).then(pl.format("{}:{}", pl.lit(VALUED["paid_before_under"]), c("competing_clauses"))),
        pl.when(_flag("superseded")).then(pl.format("{}:{}", pl.lit(VALUED["superseded"]), c("superseded_by"))),
        *(pl.when(_flag(name)).then(pl.lit(name)) for name in ("cap:annual", "cap:cumulative")),
        pl.when(_flag("installment")).then(pl.format("{}:{}/{}", pl.lit(VALUED["installment"]), c("installment"), c("installments"))),
        pl.when(_flag("in_kind")).then(pl.lit("in_kind")),
    ]


def explain(lines: pl.DataFrame) -> pl.DataFrame:
    """Adds ``steps`` (Chinese text, steps joined by ' → ') and ``reasons`` (codes joined by ';')."""
    # Lazy, so the amounts several steps print (formula, caps) are formatted once (common subexpressions).
    flagged = lines.lazy().with_columns(cond.alias(f"_flag_{name}") for name, cond in FLAGS.items())
    return flagged.with_columns(  # a step or code that did not apply is null, and left out
        pl.concat_str(_steps(), separator=" → ", ignore_nulls=True).alias("steps"),
        pl.concat_str(_reasons(), separator=";", ignore_nulls=True).alias("reasons"),
    ).drop(f"_flag_{name}" for name in FLAGS).collect()
