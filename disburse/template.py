"""`disburse template`: the workbook a bureau fills in, one sheet per ledger.

Layout (the contract with the ledger reader, which reads a workbook's visible sheets named by a
ledger's English or Chinese name, and only their row 1 as the header):

- 说明, first: how to fill the workbook in, then every ledger and column in Chinese (meaning, type,
  required or not, the forms accepted, the clauses that read it, an example). Its name is no
  ledger's, so the reader passes it by.
- one sheet per ledger, named with the ledger's Chinese name (申报主体, 房租, …): row 1 is the
  Chinese header; each header cell carries the column's English name (and whether it is required)
  as a cell comment, so the English names are at hand without a second header row, which the
  reader would take for data. The header row is frozen.
- the columns are formatted for what they hold: ids and free text as text (``@``), so Excel never
  turns a credit code of digits into a number; dates ``yyyy-mm-dd``; money ``#,##0.00``. The format
  is the column's own (Excel and WPS give it to every cell typed into the column), so no empty
  cell is written and the reader sees no rows until they are filled.
- a drop-down (data validation, a value from the list only) on every enumeration column, with the
  Chinese names the reader accepts: regions (the catalogue's), size, sector, categories, event
  kinds, levels, financing kinds, 是/否 for yes/no columns, and the catalogue's clause ids for
  recognitions and prior payments. The lists live on a hidden sheet, 列表, which the reader ignores.

``--ledgers`` limits the ledger sheets; 申报主体 (applicants) is always there: every other ledger
names its rows' applicants in it, and a run cannot go without it.
"""

from __future__ import annotations

from pathlib import Path

from disburse.ledgers import BOOL, DATE, LEDGER_ZH, LEDGERS, MONEY, NUMBER, RATE, STR, INT
from disburse.reference import (
    FORMS_ZH, LEDGER_MEANING, TYPE_ZH, enum_zh, meaning, need_zh, readers,
)
from disburse.rules import Catalogue, natural_key, region_names

LIST_SHEET = "列表"
GUIDE_SHEET = "说明"
LAST_ROW = 1_048_575  # the drop-downs reach the sheet's last row (0-based index)
WIDTH = {STR: 22, DATE: 12, MONEY: 16, BOOL: 8, INT: 8, NUMBER: 12, RATE: 10}

GUIDE = [
    "本工作簿供区局填报兑付所需的台账：每张台账一个工作表，工作表名即台账名，请勿改名；不需要的台账可以留空或删除工作表，申报主体必须填写。",
    "第 1 行是表头（中文列名，将鼠标移到表头上可见英文列名和是否必填），请勿修改或增删表头；数据从第 2 行起，每行一条记录，中间不要留空行，不要加合计行。",
    "编号列（统一社会信用代码、编号类列）已设为文本格式，请直接填写，勿改为数值，否则 18 位代码的末几位会丢失。",
    "日期写作 2021-03-31 或 2021/3/31，或填日期单元格；金额以元为单位，最多两位小数，可带千分位；是/否列从下拉列表选择。",
    "带下拉列表的列只能填列表中的值（中文名）；区域、条款编号的列表来自规则目录。",
    "下表逐列说明含义、类型、是否必填、可填写的形式、读取该列的条款和示例。",
]


def chosen(names: list[str] | None) -> list[str]:
    """The ledgers to write, in the contract's order: NAMES (English or Chinese) and applicants.
    Raises ValueError naming an unknown ledger."""
    if not names:
        return list(LEDGERS)
    by_zh = {zh: en for en, zh in LEDGER_ZH.items()}
    wanted = {"applicants"}
    for n in names:
        n = n.strip()
        if n in LEDGERS or n in by_zh:
            wanted.add(by_zh.get(n, n))
        elif n:
            raise ValueError(f"--ledgers: {n} is no ledger (one of {', '.join(LEDGERS)}, or its Chinese name)")
    return [n for n in LEDGERS if n in wanted]


def lists(cat: Catalogue) -> dict[tuple[str, str], list[str]]:
    """(ledger, column) -> the values its drop-down offers."""
    regions = region_names(cat)
    clauses = sorted(cat.rules, key=natural_key)
    out: dict[tuple[str, str], list[str]] = {}
    for ledger in LEDGERS.values():
        for col in ledger.columns:
            if col.enum:
                names = enum_zh(col)
                out[(ledger.name, col.name)] = [names.get(v, v) for v in col.enum]
            elif col.type == BOOL:
                out[(ledger.name, col.name)] = ["是", "否"]
            elif col.name == "region":
                out[(ledger.name, col.name)] = [regions.get(r, r) for r in cat.regions]
            elif col.name == "clause_id":
                out[(ledger.name, col.name)] = clauses
    return out


def write_template(path: Path, cat: Catalogue, ledgers: list[str]) -> None:
    """The workbook at PATH (written next to it, then moved into place; OSError when it cannot be)."""
    import xlsxwriter
    import xlsxwriter.exceptions

    staging = path.with_name(path.name + ".part")
    wb = xlsxwriter.Workbook(str(staging))
    head = wb.add_format({"bold": True, "bg_color": "#E4ECF5", "border": 1, "text_wrap": True, "valign": "top"})
    required_head = wb.add_format({"bold": True, "bg_color": "#FCE4D6", "border": 1, "text_wrap": True,
                                   "valign": "top"})
    wrap = wb.add_format({"text_wrap": True, "valign": "top"})
    title = wb.add_format({"bold": True, "font_size": 14})
    formats = {STR: wb.add_format({"num_format": "@"}), DATE: wb.add_format({"num_format": "yyyy-mm-dd"}),
               MONEY: wb.add_format({"num_format": "#,##0.00"})}
    dropdowns = lists(cat)
    read = readers(cat)

    guide = wb.add_worksheet(GUIDE_SHEET)
    _guide(guide, ledgers, read, dropdowns, head, wrap, title)

    sheets = {name: wb.add_worksheet(LEDGERS[name].zh) for name in ledgers}
    values = wb.add_worksheet(LIST_SHEET)
    places: dict[tuple[str, ...], str] = {}  # one list column per distinct list
    for key, items in dropdowns.items():
        if key[0] in sheets and tuple(items) not in places:
            j = len(places)
            values.write_string(0, j, f"{key[0]}.{key[1]}")
            for i, item in enumerate(items, start=1):
                values.write_string(i, j, item)
            letter = xlsxwriter.utility.xl_col_to_name(j)
            places[tuple(items)] = f"='{LIST_SHEET}'!${letter}$2:${letter}${len(items) + 1}"
    values.hide()

    for name, ws in sheets.items():
        ledger = LEDGERS[name]
        ws.set_row(0, 30)
        for j, col in enumerate(ledger.columns):
            needed = col.required and not col.nullable
            ws.write_string(0, j, col.zh, required_head if needed else head)
            ws.write_comment(0, j, f"{col.name}\n{TYPE_ZH[col.type]}，{need_zh(col)}", {"x_scale": 1.4})
            fmt = formats.get(STR if col.type in (STR, BOOL) else col.type)
            ws.set_column(j, j, max(WIDTH[col.type], 2 * len(col.zh) + 2), fmt)
            items = dropdowns.get((name, col.name))
            if items:
                ws.data_validation(1, j, LAST_ROW, j, {
                    "validate": "list", "source": places[tuple(items)], "ignore_blank": True,
                    "error_title": col.zh, "error_message": "请从下拉列表中选择",
                })
        ws.freeze_panes(1, 0)
    guide.activate()
    try:
        wb.close()
        staging.replace(path)
    except (OSError, xlsxwriter.exceptions.FileCreateError) as exc:
        staging.unlink(missing_ok=True)
        raise OSError(str(getattr(exc, "strerror", None) or exc)) from None


def _guide(ws, ledgers: list[str], read: dict, dropdowns: dict, head, wrap, title) -> None:
    ws.write_string(0, 0, "台账填报说明", title)
    for i, text in enumerate(GUIDE, start=2):
        ws.merge_range(i, 0, i, 9, text, wrap)
        ws.set_row(i, 32)
    at = len(GUIDE) + 3
    columns = [("台账", 10), ("台账（英文）", 14), ("列名", 18), ("列名（英文）", 22), ("类型", 10), ("是否必填", 14),
               ("含义", 50), ("可填写的形式", 44), ("读取该列的条款", 30), ("示例", 22)]
    for j, (text, width) in enumerate(columns):
        ws.write_string(at, j, text, head)
        ws.set_column(j, j, width)
    ws.freeze_panes(at + 1, 0)
    for name in ledgers:
        ledger = LEDGERS[name]
        at += 1
        ws.write_string(at, 0, ledger.zh, head)
        ws.write_string(at, 1, name, head)
        ws.merge_range(at, 2, at, 9, LEDGER_MEANING[name][0], wrap)
        for col in ledger.columns:
            at += 1
            m = meaning(name, col.name)
            forms = FORMS_ZH[col.type]
            items = dropdowns.get((name, col.name))
            if items and col.type != BOOL:
                shown = "、".join(items) if len(items) <= 25 else "、".join(items[:25]) + f" 等 {len(items)} 项"
                forms = f"从下拉列表选择：{shown}"
            row = [ledger.zh, name, col.zh, col.name, TYPE_ZH[col.type], need_zh(col), m.zh, forms,
                   "、".join(read.get((name, col.name), [])) or "—", m.example]
            for j, text in enumerate(row):
                ws.write_string(at, j, text, wrap)
