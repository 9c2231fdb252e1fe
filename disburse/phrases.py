"""The Chinese words for every reason code: one table for the audit, ``disburse explain`` and payments.xlsx.

A line's ``reasons`` column keeps the codes (``cap:annual;superseded_by:lingang.4``)
for machines; a person reads the phrases. A code that carries a value after
its colon (``superseded_by:<clause>``, ``installment:<k>/<n>``) has a phrase
with ``{}`` where the value goes. ``tests/test_phrases.py`` checks that every
code the engine can emit and every validation fault has a phrase here.
"""

from __future__ import annotations

import polars as pl

from disburse.ledgers import LEDGER_ZH, column_zh

# Why a line pays less, or nothing (SPEC §5.12). Keys are the codes of transforms.compute and transforms.explain.
REASONS: dict[str, str] = {
    "late_recognition": "以往年度的事项，认定（验收）晚于该年度，本年度补付",
    "outside_validity": "不在政策有效期内",
    "ineligible:not_an_applicant_of_the_region": "不是本区登记的申报主体",
    "ineligible:fraud": "经查实弄虚作假，不再给予支持",
    "ineligible:relocated_out": "已迁出本区，不再给予支持",
    "ineligible:not_yet_in_region": "当年尚未落户本区",
    "ineligible:credit": "信用记录不良",
    "ineligible:sector": "所属行业领域不符合条款",
    "ineligible:size": "企业规模不符合条款",
    "ineligible:not_above_scale": "不是规上企业",
    "ineligible:too_old": "成立年限超过条款要求",
    "ineligible:moved_in_too_long_ago": "迁入本区年限超过条款要求",
    "ineligible:before_moving_in": "事项发生在迁入本区之前",
    "ineligible:not_moved_in": "不是新引进（迁入）的企业",
    "ineligible:not_new_in_region": "不是政策有效期内新落户本区的企业",
    "ineligible:not_recognised": "未经认定",
    "ineligible:recognised_after_the_event": "认定晚于事项发生（条款要求事先认定）",
    "not_approved:no_rate": "未核定支持比例",
    "condition_not_met": "未满足条款条件",
    "condition_not_met:quantity_below_minimum": "认定数量未达到条款下限",
    "one_off_already_paid": "一次性支持，已经兑现",
    "period:first_year_only": "仅支持首年，此前已获支持",
    "period:consecutive_years_over": "连续支持年限已满",
    "period:max_years_reached": "支持年数已达上限",
    "period:too_soon_after_last_payment": "距上次支持的间隔不足",
    "approved_amount": "以核定金额为限",
    "approved_rate_capped": "核定比例高于条款比例，按条款比例",
    "level_up": "晋级补差，扣除此前已付",
    "cap:item": "单个项目（单次）上限",
    "paid_before_under": "同一事项以往年度已在 {} 下获得支持，予以扣除（不重复享受）",
    "superseded_by": "就高不重复：由 {} 替代",
    "cap:annual": "年度上限",
    "cap:cumulative": "累计上限",
    "installment": "分期拨付第 {} 期",
    "in_kind": "实物（算力）支持，不是资金",
    "budget_prorated": "超出资金额度，按比例核减",
    "budget_carried": "上年按比例核减的差额，本年补付",
}

# Why an input row was rejected (transforms.validate: the code before the colon of ``reason``).
REJECTIONS: dict[str, str] = {
    "missing_value": "必填项为空",
    "bad_money": "金额格式错误（应为元，最多两位小数）",
    "negative_amount": "金额为负数",
    "bad_number": "不是数字",
    "negative_number": "数值为负数",
    "bad_int": "不是整数",
    "bad_rate": "比例应在 0 到 1 之间",
    "bad_date": "日期无效（应为 2021-03-31、2021/3/31 或 2021年3月31日）",
    "bad_bool": "应为 是 或 否（true 或 false）",
    "not_allowed": "取值不在允许范围内（可填英文代码或中文名称）",
    "bad_year": "年份无效",
    "bad_credit_code": "统一社会信用代码无效（校验位不符）",
    "unknown_region": "该区域没有政策规则",
    "unknown_applicant": "申报主体不存在或已被拒绝",
    "unknown_clause": "条款编号不存在",
    "duplicate_key": "主键重复",
    "conflicting_applicant": "同一项目登记在多个申报主体名下",
    "applicant_rows_disagree": "同一申报主体的各行所填区域或日期（成立、注册迁入、迁出、查实弄虚作假）不一致",
    "applicant_incomplete": "同一申报主体的其他年度行未通过校验",
    "rate_outside_range": "核定比例超出条款允许的范围",
    "malformed_row": "该行无法按表头拆分（字段多于表头，或引号未闭合）",
    "year_mismatch": "年度与该行日期所在年份不符",
    "unknown_matter": "认定事项在台账中不存在",
    "out_of_range": "数量超出允许范围",
    "sum_out_of_range": "同一申报主体的金额合计超出可核算范围",
    "incomplete_installment": "分期期次、总期数与奖励总额须同时填写或同时不填",
    "bad_installment": "分期期次应在 1 到总期数之间",
    "installments_mismatch": "总期数与条款规定的分期期数不符",
    "award_below_amount": "奖励总额小于已付金额",
    "award_not_amount": "一次性兑付的奖励总额应等于已付金额",
    "ambiguous_date": "日期有两种读法（日、月先后不明），请写成 2021-03-04 或 2021年3月4日",
    "ambiguous_money": "金额的分隔符有两种读法，请写成 1234.56 或 1,234.56",
    "ambiguous_value": "该词对应多个取值（如“小微”可指小型或微型），请填写其中一个",
    "serial_date": "应为日期，却是数字（Excel 日期序号？），请将单元格设为日期格式或直接填写日期",
    "inexact_number": "数字单元格的值不是精确到分的金额（如公式结果 0.30000000000000004），请先取整到分",
    "id_as_number": "编号或统一社会信用代码存成了数字，已丢失字符；请将该列设为文本格式后重新填写",
    "cell_error": "单元格为错误值（如 #DIV/0!、#N/A），不是数值",
    "formula_no_value": "单元格是公式，但文件中没有保存计算结果；请在 Excel 中打开并保存后再提交",
    "total_row": "合计（小计、总计）行，不是台账记录，不计入",
}

# Ledger names as a person says them: each ledger's one Chinese name (disburse.ledgers.LEDGER_ZH).
LEDGERS: dict[str, str] = LEDGER_ZH

def field_name(ledger: str, column: str) -> str:
    """A ledger column as a step names it (ladders, first reach): its one Chinese name (``column_zh``)."""
    try:
        return column_zh(ledger, column)
    except KeyError:
        return column


def rows_name(ledger: str) -> str:
    """A ledger as a step cites its rows: 算力账单 (the source ``算力账单 第 39 行``)."""
    return LEDGER_ZH.get(ledger, ledger)


def _split(code: str) -> tuple[str, str | None]:
    """A code with a phrase of its own is whole ('cap:annual'); otherwise its value follows the first colon."""
    if code in REASONS or code in REJECTIONS:
        return code, None
    head, _, value = code.partition(":")
    return head, value or None


# The words of a valued code named without its value (in a table of caps, a legend).
BARE = {"paid_before_under": "同一事项以往年度已在其他条款下获得支持，予以扣除（不重复享受）",
        "superseded_by": "就高不重复：由其他条款替代", "installment": "分期拨付"}


def phrase(code: str) -> str | None:
    """The Chinese phrase of one code (None: the code has no phrase)."""
    if code in BARE:
        return BARE[code]
    key, value = _split(code)
    text = REASONS.get(key) or REJECTIONS.get(key)
    if text is None or (value is None) != ("{}" not in text):
        return None  # unknown, or a value where the phrase takes none (or none where it takes one)
    return text.format(value) if value is not None else text


def reasons_text(codes: str | None) -> str:
    """'cap:annual;installment:1/3' -> '年度上限；分期拨付第 1/3 期' (an unknown code is shown as it is)."""
    if not codes:
        return ""
    return "；".join(phrase(c) or c for c in codes.split(";"))


def reasons_expr(col: str | pl.Expr) -> pl.Expr:
    """``reasons_text`` vectorised: the codes column to its phrases, joined by '；'."""
    e = pl.col(col) if isinstance(col, str) else col
    plain = {k: v for k, v in REASONS.items() if "{}" not in v}
    valued = {k: v for k, v in REASONS.items() if "{}" in v}
    code = pl.element()
    head = code.str.split_exact(":", 1).struct.field("field_0")
    value = code.str.splitn(":", 2).struct.field("field_1")
    word = code.replace_strict(plain, default=None, return_dtype=pl.String)
    for key, text in valued.items():
        before, after = text.split("{}")
        word = pl.when(head == key).then(pl.format("{}{}{}", pl.lit(before), value, pl.lit(after))).otherwise(word)
    word = word.fill_null(code)
    return pl.when(e.fill_null("") != "").then(e.str.split(";").list.eval(word).list.join("；")).otherwise(pl.lit(""))


def rejection_expr(col: str | pl.Expr) -> pl.Expr:
    """A rejected row's ``reason`` ('bad_date: not a real date …') to its phrase, by the code before the colon."""
    e = pl.col(col) if isinstance(col, str) else col
    code = e.str.split_exact(":", 1).struct.field("field_0")
    return code.replace_strict(REJECTIONS, default=None, return_dtype=pl.String).fill_null(code)


def ledger_name(name: str) -> str:
    return f"{LEDGERS.get(name, name)}（{name}）"
