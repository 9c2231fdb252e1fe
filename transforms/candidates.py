"""Candidate lines: what each clause could pay this year, before any modifier.

Grain of the result: one row per applicant, clause and matter for the year.
Each rule's base is read from its ledger with vectorised polars expressions;
the only loop is over the rules of one region.

Columns (CANDIDATE_SCHEMA): the line's key, its date (for fill order), the
base amount, whether its dates fall in the policy window, what was left out
for being outside it, the recognition that backs it (level, quantity, approved
amount or rate) and, for kinds whose amount comes from history (ladder,
level, first reach, growth), the ``target_fen`` worked out here.
"""

from __future__ import annotations

import copy
import datetime as dt

import polars as pl

from disburse.compiled import FROM_HISTORY_KINDS, Clause
from disburse.ledgers import LEDGERS, RECOGNITION_LEVELS_ZH, ROW, SECTORS_ZH, SIZES_ZH
from disburse.money import PPM, fmt_fen_expr, micro, sum_fen
from disburse.phrases import field_name, rows_name
from transforms.facts import facts_for

CANDIDATE_SCHEMA = {
    "applicant_id": pl.String,
    "clause_id": pl.String,
    "matter_id": pl.String,
    "line_date": pl.Date,
    "base_fen": pl.Int64,
    "second_fen": pl.Int64,
    "in_window": pl.Boolean,
    "excluded_fen": pl.Int64,
    "source": pl.String,
    "recognized": pl.Boolean,
    "recognized_on": pl.Date,
    "level": pl.String,
    "quantity": pl.Int64,
    "approved_fen": pl.Int64,
    "approved_ppm": pl.Int64,
    "target_fen": pl.Int64,
    "condition_met": pl.Boolean,
    "detail": pl.String,
    "supersede_key": pl.String,
    # the year the line's matter belongs to: the run's year, or an earlier one for a line paid late
    # (a recognition decided after its year, SPEC §3; an acceptance recorded after its year)
    "year_of_matter": pl.Int64,
}

REC_COLUMNS = ["level", "quantity", "approved_amount", "approved_rate", "recognized_on"]
APPROVED_COLUMNS = ("approved_amount", "approved_rate")


class Context:
    """What every extraction needs: the ledgers of one region's applicants, the year, the window."""

    def __init__(self, ledgers: dict[str, pl.DataFrame], region_applicants: pl.DataFrame,
                 year: int, window: tuple[dt.date, dt.date], levels: pl.DataFrame, steps: pl.DataFrame,
                 *, of_region: bool = False):
        """LEDGERS: every accepted row, filtered here to REGION_APPLICANTS' rows; or, with OF_REGION,
        already the region's (``Validated.by_region``)."""
        ids = region_applicants.select("applicant_id")
        self.ledgers = ledgers if of_region else {
            name: df.join(ids, on="applicant_id", how="semi") if LEDGERS[name].has_applicant else df
            for name, df in ledgers.items()
        }
        self.year = year
        # the last year whose recognitions count: the run's year, also while a late line of an earlier
        # year is extracted (``as_of``)
        self.known_upto = year
        self.start, self.end = window
        self.levels = levels
        self.steps = steps

    @property
    def year_end(self) -> dt.date:
        return dt.date(self.year, 12, 31)

    def date_in_window(self, col: str | pl.Expr) -> pl.Expr:
        e = pl.col(col) if isinstance(col, str) else col
        return e.is_between(pl.lit(self.start), pl.lit(self.end)).fill_null(False)

    def year_in_window(self, col: str = "year") -> pl.Expr:
        return pl.col(col).is_between(self.start.year, self.end.year)

    def recognitions(self, clause_id: str, *, upto: bool = False) -> pl.DataFrame:
        rec = self.ledgers["recognitions"].filter(pl.col("clause_id") == clause_id)
        return rec.filter(pl.col("year") <= self.known_upto) if upto else rec.filter(pl.col("year") == self.year)

    def as_of(self, year: int, ledgers: dict[str, pl.DataFrame]) -> "Context":
        """The same run's view of an earlier YEAR's rows (LEDGERS), with the recognitions known now."""
        other = copy.copy(self)
        other.year, other.ledgers = year, ledgers
        return other


def _min_fen(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """The smaller of two amounts; a missing bound does not bind."""
    return pl.min_horizontal(a, b.fill_null(a))


def _where(rule: Clause) -> pl.Expr:
    expr = pl.lit(True)
    for col, values in rule.base.where.items():
        expr = expr & pl.col(col).is_in(values)
    for col, (low, high) in rule.base.between_fen.items():
        if low is not None:
            expr = expr & (pl.col(col) >= low)
        if high is not None:
            expr = expr & (pl.col(col) <= high)
    return expr


def _investee_conditions(df: pl.DataFrame, rule: Clause, ctx: Context) -> pl.DataFrame:
    """Marks rows whose own applicant (the investee, when the payee is another) fails the base's conditions."""
    b = rule.base
    if b.max_main_revenue_fen is None and b.investee_sector is None and b.investee_size is None:
        return df
    revenue = ctx.ledgers["revenue"].select("applicant_id", "year", pl.col("main_revenue").alias("_revenue"))
    checks = []
    if b.investee_sector is not None:
        checks.append((pl.col("_sector").is_in(b.investee_sector), pl.format("被投企业行业 {} 不符合条款", _zh("_sector", SECTORS_ZH))))
    if b.investee_size is not None:
        checks.append((pl.col("_size").is_in(b.investee_size), pl.format("被投企业规模 {} 不符合条款", _zh("_size", SIZES_ZH))))
    if b.max_main_revenue_fen is not None:
        ceiling = b.max_main_revenue_fen
        checks.append((pl.col("_revenue").is_not_null(), pl.lit("被投企业当年没有营业收入数据")))
        checks.append((pl.col("_revenue") <= ceiling, pl.format("被投企业主营业务收入 {} 高于 {}", fmt_fen_expr(pl.col("_revenue")),
                                                                fmt_fen_expr(pl.lit(ceiling)))))
    detail = pl.lit("被投企业条件满足")
    for ok, why in reversed(checks):
        detail = pl.when(~ok.fill_null(False)).then(why).otherwise(detail)
    met = pl.all_horizontal([ok.fill_null(False) for ok, _ in checks])
    # the investee's sector and size as they were in the row's year (its row of applicants in force then)
    return (
        df.join(revenue, on=["applicant_id", "year"], how="left")
        .pipe(facts_for, ctx.ledgers["applicants"], "year", ["sector", "size"], rename={"sector": "_sector", "size": "_size"})
        .with_columns(met.alias("condition_met"), detail.alias("detail"))
    )


def matter_namespace(rule: Clause) -> str:
    """The ledger whose row ids a rule's matter ids are; the bureau's own ids are 'recognitions'."""
    if rule.base is None:
        return "recognitions"
    if rule.base.ledger == "recognitions":
        return rule.base.matter_ledger or "recognitions"
    return rule.base.ledger


def earlier_years_prefix(rule: Clause) -> str | None:
    """The prefix of a line's supersede_key ("<ledger>:") where its matter is a ledger row, a
    project or a recognised matter, the same in every year: earlier years' payments for it are
    keyed alike (SPEC §5.5 across years). None where the key names a year's figures summed, a
    ladder, a first reach or a growth: next year's figures are another matter."""
    if rule.kind in FROM_HISTORY_KINDS:
        return None
    b = rule.base
    if rule.kind not in ("level", "matching") and b is not None and b.ledger != "recognitions" and b.per == "applicant_year":
        return None
    return f"{matter_namespace(rule)}:"


def _finish(df: pl.DataFrame, rule: Clause, ctx_year: int, supersede_key: pl.Expr | None = None) -> pl.DataFrame:
    """Fill the columns an extraction did not set and order them as CANDIDATE_SCHEMA.

    Lines compete under keep-the-highest when their supersede_key is equal: by
    default the matter's ledger and id (the same project, event, rent row or
    recognised matter), so an event and a project that share an id never do.
    """
    df = df.with_columns(pl.lit(rule.clause_id).alias("clause_id"))
    if "supersede_key" not in df.columns:
        key = supersede_key if supersede_key is not None else pl.format("{}:{}", pl.lit(matter_namespace(rule)), pl.col("matter_id"))
        df = df.with_columns(key.alias("supersede_key"))
    for col, dtype in CANDIDATE_SCHEMA.items():
        if col not in df.columns:
            default = {"in_window": True, "recognized": not rule.recognition, "condition_met": True,
                       "excluded_fen": 0, "year_of_matter": ctx_year}.get(col)
            df = df.with_columns(pl.lit(default, dtype).alias(col))
    return df.select([pl.col(c).cast(t) for c, t in CANDIDATE_SCHEMA.items()])


def _zh(col: str, names: dict[str, str]) -> pl.Expr:
    """An enumeration's value in a step: its Chinese name (大型, 优势企业), the value itself where it has none."""
    return pl.col(col).replace_strict(names, default=pl.col(col), return_dtype=pl.String)


def _rows_text(ledger: str) -> pl.Expr:
    """Where a line comes from, as a step cites it: 算力账单 第 39 行 (the ledger's Chinese name, the row)."""
    return pl.format("{} 第 {} 行", pl.lit(rows_name(ledger)), pl.col(ROW))


def _rows_summed(ledger: str) -> pl.Expr:
    """The rows summed into one line (in an aggregation): 营业收入 第 3, 5 行."""
    return pl.format("{} 第 {} 行", pl.lit(rows_name(ledger)), pl.col(ROW).sort().cast(pl.String).str.join(", "))


def _ledger_base(rule: Clause, ctx: Context) -> pl.DataFrame:
    """Lines whose base is an amount in a ledger: per row, or per applicant and year."""
    b = rule.base
    led = LEDGERS[b.ledger]
    df = ctx.ledgers[b.ledger].filter((pl.col("year") == ctx.year) & _where(rule))
    date_col = led.date_column if led.date_column and not led.col(led.date_column).nullable else None
    in_window = ctx.date_in_window(date_col) if date_col else ctx.year_in_window()
    amount = pl.col(b.amount).fill_null(0) if b.amount else pl.lit(0, pl.Int64)
    second = pl.col(b.second_amount).fill_null(0) if b.second_amount else pl.lit(None, pl.Int64)
    line_date = pl.col(date_col) if date_col else pl.lit(ctx.year_end)
    df = _investee_conditions(df, rule, ctx)
    if b.per == "row":
        payee = pl.col(b.payee) if b.payee else pl.col("applicant_id")
        source = _rows_text(b.ledger)
        if b.payee:
            source = pl.format("{}（被投企业 {}）", source, pl.col("applicant_id"))
        out = df.select(
            payee.alias("applicant_id"),
            pl.col(led.key[0]).alias("matter_id"),
            line_date.alias("line_date"),
            amount.alias("base_fen"),
            second.alias("second_fen"),
            in_window.alias("in_window"),
            source.alias("source"),
            *[c for c in ("condition_met", "detail") if c in df.columns],
        )
        return _finish(_join_recognition(out, rule, ctx), rule, ctx.year)
    # A year's rows summed into one line; rows outside the window are left out of the base.
    out = (
        df.with_columns(in_window.alias("_in"), amount.alias("_amt"))
        .group_by("applicant_id")
        .agg(
            sum_fen(pl.col("_amt").filter(pl.col("_in"))).alias("base_fen"),
            sum_fen(second.filter(pl.col("_in"))).alias("second_fen") if b.second_amount else pl.lit(None, pl.Int64).alias("second_fen"),
            sum_fen(pl.col("_amt").filter(~pl.col("_in"))).alias("excluded_fen"),
            pl.col("_in").any().alias("in_window"),
            _rows_summed(b.ledger).alias("source"),
            # every row summed must meet the base's conditions on its applicant
            *([pl.col("condition_met").all(), pl.col("detail").sort_by("condition_met").first()]
              if "condition_met" in df.columns else []),
        )
        .with_columns(pl.col("applicant_id").alias("matter_id"), pl.lit(ctx.year_end).alias("line_date"))
    )
    out = _join_recognition(out, rule, ctx)
    return _finish(out, rule, ctx.year, pl.format("{}:{}:{}:{}", pl.lit(b.ledger), pl.lit(b.amount), pl.lit(b.where_text),
                                        pl.col("matter_id")))


def _join_recognition(lines: pl.DataFrame, rule: Clause, ctx: Context) -> pl.DataFrame:
    if rule.recognition_under:
        return _join_recognition_under(lines, rule, ctx)
    if not rule.recognition:
        return lines
    # A recognition stands until a later one replaces it: the latest up to this year counts. Its approved
    # amount and rate are one decision: the latest recognition giving either gives both, so one that gives
    # neither (a filing's confirmation) does not lift an earlier bound (SPEC §3 never more than the approved
    # amount), and one giving a new rate alone replaces the earlier amount too.
    decided = pl.any_horizontal(pl.col(c).is_not_null() for c in APPROVED_COLUMNS)
    standing = ctx.recognitions(rule.clause_id, upto=True)
    rec = (
        standing
        .sort("year", "recognized_on")
        .group_by("applicant_id", "matter_id")
        .agg(*(pl.col(c).filter(decided).last() if c in APPROVED_COLUMNS else pl.col(c).last() for c in REC_COLUMNS))
    )
    out = lines.join(rec, on=["applicant_id", "matter_id"], how="left")
    if rule.recognition_in_advance:
        # 经事前认定备案: filed before the event, paid after it. A later recognition (the amount approved
        # afterwards) does not undo the filing: the date that counts is the latest recognition up to this
        # year dated on or before the event; only where there is none, the latest (after the event).
        filed = (
            standing.select("applicant_id", "matter_id", pl.col("recognized_on").alias("_filed_on"))
            .join(lines.select("applicant_id", "matter_id", "line_date"), on=["applicant_id", "matter_id"])
            .filter(pl.col("_filed_on") <= pl.col("line_date"))
            .group_by("applicant_id", "matter_id").agg(pl.col("_filed_on").max())
        )
        out = out.join(filed, on=["applicant_id", "matter_id"], how="left").with_columns(
            pl.coalesce("_filed_on", "recognized_on").alias("recognized_on")).drop("_filed_on")
        # the line says when it was recognised and when the event took place
        if "detail" not in out.columns:
            out = out.with_columns(pl.lit(None, pl.String).alias("detail"))
        out = out.with_columns(pl.coalesce("detail", pl.when(pl.col("recognized_on").is_not_null()).then(
            pl.format("{} 认定，{} 举办", pl.col("recognized_on").dt.to_string("%Y-%m-%d"),
                      pl.col("line_date").dt.to_string("%Y-%m-%d")))).alias("detail"))
    return out.with_columns(
        pl.col("recognized_on").is_not_null().alias("recognized"),
        (pl.col("in_window") & (pl.col("recognized_on").is_null() | ctx.date_in_window("recognized_on"))).alias("in_window"),
        pl.col("approved_amount").alias("approved_fen"),
        pl.col("approved_rate").alias("approved_ppm"),
    )


def _join_recognition_under(lines: pl.DataFrame, rule: Clause, ctx: Context) -> pl.DataFrame:
    """经认定 over the whole sentence: the matter was recognised under another clause (its
    construction half), in the window, this year or before; the earliest such recognition is named.
    That recognition's approved amount or rate is the other clause's and does not bound this line."""
    under = rule.recognition_under
    rec = (
        ctx.recognitions(under, upto=True)
        .filter(ctx.date_in_window("recognized_on") & (pl.col("recognized_on") <= pl.lit(dt.date(ctx.known_upto, 12, 31))))
        .group_by("applicant_id", "matter_id").agg(pl.col("recognized_on").min())
    )
    if "detail" not in lines.columns:
        lines = lines.with_columns(pl.lit(None, pl.String).alias("detail"))
    return lines.join(rec, on=["applicant_id", "matter_id"], how="left").with_columns(
        pl.col("recognized_on").is_not_null().alias("recognized"),
        pl.coalesce(
            "detail",
            pl.when(pl.col("recognized_on").is_not_null())
            .then(pl.format("{} 经 {} 认定", pl.col("recognized_on").dt.to_string("%Y-%m-%d"), pl.lit(under)))
            .otherwise(pl.lit(f"截至 {ctx.year} 年未经 {under} 认定")),
        ).alias("detail"),
    )


def _recognition_base(rule: Clause, ctx: Context) -> pl.DataFrame:
    """Lines that exist only as a recognised matter (a lab, a paper, an approved amount)."""
    rec = ctx.recognitions(rule.clause_id)
    out = rec.select(
        "applicant_id", "matter_id", "level", "quantity", "recognized_on",
        pl.col("recognized_on").alias("line_date"),
        pl.col("approved_amount").alias("base_fen"),
        pl.col("approved_amount").alias("approved_fen"),
        pl.col("approved_rate").alias("approved_ppm"),
        ctx.date_in_window("recognized_on").alias("in_window"),
        pl.lit(True).alias("recognized"),
        _rows_text("recognitions").alias("source"),
    )
    return _finish(out, rule, ctx.year)


def _levels(rule: Clause, ctx: Context) -> pl.DataFrame:
    """Level awards (SPEC §5.8): the total ever paid for a matter is the largest, over its
    recognitions in the window up to this year, of min(the level's award, that recognition's
    approved amount).

    A recognition that falls back below the highest level reached before it, or repeats that
    level with no approved amount, adds nothing. ``target_fen`` is the award of the best
    recognition's level and ``approved_fen`` its approved amount; the formula takes the smaller.
    """
    lines = _recognition_base(rule, ctx).drop("target_fen", "approved_fen", "detail")
    levels = ctx.levels.filter(pl.col("clause_id") == rule.clause_id).drop("clause_id")
    matter = ["applicant_id", "matter_id"]
    reached_before = pl.col("level_rank").cum_max().shift(1).over(matter, order_by=["year", "recognized_on"])
    counts = reached_before.is_null() | (pl.col("level_rank") > reached_before) | (
        (pl.col("level_rank") == reached_before) & pl.col("approved_amount").is_not_null())
    worth = _min_fen(pl.col("award_fen"), pl.col("approved_amount"))
    best = (
        ctx.recognitions(rule.clause_id, upto=True)
        .filter(ctx.date_in_window("recognized_on"))
        .join(levels, on="level", how="inner")
        .filter(counts)
        .sort(worth, "level_rank", "recognized_on", descending=True)
        .group_by(matter, maintain_order=True).first()
        .select(*matter, pl.col("level").alias("top_level"), pl.col("award_fen").alias("target_fen"),
                pl.col("approved_amount").alias("approved_fen"), pl.col("recognized_on").alias("top_on"))
    )
    return (
        lines.join(best, on=matter, how="left")
        .with_columns(
            pl.when(pl.col("top_level").is_null()).then(pl.format("等级 {}", _zh("level", RECOGNITION_LEVELS_ZH)))
            .when((pl.col("top_level") != pl.col("level")) | (pl.col("top_on") != pl.col("line_date")))
            .then(pl.format("等级 {}；至今最好的认定：{}（{}）{}", _zh("level", RECOGNITION_LEVELS_ZH), _zh("top_level", RECOGNITION_LEVELS_ZH),
                            pl.col("top_on").dt.to_string("%Y-%m-%d"),
                            pl.when(pl.col("approved_fen").is_not_null())
                            .then(pl.format("，核定 {}", fmt_fen_expr(pl.col("approved_fen")))).otherwise(pl.lit(""))))
            .otherwise(pl.format("等级 {}", _zh("level", RECOGNITION_LEVELS_ZH))).alias("detail"),
        )
        .select(list(CANDIDATE_SCHEMA))
    )


def _ladder(rule: Clause, ctx: Context) -> pl.DataFrame:
    """The award of the highest step a yearly figure (the base's amount) has passed in the window so far."""
    led, fig = rule.base.ledger, rule.base.amount
    steps = ctx.steps.filter(pl.col("clause_id") == rule.clause_id).drop("clause_id")
    hist = ctx.ledgers[led].filter((pl.col("year") <= ctx.year) & ctx.year_in_window())
    passed = (pl.col(fig) > pl.col("threshold_fen")) if rule.ladder.comparison == "over" else (pl.col(fig) >= pl.col("threshold_fen"))
    top = (
        hist.join(steps, how="cross").filter(passed)
        .group_by("applicant_id").agg(pl.col("award_fen").max().alias("target_fen"),
                                      pl.col("threshold_fen").max().alias("_threshold"))
    )
    word = "超过" if rule.ladder.comparison == "over" else "达到"
    out = (
        ctx.ledgers[led].filter(pl.col("year") == ctx.year)
        .join(top, on="applicant_id", how="left")
        .select(
            "applicant_id",
            pl.col("applicant_id").alias("matter_id"),
            pl.lit(ctx.year_end).alias("line_date"),
            pl.col(fig).alias("base_fen"),
            ctx.year_in_window().alias("in_window"),
            _rows_text(led).alias("source"),
            pl.col("target_fen").fill_null(0),
            pl.when(pl.col("_threshold").is_not_null())
            .then(pl.format("至今最高一档：{} {} {}", pl.lit(field_name(led, fig)), pl.lit(word), fmt_fen_expr(pl.col("_threshold"))))
            .otherwise(pl.format("{} 尚未达到任何一档", pl.lit(field_name(led, fig)))).alias("detail"),
        )
    )
    return _finish(out, rule, ctx.year, pl.format("{}:{}:{}", pl.lit(led), pl.lit(fig), pl.col("matter_id")))


def _first_reach(rule: Clause, ctx: Context) -> pl.DataFrame:
    """Pays in the year a balance first reaches the threshold (ever, by date then row)."""
    b = rule.base
    led = LEDGERS[b.ledger]
    date = pl.col(led.date_column) if led.date_column else pl.date(pl.col("year"), 12, 31)
    rows = ctx.ledgers[b.ledger].filter(_where(rule) & (pl.col(b.amount) >= rule.threshold_fen))
    if b.since_in_region:
        # 注册并实到: a row dated before the firm registered in the region does not count
        arrived = ctx.ledgers["applicants"].select("applicant_id", "registered_in_region_on").unique("applicant_id")  # one per applicant
        rows = rows.join(arrived, on="applicant_id").filter(date >= pl.col("registered_in_region_on"))
        # ... and a firm that arrived before the policy reaches it on its first such row inside the window
        rows = rows.filter(ctx.date_in_window(date) if led.date_column else ctx.year_in_window())
    first = (
        rows
        .with_columns(date.alias("_date"))
        .sort("_date", ROW)
        .group_by("applicant_id").first()
        .filter(pl.col("year") == ctx.year)
    )
    in_window = ctx.date_in_window("_date") if led.date_column else ctx.year_in_window()
    out = first.select(
        "applicant_id",
        pl.col("applicant_id").alias("matter_id"),
        pl.col("_date").alias("line_date"),
        pl.col(b.amount).alias("base_fen"),
        in_window.alias("in_window"),
        _rows_text(b.ledger).alias("source"),
        pl.format("{} 于 {} 首次达到 {}", pl.lit(field_name(b.ledger, b.amount)), pl.col("_date").dt.to_string("%Y-%m-%d"),
                  fmt_fen_expr(pl.lit(rule.threshold_fen))).alias("detail"),
    )
    key = pl.format("{}:{}:first_reach:{}", pl.lit(b.ledger), pl.lit(b.amount), pl.col("matter_id"))
    return _finish(_join_recognition(out, rule, ctx), rule, ctx.year, key)


def _growth(rule: Clause, ctx: Context) -> pl.DataFrame:
    """hangzhou.5a: a yearly figure (the base's amount: R&D expense) grown by min_growth in each of the
    last `years` years, its intensity (figure / main revenue) and its increase."""
    g, led, fig = rule.growth, rule.base.ledger, rule.base.amount
    figures = ctx.ledgers[led].select("applicant_id", "year", pl.col(fig).alias("_fig"), ROW)
    rev = ctx.ledgers["revenue"].filter(pl.col("year") == ctx.year).select("applicant_id", pl.col("main_revenue").alias("_main_revenue"))
    wide = figures.filter(pl.col("year") == ctx.year)
    for k in range(1, g.years + 1):
        prev = figures.filter(pl.col("year") == ctx.year - k).select("applicant_id", pl.col("_fig").alias(f"_fig{k}"))
        wide = wide.join(prev, on="applicant_id", how="left")
    wide = wide.join(rev, on="applicant_id", how="left")
    growth_ppm = g.min_growth_ppm
    cur = [pl.col("_fig")] + [pl.col(f"_fig{k}") for k in range(1, g.years + 1)]
    grew = pl.lit(True)
    for later, earlier in zip(cur[:-1], cur[1:]):
        grew = grew & (micro(later, PPM) >= micro(earlier, PPM + growth_ppm)) & (earlier > 0)
    increase = pl.col("_fig") - pl.col("_fig1")
    intense = micro(pl.col("_fig"), PPM) >= micro(pl.col("_main_revenue"), g.min_intensity_ppm)
    met = (grew & intense & (increase >= g.min_increase_fen)).fill_null(False)
    out = wide.select(
        "applicant_id",
        pl.col("applicant_id").alias("matter_id"),
        pl.lit(ctx.year_end).alias("line_date"),
        increase.clip(lower_bound=0).fill_null(0).alias("base_fen"),
        ctx.year_in_window().alias("in_window"),
        _rows_text(led).alias("source"),
        met.alias("condition_met"),
        pl.when(met).then(pl.format("{}增加 {}", pl.lit(field_name(led, fig)), fmt_fen_expr(increase)))
        .otherwise(pl.lit(f"未满足：{field_name(led, fig)}连续 {g.years} 年增长不低于 {g.min_growth_text}、占主营业务收入不低于 "
                          f"{g.min_intensity_text}、增加额不低于 {g.min_increase_text}")).alias("detail"),
    )
    return _finish(out, rule, ctx.year, pl.format("{}:{}:growth:{}", pl.lit(led), pl.lit(fig), pl.col("matter_id")))


def _matching(rule: Clause, ctx: Context) -> pl.DataFrame:
    """A matter's amount (higher-level funding of a project) summed over its yearly rows up to the
    year it is completed (accepted), paid in that year."""
    b = rule.base
    led = LEDGERS[b.ledger]
    matter, done = led.key[0], led.date_column
    # Completed: the acceptance date is the one the latest row up to this year carrying a date gives, any
    # row of the project (the date is the project's, carried on its yearly rows; a later row may move it).
    # It is due in the year of that date, or, where the row giving it was written in a later year (the
    # first of the rows giving it since it last changed), in that year: a project accepted in a year it
    # has no row for is paid then, one whose acceptance is recorded late is paid late, never not at all.
    # Rows of later years are not read, so a year's result does not change when they arrive.
    dated = (ctx.ledgers[b.ledger].filter((pl.col("year") <= ctx.year) & pl.col(done).is_not_null())
             .sort(matter, "year", ROW))
    run = (pl.col(done) != pl.col(done).shift(1)).fill_null(True).cum_sum()  # a new run each time the date changes
    completed = (
        dated.group_by(matter, maintain_order=True)
        .agg(pl.col("applicant_id").last(), pl.col(done).last(), pl.col("year").filter(run == run.last()).min().alias("_given"))
        .filter(pl.max_horizontal(pl.col(done).dt.year(), pl.col("_given")) == ctx.year)
        .drop("_given")
    )
    # the funding the clause matches (its `where`), summed over the rows up to the year of acceptance: a
    # late record pays what an on-time one would have
    summed = (
        ctx.ledgers[b.ledger].filter(_where(rule))
        .join(completed.select(matter, pl.col(done).dt.year().alias("_accepted_year")), on=matter)
        .filter(pl.col("year") <= pl.col("_accepted_year"))
        .group_by(matter)
        .agg(sum_fen(pl.col(b.amount).fill_null(0)).alias("base_fen"),
             _rows_summed(b.ledger).first().alias("source"))
    )
    out = completed.join(summed, on=matter).select(
        "applicant_id",
        pl.col(matter).alias("matter_id"),
        pl.col(done).alias("line_date"),
        "base_fen",
        ctx.date_in_window(done).alias("in_window"),
        "source",
        pl.format("{} {}", pl.col(done).dt.to_string("%Y-%m-%d"), pl.lit("验收" if done == "accepted_on" else field_name(b.ledger, done))).alias("detail"),
        # an acceptance recorded after its year is that year's matter, paid late (as a late recognition is)
        pl.col(done).dt.year().cast(pl.Int64).alias("year_of_matter"),
    )
    return _finish(_join_recognition(out, rule, ctx), rule, ctx.year)


def pays_late(rule: Clause) -> bool:
    """A clause that needs a recognition of its own and pays on a ledger row (rent, events, projects,
    compute, financing): a recognition decided after the row's year pays it late (SPEC §3). Not an
    operation half recognised under its construction clause (``recognition_under``): that recognition
    admits the platform from its year on, and its earlier years' operation was no recognised matter's."""
    b = rule.base
    return (bool(rule.recognition) and rule.kind not in FROM_HISTORY_KINDS
            and rule.kind not in ("level", "matching") and b is not None and b.ledger != "recognitions"
            and b.per == "row")


def late_recognitions(rules: list[Clause], ctx: Context) -> pl.DataFrame:
    """经认定 after the year (SPEC §3: the usual order is bill, then recognition): ledger rows of earlier
    years whose matter's FIRST recognition under the clause is decided in this run's year, each as a line
    of its own year (``year_of_matter``): extracted as that year's run would, with the recognitions known
    now. A matter recognised in an earlier year was payable then (or was paid late then), so each row is
    paid late once, in the run for the year of its first decision; a rerun of the row's own year still
    finds no recognition and pays nothing."""
    parts = []
    for rule in rules:
        if rule.suspended or not pays_late(rule):
            continue
        decided = (
            ctx.ledgers["recognitions"].filter((pl.col("clause_id") == rule.clause_id) & (pl.col("year") <= ctx.year))
            .group_by("applicant_id", "matter_id").agg(pl.col("year").min().alias("_first"))
            .filter(pl.col("_first") == ctx.year).drop("_first")
        )
        if decided.is_empty():
            continue
        b = rule.base
        key = LEDGERS[b.ledger].key[0]
        rows = ctx.ledgers[b.ledger].filter(
            (pl.col("year") < ctx.year) & (pl.col("year") >= ctx.start.year)
            & pl.col(key).is_in(decided.get_column("matter_id").implode()))
        for year in sorted(rows.get_column("year").unique().to_list()):
            earlier = ctx.as_of(year, {**ctx.ledgers, b.ledger: rows.filter(pl.col("year") == year)})
            parts.append(_ledger_base(rule, earlier).join(decided, on=["applicant_id", "matter_id"], how="semi"))
    return pl.concat(parts) if parts else pl.DataFrame(schema=CANDIDATE_SCHEMA)


def extract(rule: Clause, ctx: Context) -> pl.DataFrame:
    if rule.kind == "level":
        return _levels(rule, ctx)
    if rule.kind == "ladder":
        return _ladder(rule, ctx)
    if rule.kind == "first_reach":
        return _first_reach(rule, ctx)
    if rule.kind == "growth":
        return _growth(rule, ctx)
    if rule.kind == "matching":
        return _matching(rule, ctx)
    if rule.base is None or rule.base.ledger == "recognitions":
        return _recognition_base(rule, ctx)
    return _ledger_base(rule, ctx)
