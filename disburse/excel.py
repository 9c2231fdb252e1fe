"""payments.xlsx: the finance handoff as a workbook.

Sheets: 封面 (year, region, run id, fingerprints, totals), 付款 (one row per
applicant, as payments.csv), 明细 (one row per payable line, as
disbursements.csv, with the reasons in words; past a sheet's capacity it goes
on in 明细 2, …), 条款汇总 (totals per clause). Ids are text cells (an
18-character credit code of digits never becomes a number); amounts are
numeric cells holding the exact yuan text of the fen amount ("1234.56"),
formatted to the fen.

xlsxwriter writes the workbook (styles, cover, headers, column widths, the
money format); the data rows of the sheets are then rendered with polars
string expressions as cell XML and spliced into those sheets. Their text cells
refer to the workbook's shared strings (each distinct text of the data rows
stored once, after xlsxwriter's own entries), numbers carry the money format's
style. Cell by cell through xlsxwriter cost about 20 µs a cell here: 12 s of
the write stage for the 100,000-applicant city; as inline strings the lines
sheet was about 700 bytes a row, with shared strings about half of that.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import xlsxwriter

from disburse.money import fmt_ppm_expr, yuan_text
from disburse.phrases import reasons_expr

SHEET_ROWS = 1_000_000  # an Excel sheet holds 1,048,576 rows
TEXT, MONEY, INT = "text", "money", "int"
SIGNED = "signed"  # money of either sign (an adjustment's difference)
_XML_BAD = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"


def _letters(j: int) -> str:
    s = ""
    j += 1
    while j:
        j, r = divmod(j - 1, 26)
        s = chr(65 + r) + s
    return s


def _xml_text(e: pl.Expr) -> pl.Expr:
    e = e.cast(pl.String).str.replace_all(_XML_BAD, "")
    return e.str.replace_many(["&", "<", ">"], ["&amp;", "&lt;", "&gt;"])  # one pass: no & escaped twice


def _cell(j: int, kind: str, value: pl.Expr, row: pl.Expr, money_style: int, offset: int) -> pl.Expr:
    """One cell's XML (empty for a null or empty text). ROW: the row number as text; a text cell's VALUE is
    the number of its entry among the shared strings this workbook adds, whose first sits at OFFSET."""
    at = _letters(j)
    if kind == MONEY:
        xml = pl.format(f'<c r="{at}{{}}" s="{money_style}"><v>{{}}</v></c>', row, yuan_text(value))
    elif kind == SIGNED:
        text = pl.when(value < 0).then(pl.lit("-") + yuan_text(-value)).otherwise(yuan_text(value))
        xml = pl.format(f'<c r="{at}{{}}" s="{money_style}"><v>{{}}</v></c>', row, text)
    elif kind == INT:
        xml = pl.format(f'<c r="{at}{{}}"><v>{{}}</v></c>', row, value)
    else:
        xml = pl.format(f'<c r="{at}{{}}" t="s"><v>{{}}</v></c>', row, value.cast(pl.Int64) + offset)
    return xml.fill_null("")


def _text(value: pl.Expr) -> pl.Expr:
    """A text cell's value; null where the cell stays empty (null or empty text)."""
    text = value.cast(pl.String)
    return pl.when(text != "").then(text)


Sheet = tuple[pl.DataFrame, list[tuple[str, str, pl.Expr]]]


def _share(sheets: list[Sheet]) -> tuple[list[Sheet], pl.Series, int]:
    """SHEETS with each text column replaced by its value's number among the distinct texts of all the
    sheets (null: an empty cell); those texts, in order of first appearance; and the text cells' count.

    The texts of all the sheets are numbered in one cast to one Enum (a cast per column costs as much again
    as writing the rows) and cut back into the columns they came from."""
    texts = [[df.select(_text(expr)).to_series().rename("text") if kind == TEXT else None for _, kind, expr in columns]
             for df, columns in sheets]
    found = [t for sheet in texts for t in sheet if t is not None]
    every = pl.concat(found) if found else pl.Series("text", [], pl.String)
    distinct = every.drop_nulls().unique(maintain_order=True)
    numbers = every.cast(pl.Enum(distinct)).to_physical()
    out, at = [], 0
    for (df, columns), sheet in zip(sheets, texts):
        numbered = {}
        for j, t in enumerate(sheet):
            if t is not None:
                numbered[f"_s{j}"] = numbers.slice(at, t.len())
                at += t.len()
        out.append((df.with_columns(**numbered),
                    [(title, kind, pl.col(f"_s{j}") if f"_s{j}" in numbered else expr)
                     for j, (title, kind, expr) in enumerate(columns)]))
    return out, distinct, every.len() - every.null_count()


def _shared_strings(xml: bytes, offset: int, strings: pl.Series, references: int) -> bytes:
    """xlsxwriter's sharedStrings.xml (OFFSET entries) with STRINGS added after its own; REFERENCES: the
    cells that refer to them (the count attribute counts references, uniqueCount entries)."""
    text = xml.decode("utf-8")
    counts = re.search(r'<sst [^>]*count="(\d+)" uniqueCount="(\d+)">', text)
    if counts is None or text.count("</sst>") != 1 or int(counts.group(2)) != offset:
        raise RuntimeError("xlsxwriter's shared strings are not as expected; payments.xlsx cannot be written")
    head = text[:counts.start()] + counts.group(0).replace(
        f'count="{counts.group(1)}" uniqueCount="{counts.group(2)}"',
        f'count="{int(counts.group(1)) + references}" uniqueCount="{int(counts.group(2)) + strings.len()}"')
    body, tail = text[counts.end():].split("</sst>")
    items = strings.to_frame("s").select(
        pl.format('<si><t xml:space="preserve">{}</t></si>', _xml_text(pl.col("s"))).str.join("").cast(pl.Binary)).item()
    return b"".join(((head + body).encode("utf-8"), items or b"", ("</sst>" + tail).encode("utf-8")))


def _rows_xml(df: pl.DataFrame, columns: list[tuple[str, str, pl.Expr]], money_style: int, offset: int = 0) -> bytes:
    """Rows 2.. of a sheet (row 1 is the header) as one UTF-8 XML text, vectorised (text columns as
    ``_share`` numbered them).

    Taken from polars as bytes: never decoded into a Python string and encoded again."""
    if df.is_empty():
        return b""
    row = pl.col("_row_number")
    cells = [_cell(j, kind, expr, row, money_style, offset) for j, (_, kind, expr) in enumerate(columns)]
    xml = pl.format('<row r="{}">{}</row>', row, pl.concat_str(cells))
    numbered = df.with_columns(pl.int_range(2, pl.len() + 2).cast(pl.String).alias("_row_number"))
    return numbered.select(xml.str.join("").cast(pl.Binary)).item()


def _header(wb, name: str, columns: list[tuple[str, str, pl.Expr]], head, rows: int) -> None:
    """A data sheet's header row, column widths, frozen header and an autofilter over its ROWS data rows."""
    ws = wb.add_worksheet(name)
    for j, (title, kind, _) in enumerate(columns):
        ws.write_string(0, j, title, head)
        ws.set_column(j, j, {TEXT: 22, MONEY: 16, SIGNED: 16, INT: 10}[kind])
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, rows, len(columns) - 1)


def _total_row(columns: list[tuple[str, str, pl.Expr]], rows: int, label: str, sums: dict[str, int],
               label_style: int, money_style: int) -> bytes:
    """A total row two rows below the last data row (a blank row between, so the autofilter and a sort
    never take it for data): LABEL in the first column, each SUMS entry (column title -> fen) under its
    column, the exact yuan text as the number."""
    r = rows + 3
    cells = [f'<c r="A{r}" s="{label_style}" t="inlineStr"><is><t>{_escape(label)}</t></is></c>']
    for j, (title, _, _) in enumerate(columns):
        if title in sums:
            cells.append(f'<c r="{_letters(j)}{r}" s="{money_style}"><v>{fen_text(sums[title])}</v></c>')
    return f'<row r="{r}">{"".join(cells)}</row>'.encode("utf-8")


def _escape(text: str) -> str:
    text = re.sub(_XML_BAD, "", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fen_text(fen: int) -> str:
    """Integer fen, either sign, as exact yuan text ("-1234.56")."""
    sign, fen = ("-", -fen) if fen < 0 else ("", fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


# The cover's approval cells, found again by these workbook names when ``disburse approve`` stamps them.
APPROVAL_CELLS = {"status": "disburse_approval_status", "by": "disburse_approved_by", "at": "disburse_approved_at"}
NOT_APPROVED = "未审批（财务以 disburse approve 审批后，此处注明审批人和时间）"
SIGNERS = ("经办", "复核", "审批")


def _sign_off(wb, ws, at: int, fmt: dict, *, status: str = NOT_APPROVED) -> int:
    """The approval status (three cells named for ``stamp_approval``) and a block to sign by hand: 经办 / 复核 /
    审批, each with a name and a date blank. Returns the next free row."""
    sheet = ws.get_name()
    for label, key, value in (("审批状态", "status", status), ("审批人", "by", None), ("审批时间（北京时间）", "at", None)):
        ws.write_string(at, 0, label)
        if value is None:
            ws.write_blank(at, 1, None, fmt["line"])
        else:
            ws.write_string(at, 1, value, fmt["line"])
        wb.define_name(APPROVAL_CELLS[key], f"='{sheet}'!$B${at + 1}")
        at += 1
    at += 1
    ws.set_column(2, 2, 8)
    ws.set_column(3, 3, 18)
    ws.write_string(at, 0, "签批", fmt["head"])
    ws.write_string(at, 1, "签名", fmt["head"])
    ws.write_string(at, 3, "日期", fmt["head"])
    for i, role in enumerate(SIGNERS, start=1):
        ws.set_row(at + i, 30)
        ws.write_string(at + i, 0, role)
        ws.write_blank(at + i, 1, None, fmt["line"])
        ws.write_string(at + i, 2, "日期")
        ws.write_blank(at + i, 3, None, fmt["line"])
    return at + len(SIGNERS) + 1


@dataclass
class DataSheet:
    """A sheet of rows: NAME, the frame, its columns (title, kind, expression) and an optional total row
    (label, column title -> fen)."""
    name: str
    df: pl.DataFrame
    columns: list[tuple[str, str, pl.Expr]]
    total: tuple[str, dict[str, int]] | None = None


def _open_book(path: Path) -> tuple[object, dict, Path]:
    """A workbook to be written to PATH (through a staging file) and its formats; the caller writes its
    cover, then ``_close_book`` adds the data sheets."""
    staging = path.with_name(path.name + ".part")
    wb = xlsxwriter.Workbook(str(staging), {"in_memory": True})  # small: the large sheets get their rows below
    fmt = {"money": wb.add_format({"num_format": "#,##0.00"}),
           "head": wb.add_format({"bold": True, "bg_color": "#E4ECF5"}),
           "line": wb.add_format({"bottom": 1}),
           "bold": wb.add_format({"bold": True, "top": 1}),
           "bold_money": wb.add_format({"bold": True, "top": 1, "num_format": "#,##0.00"})}
    return wb, fmt, staging


def _close_book(wb, fmt: dict, staging: Path, path: Path, sheets: list[DataSheet]) -> None:
    """The data sheets after the cover, their rows spliced in as XML (see the module's docstring), and
    the workbook written to PATH."""
    money_style = fmt["money"]._get_xf_index()
    bold_style, bold_money_style = fmt["bold"]._get_xf_index(), fmt["bold_money"]._get_xf_index()
    for sheet in sheets:
        _header(wb, sheet.name, sheet.columns, fmt["head"], sheet.df.height)
    shared, added, references = _share([(s.df, s.columns) for s in sheets])
    offset = wb.str_table.unique_count  # xlsxwriter's own strings (headers, cover) come first: checked at the splice
    # sheet number (1-based, in order of creation) -> (its data rows' XML, its columns, its last row)
    spliced = {}
    for number, (sheet, (df, columns)) in enumerate(zip(sheets, shared), start=2):
        rows = _rows_xml(df, columns, money_style, offset)
        last = df.height + 1
        if sheet.total is not None:
            rows += _total_row(columns, df.height, *sheet.total, bold_style, bold_money_style)
            last = df.height + 3
        spliced[number] = (rows, len(columns), last)
    wb.close()

    with zipfile.ZipFile(staging) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
        if "xl/sharedStrings.xml" not in src.namelist():  # every text cell would point at nothing
            raise RuntimeError("xlsxwriter wrote no shared strings; the workbook cannot be written")
        for item in src.infolist():
            data = src.read(item.filename)
            number = re.fullmatch(r"xl/worksheets/sheet(\d+)\.xml", item.filename)
            if item.filename == "xl/sharedStrings.xml":
                data = _shared_strings(data, offset, added, references)
            elif number and spliced.get(int(number.group(1)), (b"",))[0]:
                xml = data.decode("utf-8")
                rows, n_cols, last = spliced[int(number.group(1))]
                xml = re.sub(r'<dimension ref="[^"]*"/>', f'<dimension ref="A1:{_letters(n_cols - 1)}{last}"/>',
                             xml, count=1)
                head, tail = xml.split("</sheetData>", 1)
                data = b"".join((head.encode("utf-8"), rows, b"</sheetData>", tail.encode("utf-8")))
            dst.writestr(item, data, compresslevel=1)  # the level given to ZipFile does not reach a copied ZipInfo
    staging.unlink()


def write_payments_xlsx(path: Path, *, year: int, region: str, run_id: str, rules_fp: str, params_fp: str,
                        payments: pl.DataFrame, lines: pl.DataFrame, totals: pl.DataFrame,
                        budgets: pl.DataFrame | None = None) -> int:
    """PAYMENTS: applicant_id, applicant_name, total_payable_fen; LINES: the payable lines (audit columns);
    TOTALS: clause_id, clause_title, article, paid_lines, payable_fen; BUDGETS: the fund ceilings
    (disburse.tables.FACTS_SCHEMA), on the cover. Returns the payments sheet's rows."""
    c = pl.col
    pay_cols = [("统一社会信用代码", TEXT, c("applicant_id")), ("名称", TEXT, c("applicant_name")),
                ("应付（元）", MONEY, c("total_payable_fen"))]
    line_cols = [
        ("统一社会信用代码", TEXT, c("applicant_id")), ("名称", TEXT, c("applicant_name")),
        ("条款", TEXT, c("clause_id")), ("条款标题", TEXT, c("clause_title")), ("事项", TEXT, c("matter_id")),
        ("期次", TEXT, pl.format("{}/{}", c("installment"), c("installments"))),
        ("基数（元）", MONEY, c("base_fen")), ("比例", TEXT, fmt_ppm_expr(c("eff_rate_ppm"))),
        ("测算金额（元）", MONEY, c("gross_fen")), ("应付（元）", MONEY, c("payable_fen")),
        ("原因", TEXT, reasons_expr("reasons")), ("原因代码", TEXT, c("reasons")),
    ]
    total_cols = [("条款", TEXT, c("clause_id")), ("标题", TEXT, c("clause_title")), ("条文", TEXT, c("article")),
                  ("应付行数", INT, c("paid_lines")), ("应付（元）", MONEY, c("payable_fen"))]

    wb, fmt, staging = _open_book(path)
    money, head = fmt["money"], fmt["head"]
    total_fen = int(payments["total_payable_fen"].cast(pl.Int128).sum() or 0)  # Int128: never wraps
    cover = wb.add_worksheet("封面")
    cover.set_column(0, 0, 20)
    cover.set_column(1, 1, 72)
    cover.write_string(0, 0, "产业扶持资金兑付：交财务付款", head)
    info = [("年度", year), ("区域", region), ("运行编号（run id）", run_id), ("规则指纹", rules_fp), ("参数指纹", params_fp),
            ("付款户数", payments.height), ("明细行数", lines.height)]
    for i, (label, value) in enumerate(info, start=2):
        cover.write_string(i, 0, label)
        (cover.write_string if isinstance(value, str) else cover.write_number)(i, 1, value)
    cover.write_string(len(info) + 2, 0, "应付合计（元）")
    cover.write_number(len(info) + 2, 1, total_fen / 100, money)
    cover.write_string(len(info) + 4, 0, "付款表每户一行，应付等于该户明细行之和；金额单位元，精确到分；与 payments.csv、disbursements.csv 一致。")
    at = len(info) + 6
    for b in (budgets.to_dicts() if budgets is not None else []):
        for label, value in ((f"资金额度（{b['scope']}）（元）", b["budget_fen"]), ("核减前应付（元）", b["uncut_fen"]),
                             ("其中先付已欠（元）", b["owed_fen"])):
            cover.write_string(at, 0, label)
            cover.write_number(at, 1, value / 100, money)
            at += 1
        cover.write_string(at, 0, "核减比例")
        cover.write_string(at, 1, b["ratio"] if b["cut"] else "未超出额度，不核减")
        at += 2
    _sign_off(wb, cover, at, fmt)

    chunks = [lines.slice(k, SHEET_ROWS) for k in range(0, max(lines.height, 1), SHEET_ROWS)]
    _close_book(wb, fmt, staging, path, [
        DataSheet("付款", payments, pay_cols, (f"合计（{payments.height} 户）", {"应付（元）": total_fen})),
        *(DataSheet("明细" if k == 0 else f"明细 {k + 1}", chunk, line_cols) for k, chunk in enumerate(chunks)),
        DataSheet("条款汇总", totals, total_cols),
    ])
    return payments.height



class StampError(Exception):
    """A workbook's approval cells cannot be found; one line."""


def stamp_approval(source: Path, target: Path, texts: dict[str, str]) -> None:
    """Copy the workbook SOURCE to TARGET with its cover's approval cells (keys of APPROVAL_CELLS, found by
    their workbook names) holding TEXTS; every other part is copied as it is."""
    with zipfile.ZipFile(source) as src:
        book = src.read("xl/workbook.xml").decode("utf-8")
        first = re.search(r'<sheet name="([^"]*)"', book)
        cells: dict[str, str] = {}
        for key, text in texts.items():
            found = re.search(rf'<definedName name="{APPROVAL_CELLS[key]}">([^<]*)</definedName>', book)
            where = found and re.fullmatch(r"'?(.+?)'?!\$([A-Z]+)\$(\d+)", found.group(1).replace("&apos;", "'"))
            if not where or first is None or where.group(1).replace("''", "'") != first.group(1):
                raise StampError(f"{source}: no approval cell {APPROVAL_CELLS[key]} on its cover")
            cells[f"{where.group(2)}{where.group(3)}"] = text
        sheet = src.read("xl/worksheets/sheet1.xml").decode("utf-8")
        strings = src.read("xl/sharedStrings.xml")
        counts = re.search(rb'<sst [^>]*count="(\d+)" uniqueCount="(\d+)">', strings)
        if counts is None or strings.count(b"</sst>") != 1:
            raise StampError(f"{source}: its shared strings are not as this job writes them")
        unique, references = int(counts.group(2)), int(counts.group(1))
        added = []
        for ref, text in cells.items():
            cell = re.search(rf'<c r="{ref}"(?P<attrs>[^>]*?)(?:/>|>.*?</c>)', sheet)
            if cell is None:
                raise StampError(f"{source}: no cell {ref} on its cover")
            style = re.search(r' s="(\d+)"', cell.group("attrs"))
            references += 0 if ' t="s"' in cell.group("attrs") else 1
            new = f'<c r="{ref}"{f" s={chr(34)}{style.group(1)}{chr(34)}" if style else ""} t="s"><v>{unique + len(added)}</v></c>'
            sheet = sheet[:cell.start()] + new + sheet[cell.end():]
            added.append(f'<si><t xml:space="preserve">{_escape(text)}</t></si>')
        head = strings[:counts.start()] + counts.group(0).replace(
            b'count="%s" uniqueCount="%s"' % (counts.group(1), counts.group(2)),
            b'count="%d" uniqueCount="%d"' % (references, unique + len(added)))
        body, tail = strings[counts.end():].split(b"</sst>")
        strings = b"".join((head, body, "".join(added).encode("utf-8"), b"</sst>", tail))
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
            for item in src.infolist():
                data = {"xl/worksheets/sheet1.xml": sheet.encode("utf-8"),
                        "xl/sharedStrings.xml": strings}.get(item.filename) or src.read(item.filename)
                dst.writestr(item, data, compresslevel=1)


def write_adjustments_xlsx(path: Path, *, year: int, region: str, approved_run: str, run_id: str,
                           adjustments: pl.DataFrame) -> int:
    """adjustments.xlsx: a cover (the approved run, the rerun, counts and totals to pay and to recover,
    the approval status and a block to sign) and 调整, one row per adjustment with the approved and the
    recomputed amounts, the difference, 补付 or 追回, and both computations' steps in words. ADJUSTMENTS:
    applicant_id, applicant_name, clause_id, clause_title, matter_id, approved_fen, recomputed_fen,
    difference_fen, recomputed_steps, approved_steps. Returns its rows."""
    c = pl.col
    columns = [
        ("统一社会信用代码", TEXT, c("applicant_id")), ("名称", TEXT, c("applicant_name")),
        ("条款", TEXT, c("clause_id")), ("条款标题", TEXT, c("clause_title")), ("事项", TEXT, c("matter_id")),
        ("已审批（元）", SIGNED, c("approved_fen")), ("重算（元）", SIGNED, c("recomputed_fen")),
        ("差额（元）", SIGNED, c("difference_fen")),
        ("处理", TEXT, pl.when(c("difference_fen") > 0).then(pl.lit("补付")).otherwise(pl.lit("追回"))),
        ("重算的计算步骤", TEXT, c("recomputed_steps")), ("已审批的计算步骤", TEXT, c("approved_steps")),
    ]
    d = adjustments["difference_fen"].cast(pl.Int128)
    pay, recover = int(d.filter(d > 0).sum() or 0), -int(d.filter(d < 0).sum() or 0)
    sums = {"已审批（元）": int(adjustments["approved_fen"].cast(pl.Int128).sum() or 0),
            "重算（元）": int(adjustments["recomputed_fen"].cast(pl.Int128).sum() or 0), "差额（元）": pay - recover}
    wb, fmt, staging = _open_book(path)
    cover = wb.add_worksheet("封面")
    cover.set_column(0, 0, 20)
    cover.set_column(1, 1, 72)
    cover.write_string(0, 0, "已审批年度重算的调整：待审批后补付或追回", fmt["head"])
    info = [("年度", year), ("区域", region), ("已审批的运行", approved_run), ("重算运行", run_id),
            ("调整项数", adjustments.height), ("补付项数", int((d > 0).sum())), ("追回项数", int((d < 0).sum()))]
    for i, (label, value) in enumerate(info, start=2):
        cover.write_string(i, 0, label)
        (cover.write_string if isinstance(value, str) else cover.write_number)(i, 1, value)
    at = len(info) + 2
    for label, fen in (("补付合计（元）", pay), ("追回合计（元）", recover), ("净额（元，正为补付）", pay - recover)):
        cover.write_string(at, 0, label)
        cover.write_number(at, 1, fen / 100, fmt["money"])
        at += 1
    cover.write_string(at + 1, 0, "已审批的金额 = 已审批运行的明细行加此前已审批的调整；差额 = 重算 - 已审批。"
                                   "审批前这些调整不计为已付；审批后计入该年度。金额单位元，精确到分，与 adjustments.csv 一致。")
    _sign_off(wb, cover, at + 3, fmt, status="待审批（以 disburse approve 审批这些调整后，此处注明审批人和时间）")
    _close_book(wb, fmt, staging, path, [DataSheet("调整", adjustments, columns, (f"合计（{adjustments.height} 项）", sums))])
    return adjustments.height
