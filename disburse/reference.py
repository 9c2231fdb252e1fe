"""The ledger reference: what every ledger and column means, in Chinese and English.

One source for three readers: ``docs/ledgers.md`` (rendered by ``markdown``, written with
``disburse ledgers reference --out docs/ledgers.md``; a test keeps the committed file equal
to it), the 说明 sheet of the template a bureau fills in (``disburse template``), and the
template's examples. Names, types, required columns and enumerations come from
``disburse.ledgers``; which clauses read a column comes from the rules catalogue
(``readers``), so neither can drift from what the engine does.
"""

from __future__ import annotations

from dataclasses import dataclass

from disburse.ledgers import BOOL, DATE, ENUM_ZH, INT, LEDGERS, MONEY, NUMBER, RATE, STR, Col, Ledger
from disburse.rules import RATED_KINDS, Catalogue, natural_key, region_names


@dataclass(frozen=True)
class Meaning:
    zh: str        # what the column holds, in a bureau's words
    en: str        # the same for a reader of the English documentation
    example: str   # a value as a bureau would type it


# A column means the same in every ledger that has it, unless (ledger, column) says otherwise.
_ANY = {
    "applicant_id": Meaning("申报主体的统一社会信用代码，18 位，校验位按 GB 32100-2015 核对；每一行都以它指向申报主体表中的一户",
                            "the applicant's unified social credit code (18 characters, check digit per GB 32100-2015); "
                            "every row names its applicant by it", "91310115MA1FL2345N"),
    "year": Meaning("该行数据所属的年度（四位数字）", "the year the row's figures belong to", "2021"),
}
_BY_LEDGER: dict[tuple[str, str], Meaning] = {
    ("applicants", "name"): Meaning("企业名称，与营业执照一致", "the firm's registered name", "上海某某智能科技有限公司"),
    ("applicants", "region"): Meaning("企业注册所在、据以申报政策的区域：规则目录中区域的代码或中文名",
                                      "the region whose policy the firm applies under (a region of the rules catalogue)",
                                      "临港新片区"),
    ("applicants", "established_on"): Meaning("企业成立日期（营业执照）", "the date the firm was founded", "2019-06-12"),
    ("applicants", "registered_in_region_on"): Meaning(
        "在本区域注册或迁入本区域的日期；在本区域成立的企业即成立日期",
        "the date the firm registered in, or moved into, the region (its founding date if founded there)", "2020-11-02"),
    ("applicants", "size"): Meaning("企业规模（大型、中型、小型、微型）", "the firm's size class", "小型"),
    ("applicants", "above_scale"): Meaning("是否规模以上企业", "whether the firm is above designated size (规上)", "是"),
    ("applicants", "sector"): Meaning("企业所属领域", "the firm's field", "人工智能"),
    ("applicants", "credit_ok"): Meaning("信用记录是否良好；要求信用良好的政策对“否”的企业不予兑付",
                                         "whether the firm's credit record is clean; a policy that requires it pays "
                                         "nothing to a firm without one", "是"),
    ("applicants", "relocated_out_on"): Meaning("注册迁出本区域的日期；未迁出留空。政策规定年限内迁出的，追回已兑付资金",
                                                "the date the firm moved its registration out of the region; empty if it "
                                                "did not. A move within a policy's years claws back what it received",
                                                ""),
    ("applicants", "fraud_found_on"): Meaning("查实弄虚作假的日期；未发现留空。查实后追回并不再兑付",
                                              "the date fraud was established; empty if none. Payments are then "
                                              "recovered and stop", ""),
    ("rent", "row_id"): Meaning("租赁记录编号，每份租赁每年一行，编号全表唯一", "the rent row's id, unique in the ledger",
                                "RENT-CN-0000002"),
    ("rent", "carrier"): Meaning("办公用房所在载体（园区、楼宇）名称", "the building or park the office is in",
                                 "长宁数字经济产业园"),
    ("rent", "key_carrier"): Meaning("载体是否为区认定的重点载体", "whether the building is one the district names "
                                     "a key carrier", "否"),
    ("rent", "area_m2"): Meaning("租赁面积，平方米", "the rented area in square metres", "620.5"),
    ("rent", "rent_paid"): Meaning("该年实际支付的房租，元", "the rent actually paid that year, in yuan", "1,087,128.00"),
    ("rent", "self_use"): Meaning("是否自用（转租、出借的为否）", "whether the firm uses the office itself "
                                  "(not sublet)", "是"),
    ("rent", "demo_base_operator"): Meaning("企业是否为示范基地的运营方", "whether the firm operates a demonstration "
                                            "base", "否"),
    ("rd", "rd_expense"): Meaning("该年研发投入（研发费用），元", "the year's R&D expense, in yuan", "420,000.00"),
    ("revenue", "main_revenue"): Meaning("该年主营业务收入，元", "the year's main-business revenue, in yuan",
                                         "3,200,000.00"),
    ("revenue", "overseas_revenue"): Meaning("该年境外业务收入，元；无则填 0", "the year's revenue from abroad, in yuan "
                                             "(0 if none)", "0.00"),
    ("compute", "row_id"): Meaning("账单编号，每张账单一行，编号全表唯一", "the bill's id, unique in the ledger",
                                   "CMP-LG-0000001"),
    ("compute", "billed_on"): Meaning("账单日期", "the bill's date", "2021-03-31"),
    ("compute", "category"): Meaning("所购算力的类别", "what the bill is for", "云服务"),
    ("compute", "vendor"): Meaning("服务商名称", "the vendor's name", "中国电信股份有限公司上海分公司"),
    ("compute", "related_party"): Meaning("服务商是否为企业的关联方", "whether the vendor is a related party of the "
                                          "firm", "否"),
    ("compute", "amount"): Meaning("账单金额，元", "the bill's amount, in yuan", "183,456.78"),
    ("projects", "project_id"): Meaning("项目编号；同一项目各年用同一编号，每年一行", "the project's id, the same in "
                                        "every year; one row per project and year", "PRJ-CN-0000001"),
    ("projects", "category"): Meaning("项目类别：区局对项目性质的认定，决定哪些条款读取本行（见下文“项目类别”）",
                                      "what the bureau has established the project to be; it decides which clauses "
                                      "read the row (see the categories below)", "关键技术攻关"),
    ("projects", "total_investment"): Meaning("该年项目总投资，元；本类别不用的留空", "the project's total investment "
                                              "that year, in yuan; empty where its category does not use it",
                                              "6,000,000.00"),
    ("projects", "ai_investment"): Meaning("该年智能化改造投资，元", "the year's investment in AI transformation, "
                                           "in yuan", ""),
    ("projects", "rd_cost"): Meaning("该年项目研发费用，元", "the project's R&D cost that year, in yuan", ""),
    ("projects", "operating_cost"): Meaning("该年项目运营费用，元", "the project's operating cost that year, in yuan",
                                            ""),
    ("projects", "purchase_amount"): Meaning("该年采购金额（采购方）或保费，元", "the year's purchases (the buyer's) "
                                             "or premium, in yuan", ""),
    ("projects", "service_volume"): Meaning("该年服务、交易或流通金额，元", "the year's service, trading or "
                                            "circulation volume, in yuan", ""),
    ("projects", "higher_level_funding"): Meaning("该年到位的上级（国家、省、市）资助金额，元",
                                                  "the funding received that year from a higher level, in yuan",
                                                  "1,000,000.00"),
    ("projects", "higher_level"): Meaning("上级资助的级别", "the level that funded the project", "国家级"),
    ("projects", "accepted_on"): Meaning("项目验收日期；未验收留空", "the date the project passed acceptance (验收); "
                                         "empty until it does", "2022-11-18"),
    ("events", "event_id"): Meaning("活动编号，全表唯一", "the event's id, unique in the ledger", "EVT-CN-0000001"),
    ("events", "held_on"): Meaning("活动举办（开幕）日期", "the date the event was held (opened)", "2022-06-16"),
    ("events", "kind"): Meaning("活动类型", "the kind of event", "论坛"),
    ("events", "cost"): Meaning("企业为活动实际支出的费用，元", "what the firm spent on the event, in yuan",
                                "380,000.00"),
    ("events", "venue_rent"): Meaning("其中场地租金，元", "of which the venue's rent, in yuan", "120,000.00"),
    ("recognitions", "clause_id"): Meaning("认定所依据的条款编号（规则目录中的条款）", "the clause the recognition is "
                                           "made under (a clause of the rules catalogue)", "changning.6.1c"),
    ("recognitions", "matter_id"): Meaning(
        "被认定的事项：台账行的编号（项目编号、活动编号、租赁或融资编号）；没有台账行的（实验室、论文等）用区局自己的编号，"
        "各年不变；按企业和年度兑付的条款填企业的统一社会信用代码",
        "the matter recognised: the id of its ledger row (project, event, rent or financing row); the bureau's own "
        "id, the same every year, for a matter with no ledger row (a lab, a paper); the applicant's code for a "
        "clause paying per applicant and year", "RENT-CN-0000002"),
    ("recognitions", "year"): Meaning("认定（评审结果）所在年度，即认定日期的年份", "the year of the decision "
                                      "(of recognized_on)", "2022"),
    ("recognitions", "level"): Meaning("认定的级别或档次；条款不分级别的留空", "the level recognised; empty where "
                                       "the clause has no levels", "国家级"),
    ("recognitions", "recognized_on"): Meaning("认定（评审通过）日期", "the date of the decision", "2022-04-20"),
    ("recognitions", "approved_amount"): Meaning("核定金额，元；兑付不超过此数。未核定留空",
                                                 "the approved amount, in yuan: nothing above it is paid; empty if none",
                                                 "500,000.00"),
    ("recognitions", "approved_rate"): Meaning("核定比例，0 到 1 之间的小数（30% 填 0.3）；未核定留空",
                                               "the approved rate, a share between 0 and 1 (0.3 for 30%); empty if "
                                               "none", "0.3"),
    ("recognitions", "quantity"): Meaning("认定的数量（论文篇数、算力 PFLOPS 等），整数；按数量兑付的条款填写",
                                          "the recognised quantity (papers, PFLOPS), a whole number, for a clause "
                                          "paying per unit", ""),
    ("financing", "row_id"): Meaning("融资记录编号，全表唯一", "the financing row's id, unique in the ledger",
                                     "FIN-LG-0000001"),
    ("financing", "kind"): Meaning("融资类型", "the kind of financing", "实缴资本"),
    ("financing", "dated_on"): Meaning("融资日期（实缴、到账、放款、发行或上市日）", "the date of the financing "
                                       "(paid in, received, lent, issued or listed)", "2021-06-18"),
    ("financing", "amount"): Meaning("金额，元：实缴资本为截至该日的实缴总额（余额，不是增量）；贷款为本金",
                                     "the amount, in yuan: for paid-in capital the total paid in as of the date (a "
                                     "balance, not an increase); for a loan its principal", "30,000,000.00"),
    ("financing", "interest_paid"): Meaning("贷款该年实付利息，元", "interest paid on the loan that year, in yuan", ""),
    ("financing", "guarantee_fee"): Meaning("贷款该年实付担保费，元", "guarantee fees paid on the loan that year, "
                                            "in yuan", ""),
    ("financing", "investor_id"): Meaning("风险投资的投资方统一社会信用代码（按投资方兑付的条款读取）",
                                          "the investor's credit code, for venture investment (a clause may pay the "
                                          "investor)", ""),
    ("prior_payments", "clause_id"): Meaning("已兑付的条款编号", "the clause the payment was made under",
                                             "lingang.7.1"),
    ("prior_payments", "matter_id"): Meaning("已兑付的事项，编号规则同认定表", "the matter paid, named as in "
                                             "recognitions", "91310115MD0000007P"),
    ("prior_payments", "year"): Meaning("兑付所属年度", "the year the payment was for", "2020"),
    ("prior_payments", "amount"): Meaning("已兑付金额，元", "the amount paid, in yuan", "200,000.00"),
    ("prior_payments", "installment"): Meaning(
        "分期兑付的奖励：本行是第几期（与总期数、奖励总额同时填写或同时不填；不填时，按分期条款兑付的记录视为第 1 期）",
        "for an award paid in installments: which installment this row paid (give it with installments and award, "
        "or none of the three; without them a payment under a clause paying in installments is its first)", "1"),
    ("prior_payments", "installments"): Meaning("分期兑付的总期数，须与条款规定的期数一致",
                                                "how many installments the award is paid in: the clause's own count", "3"),
    ("prior_payments", "award"): Meaning(
        "分期兑付的奖励总额，元（不填时按第 1 期金额 ÷ 第 1 期比例推算，四舍五入到分）",
        "the whole award, in yuan (without it: the first installment ÷ the first share, half up to the fen)",
        "1,500,000.00"),
    ("applicants", "year"): Meaning(
        "可选：本行的企业情况（名称、规模、规上、行业、信用）自该年度起适用，至该企业下一行的年度为止；不填则适用于所有年度",
        "optional: the year from which this row's facts (name, size, above_scale, sector, credit_ok) hold, until the "
        "applicant's next row; empty: every year", "2023"),
}

LEDGER_MEANING = {
    "applicants": ("申报主体：每户企业一行", "one row per applicant firm"),
    "rent": ("房租：企业自用办公用房每年实付的房租", "rent paid for the firm's own offices, one row per lease and year"),
    "rd": ("研发投入：每户企业每年一行", "R&D expense, one row per applicant and year"),
    "revenue": ("营业收入：每户企业每年一行", "revenue, one row per applicant and year"),
    "compute": ("算力账单：通信、云服务和算力账单，每张账单一行", "bills for telecom, cloud and compute, one row per bill"),
    "projects": ("项目：每个项目每年一行", "projects, one row per project and year"),
    "events": ("活动：企业主办或参加的活动，每项活动一行", "events the firm hosted or attended, one row per event"),
    "recognitions": ("认定：区局的认定、评审结果，每个认定事项一行；写明“经认定”的条款只兑付已认定的事项，且不超过核定金额或比例",
                     "the bureau's recognitions (认定, review results), one row per recognised matter: a clause that "
                     "says 经认定 pays only a recognised matter, never above its approved amount or rate"),
    "financing": ("融资：实缴资本、风险投资、贷款、债券和上市，每笔一行",
                  "paid-in capital, venture investment, loans, bonds and listings, one row each"),
    "prior_payments": ("历史兑付：启用本系统之前已兑付的资金，与本系统兑付的同样计入限额",
                       "payments made before the project was adopted, counted against the limits like its own"),
}

# What a project category or an event kind means (the column's drop-down shows the Chinese names).
CATEGORY_MEANING = {
    "key_technology": ("关键核心技术攻关项目、市重大科技创新项目", "a key-technology R&D project"),
    "open_source_platform": ("开源深度学习平台", "an open-source deep-learning platform"),
    "public_dataset": ("公共人工智能数据集", "a public AI dataset"),
    "industry_dataset": ("行业人工智能数据集", "an industry AI dataset"),
    "ai_transformation": ("重大项目的智能化改造", "the AI transformation of a major project"),
    "pilot_scenario": ("国家或市级试点场景", "a national or municipal pilot scenario"),
    "ai_procurement": ("人工智能产品和服务的采购", "a purchase of AI products and services"),
    "smart_city": ("智慧城市重点项目", "a key smart-city project"),
    "service_platform": ("人工智能公共服务平台", "an AI public service platform"),
    "rd_institution": ("研发机构建设", "an R&D institution's build-up"),
    "higher_level_funded": (
        "获上级资助的项目，限于本区域条款所列领域和计划：长宁为国家或市级人工智能、区块链、软件和集成电路或协同创新项目；"
        "济南为国家科技重大专项、国家重点研发计划或山东省厅市会商中的人工智能相关项目",
        "funded by a higher level in the fields and programmes its region's clause names: in changning, a national or "
        "municipal AI, blockchain, software and IC or collaborative-innovation project; in jinan, an AI-related "
        "project of 国家科技重大专项, 国家重点研发计划 or 山东省厅市会商"),
    "innovation_project": ("创新型产业建设项目", "an innovation-industry construction project"),
    "open_scenario": ("开放应用场景", "an open application scenario"),
    "scenario_platform": ("场景开放服务平台", "a scenario open-service platform"),
    "data_exchange": ("一个数据集在公共交易场所一年的流通（服务金额填流通收入）",
                      "one dataset's year on a public exchange (service_volume: its circulation revenue)"),
    "trading_platform": ("一个人工智能或大数据交易平台的一年（服务金额填非关联交易额）",
                         "one AI or big-data trading platform's year (service_volume: unrelated trading volume)"),
    "application_scenario": ("企业牵头的应用场景", "an application scenario led by the firm"),
    "big_science": ("国际大科学计划", "an international big-science programme"),
    "patent_insurance": ("专利保险（采购金额填保费）", "a patent insurance policy (purchase_amount: the premium)"),
    "other": ("其他", "anything else"),
}
EVENT_MEANING = {
    "forum": ("论坛", "a forum"), "competition": ("比赛、大赛", "a competition"), "summit": ("峰会", "a summit"),
    "conference": ("会议", "a conference"), "exhibition_hosted": ("主办的展会", "an exhibition the firm hosted"),
    "exhibition_attended": ("参加的展会", "an exhibition the firm attended"),
    "ecosystem": ("沙龙、对接会等生态活动", "meet-ups, salons"), "other": ("其他", "anything else"),
}
# Clauses that pay for a category's matter through a recognition, whatever the row (not found in a base).
CATEGORY_NOTE = {
    "pilot_scenario": "lingang.5.2 pays a recognised listing whatever its row",
    "open_scenario": "changning.7.3 pays its recognised amount",
    "application_scenario": "jinan.3b pays a recognised scenario, named by its project_id, whatever its row",
}

TYPE_ZH = {STR: "文本", INT: "整数", DATE: "日期", BOOL: "是/否", MONEY: "金额（元）", RATE: "比例（0–1）", NUMBER: "数值"}
TYPE_EN = {STR: "text", INT: "whole number", DATE: "date", BOOL: "yes/no", MONEY: "money (yuan)",
           RATE: "share 0–1", NUMBER: "number"}
# The forms each type is read from (a spreadsheet cell of the type is read as it is; see README).
FORMS_ZH = {
    STR: "文本；编号列请设为文本格式（统一社会信用代码存成数值会丢失末几位，不予读取）",
    INT: "整数，如 2021",
    DATE: "2021-03-31、2021/3/31、2021-3-31、2021年3月31日，或日期单元格；3/4/2021 这类写法日月不分，不予读取；"
          "数值（Excel 日期序号）和带时刻的日期也不予读取",
    BOOL: "是/否、true/false、TRUE/FALSE（单元格或文字）",
    MONEY: "元，最多两位小数；可带千分位逗号（216,543.22，每三位一组）和前缀 ¥ 或 ￥；数值单元格须恰为两位以内小数"
           "（公式算出的 0.30000000000000004 不予读取，不会四舍五入）；1.234,56 这类写法不予读取",
    RATE: "0 到 1 之间的小数，最多六位小数（30% 填 0.3）",
    NUMBER: "数值，如 620.5；可带千分位逗号",
}
FORMS_EN = {
    STR: "text; keep id columns formatted as text (a credit code stored as a number has lost its last digits and "
         "is rejected)",
    INT: "a whole number (2021)",
    DATE: "2021-03-31, 2021/3/31, 2021-3-31, 2021年3月31日 or a date cell; 3/4/2021 (day or month first?) is "
          "rejected, and so are a number (an Excel serial date) and a date with a time of day",
    BOOL: "是/否, true/false, TRUE/FALSE (a cell or text)",
    MONEY: "yuan with at most 2 decimals; thousands separators in groups of three (216,543.22) and a leading ¥ or ￥ "
           "allowed; a number cell must hold at most 2 decimals exactly (a formula's 0.30000000000000004 is "
           "rejected, never rounded); 1.234,56 is rejected",
    RATE: "a share 0–1 with at most 6 decimals (0.3 for 30%)",
    NUMBER: "a number (620.5); thousands separators allowed",
}

ID_COLUMNS = ("applicant_id", "row_id", "project_id", "matter_id", "investor_id", "event_id", "clause_id")


def meaning(ledger: str, column: str) -> Meaning:
    return _BY_LEDGER.get((ledger, column)) or _ANY[column]


def need_zh(col: Col) -> str:
    """必填 / 可留空 / 可省略此列: whether the column must be there and hold a value."""
    if not col.required:
        return "可选（可省略此列，也可留空）"
    return "可留空" if col.nullable else "必填"


def need_en(col: Col) -> str:
    if not col.required:
        return "optional column, may be empty"
    return "may be empty" if col.nullable else "required"


def enum_zh(col: Col) -> dict[str, str]:
    """English value -> Chinese name for an enumeration column ({} otherwise)."""
    return dict(ENUM_ZH.get(col.enum, {})) if col.enum else {}


# an eligibility condition -> the applicants column it reads
_ELIGIBILITY = {"sector": "sector", "size": "size", "above_scale": "above_scale", "credit_ok": "credit_ok",
                "max_age_years": "established_on", "max_years_since_move_in": "registered_in_region_on",
                "moved_in": "registered_in_region_on", "new_in_region": "registered_in_region_on"}


def readers(cat: Catalogue) -> dict[tuple[str, str], list[str]]:
    """(ledger, column) -> the clauses whose base reads it: the money column paid on, a second amount,
    a filter (`where`, `between`), the payee, the applicant's facts its eligibility conditions name, and, for a
    clause paying only what is recognised (经认定), the recognition's columns it reads (its level, approved amount
    or rate, quantity)."""
    found: dict[tuple[str, str], list[str]] = {}
    for cid in sorted(cat.rules, key=natural_key):
        rule = cat.rules[cid]
        cols = {("applicants", _ELIGIBILITY[k]) for k, v in cat.policies[rule.region].eligibility if v is not None}
        cols |= {("applicants", _ELIGIBILITY[k]) for k, v in rule.eligibility if v is not None}
        base = rule.base
        if base is not None:
            cols |= {(base.ledger, c) for c in (base.amount, base.second_amount, base.payee) if c}
            cols |= {(base.ledger, c) for c in (*base.where, *base.between)}
            cols |= {("applicants", c) for c, given in (("sector", base.investee_sector), ("size", base.investee_size),
                                                        ("registered_in_region_on", base.since_in_region)) if given}
            if base.max_main_revenue is not None:
                cols.add(("revenue", "main_revenue"))
        if rule.recognition or rule.recognition_under or (base is not None and base.ledger == "recognitions"):
            cols |= {("recognitions", c) for c in ("clause_id", "matter_id", "year", "recognized_on")}
            if rule.levels or rule.level_caps or rule.level_cumulative_caps:
                cols.add(("recognitions", "level"))
            if rule.recognition or rule.kind == "approved":
                cols.add(("recognitions", "approved_amount"))
            if rule.recognition and rule.kind in RATED_KINDS:
                cols.add(("recognitions", "approved_rate"))
            if rule.kind in ("per_unit", "in_kind") or rule.min_quantity is not None:
                cols.add(("recognitions", "quantity"))
        for key in cols:
            found.setdefault(key, []).append(cid)
    return found


def value_readers(cat: Catalogue, ledger: str, column: str) -> dict[str, list[str]]:
    """Value of an enumeration column -> the clauses whose `where` reads it, each with the column paid on."""
    found: dict[str, list[str]] = {}
    for cid in sorted(cat.rules, key=natural_key):
        base = cat.rules[cid].base
        if base is None or base.ledger != ledger or column not in base.where:
            continue
        for v in base.where[column]:
            found.setdefault(str(v), []).append(f"{cid} ({base.amount})" if base.amount else cid)
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _ledger_md(ledger: Ledger, read: dict[tuple[str, str], list[str]]) -> list[str]:
    zh, en = LEDGER_MEANING[ledger.name]
    out = [f"### `{ledger.name}` {ledger.zh}", "", f"{en[0].upper()}{en[1:]}. {zh}。", "",
           f"Key: {', '.join(f'`{k}`' for k in ledger.key)}"
           + ("; the file is required." if not ledger.optional_file else "; the file may be absent (no rows)."), "",
           "| column | 中文名 | type | required | meaning | 含义 | read by | example |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for col in ledger.columns:
        m = meaning(ledger.name, col.name)
        by = ", ".join(read.get((ledger.name, col.name), [])) or "—"
        kind = TYPE_EN[col.type] + (f" ({', '.join(col.enum)})" if col.enum and len(col.enum) <= 8 else
                                    " (see below)" if col.enum else "")
        out.append(f"| `{col.name}` | {col.zh} | {kind} | {need_en(col)} | {_cell(m.en)} | {_cell(m.zh)} | {by} | "
                   f"{_cell(m.example) or '—'} |")
    return [*out, ""]


def markdown(cat: Catalogue) -> str:
    """docs/ledgers.md: the whole reference, rendered from the ledger contract and the catalogue."""
    read = readers(cat)
    lines = [
        "# The ledgers",
        "",
        "<!-- Generated by `disburse ledgers reference --out docs/ledgers.md` from disburse/ledgers.py, "
        "disburse/reference.py and the rules catalogue; do not edit by hand (a test compares). -->",
        "",
        "A run reads ten ledgers, one file each (`applicants.csv`, `compute.xlsx`, …), or one workbook with a "
        "sheet per ledger. A file or sheet is named by the ledger's English or Chinese name, and every column "
        "header may be its English or its Chinese name (one of the two, not both). `disburse template --out "
        "FILE.xlsx` writes a workbook to fill in, with these columns, formats, drop-downs and a 说明 sheet. A "
        "file may carry extra columns; they are ignored. Only `applicants` is required; any other ledger may be "
        "absent (no rows).",
        "",
        "*required*: the column must be there and every row must hold a value; *may be empty*: the column must be "
        "there, a row may leave it empty; *optional column*: the column may be left out. *read by*: the clauses "
        "whose base reads the column (the amount paid on, a filter, the payee); every clause also reads the "
        "applicant's facts its conditions name, and the ids and dates that place a row. An empty cell is a missing "
        "value.",
        "",
        "## Values",
        "",
        "Each value is read to exactly one canonical value; anything that could mean two things is a rejected row "
        "with its reason, never guessed. A total row (a cell starting with 合计, 总计, 小计 or 共计, or blank ids "
        "with an amount) is a rejected row, never summed; a blank row is skipped.",
        "",
        "| type | 类型 | accepted forms | 可填写的形式 |",
        "| --- | --- | --- | --- |",
        *(f"| {TYPE_EN[t]} | {TYPE_ZH[t]} | {_cell(FORMS_EN[t])} | {_cell(FORMS_ZH[t])} |"
          for t in (STR, INT, DATE, BOOL, MONEY, RATE, NUMBER)),
        "",
        "An enumeration value is given by its English code or its Chinese name (a word naming two values, as "
        "小微 or 中小 for sizes, is rejected):",
        "",
        "| column | code | 中文名 |",
        "| --- | --- | --- |",
    ]
    seen: set[tuple[str, ...]] = set()
    for ledger in LEDGERS.values():
        for col in ledger.columns:
            if not col.enum or col.enum in seen:
                continue
            seen.add(col.enum)
            users = [f"{lg.name}.{c.name}" for lg in LEDGERS.values() for c in lg.columns if c.enum == col.enum]
            names = enum_zh(col)
            lines += [f"| {', '.join(f'`{u}`' for u in users)} | `{v}` | {names.get(v, '')} |" for v in col.enum]
    regions = region_names(cat)
    lines += ["", "`applicants.region` is a region of the rules catalogue, by its id or its Chinese name:", "",
              "| region | 中文名 | policy |", "| --- | --- | --- |",
              *(f"| `{r}` | {regions.get(r, '')} | {cat.policies[r].title} |" for r in cat.regions), "",
              "## The ledgers", ""]
    for ledger in LEDGERS.values():
        lines += _ledger_md(ledger, read)
    lines += _categories_md(cat)
    return "\n".join(lines).rstrip("\n") + "\n"


def _categories_md(cat: Catalogue) -> list[str]:
    cats = value_readers(cat, "projects", "category")
    kinds = value_readers(cat, "events", "kind")
    projects_zh = enum_zh(LEDGERS["projects"].col("category"))
    events_zh = enum_zh(LEDGERS["events"].col("kind"))
    out = [
        "## What the categories mean",
        "",
        "The categories of `projects` and the kinds of `events` are this project's own. A row pays under a clause "
        "only if its category is one the clause reads (`disburse rules list` shows each clause's base); `other` "
        "is read by none. A category says what the bureau has established about the project: the engine cannot "
        "tell a project's field or programme from its figures.",
        "",
        "| `projects.category` | 中文名 | a project that is … | 含义 | read by (column) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for value in LEDGERS["projects"].col("category").enum:
        zh, en = CATEGORY_MEANING[value]
        by = ", ".join(cats.get(value, [])) or "none"
        if value in CATEGORY_NOTE:
            by += f" ({CATEGORY_NOTE[value]})"
        out.append(f"| `{value}` | {projects_zh.get(value, '')} | {_cell(en)} | {_cell(zh)} | {by} |")
    out += ["", "| `events.kind` | 中文名 | meaning | read by |", "| --- | --- | --- | --- |"]
    for value in LEDGERS["events"].col("kind").enum:
        zh, en = EVENT_MEANING[value]
        out.append(f"| `{value}` | {events_zh.get(value, '')} | {en} | {', '.join(kinds.get(value, [])) or 'none'} |")
    return [*out, ""]
