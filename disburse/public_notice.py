"""公示名单: the public-notice list of a region's year, written with the run beside payments.csv.

One row per firm and clause paid this year (the clause's payable lines summed: its matters and
installments): 序号 (one per firm), 企业名称, 统一社会信用代码, 条款 (its title and article) and 金额;
then the total (firms, rows, yuan), the run id and its date, and in the title the region's Chinese
name and the year. ``params.public_notice`` says what is shown (``disburse.params.PublicNotice``):

- ``amounts: per_firm`` (the default) gives each firm's total once, on its first row; ``per_line``
  the amount of each firm and clause; ``none`` no amount per firm (the list's total stays);
- ``mask_credit_code: true`` shows the middle eight characters of the credit code as ``*``.

``公示名单.xlsx`` (xlsxwriter: a title, the header repeated on every printed page, A4) and
``公示名单.html`` (printable on A4, self-contained: no script, font or file from elsewhere). Rows are
rendered with polars string expressions, as the audit's and the workbook's are: no Python loop over rows.
The per-firm amounts add up, to the fen, to payments.csv's ``total_payable``.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import polars as pl
import xlsxwriter
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from disburse.audit import RunInfo, _html
from disburse.excel import _letters, _xml_text
from disburse.money import fmt_fen, fmt_fen_expr, total_fen, yuan_text
from disburse.params import PublicNotice
from disburse.tables import RegionResult

XLSX, HTML = "公示名单.xlsx", "公示名单.html"
TITLE_ROWS = 3  # the sheet's title, policy and run rows; the header is the next row, the data after it

_env = Environment(loader=PackageLoader("disburse", "templates"), autoescape=select_autoescape())


def settings(run: RunInfo) -> PublicNotice:
    return run.public_notice if isinstance(run.public_notice, PublicNotice) else PublicNotice()


def masked(code: pl.Expr) -> pl.Expr:
    """The credit code with its middle eight characters as * (913101********0017): the registering
    authority and area, and the last four, stay."""
    return pl.when(code.str.len_chars() > 10).then(
        pl.concat_str(code.str.slice(0, 6), pl.lit("*" * 8), code.str.slice(-4))).otherwise(code)


def notice_rows(result: RegionResult, shown: PublicNotice) -> pl.DataFrame:
    """One row per firm and clause paid: applicant_id, applicant_name, code (as shown), clause_id,
    clause_title, article, clause (title and article), amount_fen (the clause's), firm_fen (the firm's
    total), firm_no (序号, one per firm), first (the firm's first row), rows (the firm's rows)."""
    per_clause = (
        result.disbursements
        .group_by("applicant_id", "clause_id")
        .agg(pl.col("applicant_name").first(), pl.col("clause_title").first(), pl.col("article").first(),
             pl.col("payable_fen").cast(pl.Int128).sum().cast(pl.Int64).alias("amount_fen"))
        .sort("applicant_id", "clause_id")
    )
    firm = pl.col("applicant_id")
    code = masked(firm) if shown.mask_credit_code else firm
    return per_clause.with_columns(
        code.alias("code"),
        pl.format("{}（{}）", pl.col("clause_title"), pl.col("article")).alias("clause"),
        pl.col("amount_fen").sum().over("applicant_id").alias("firm_fen"),
        firm.rle_id().add(1).alias("firm_no"),
        firm.is_first_distinct().alias("first"),
        pl.len().over("applicant_id").cast(pl.Int64).alias("rows"),
    )


def title_of(result: RegionResult, year: int) -> str:
    return f"{result.region_zh or result.region} {year} 年度产业扶持资金兑付名单（公示）"


def _run_line(run: RunInfo) -> str:
    return f"运行编号 {run.run_id}" + (f"　生成日期 {run.date}" if run.date else "")


def _total_line(rows: pl.DataFrame, total: int) -> str:
    firms = int(rows["applicant_id"].n_unique())
    return f"合计：{firms} 户，{rows.height} 项，金额 {fmt_fen(total)} 元"


def write_public_notice(result: RegionResult, year: int, directory: Path, run: RunInfo) -> dict[str, int]:
    """公示名单.xlsx and .html in DIRECTORY; rows by file name (one per firm and clause)."""
    shown = settings(run)
    rows = notice_rows(result, shown)
    total = total_fen(rows["amount_fen"])
    _write_xlsx(directory / XLSX, rows, result, year, run, shown, total)
    _write_html(directory / HTML, rows, result, year, run, shown, total)
    return {XLSX: rows.height, HTML: rows.height}


# --- the workbook -----------------------------------------------------------------------------------

def _amount(shown: PublicNotice) -> pl.Expr | None:
    """The 金额 cell of a row (fen; null: empty), or None where the list shows no amount per firm."""
    if shown.amounts == "per_line":
        return pl.col("amount_fen")
    if shown.amounts == "per_firm":
        return pl.when(pl.col("first")).then(pl.col("firm_fen"))
    return None


def _amount_heading(shown: PublicNotice) -> str:
    return "金额（元）" if shown.amounts == "per_line" else "金额（元，每户合计）"


def _write_xlsx(path: Path, rows: pl.DataFrame, result: RegionResult, year: int, run: RunInfo,
                shown: PublicNotice, total: int) -> None:
    """xlsxwriter writes the title, the header, the print setup and the total; the data rows are rendered
    with polars as cell XML (inline strings) and spliced into the sheet, as payments.xlsx does."""
    amount = _amount(shown)
    headings = ["序号", "企业名称", "统一社会信用代码", "条款"] + ([_amount_heading(shown)] if amount is not None else [])
    widths = [7, 36, 24, 56, 20]
    staging = path.with_name(path.name + ".part")
    wb = xlsxwriter.Workbook(str(staging), {"in_memory": True})
    title_f = wb.add_format({"bold": True, "font_size": 14})
    head_f = wb.add_format({"bold": True, "bg_color": "#E4ECF5", "border": 1, "text_wrap": True})
    money_f = wb.add_format({"num_format": "#,##0.00", "border": 1})
    text_f = wb.add_format({"border": 1, "text_wrap": True, "valign": "top"})
    bold_f = wb.add_format({"bold": True, "border": 1})
    bold_money_f = wb.add_format({"bold": True, "border": 1, "num_format": "#,##0.00"})
    ws = wb.add_worksheet("公示名单")
    for j, heading in enumerate(headings):
        ws.set_column(j, j, widths[j])
    ws.write_string(0, 0, title_of(result, year), title_f)
    ws.write_string(1, 0, result.policy_title or "")
    ws.write_string(2, 0, _run_line(run) + "　金额单位：元")
    for j, heading in enumerate(headings):
        ws.write_string(TITLE_ROWS, j, heading, head_f)
    first = TITLE_ROWS + 1                     # 0-based row of the first data row
    after = first + rows.height                # 0-based row of the total
    ws.write_string(after, 0, "合计", bold_f)
    ws.write_string(after, 1, f"{rows['applicant_id'].n_unique()} 户，{rows.height} 项", bold_f)
    ws.write_blank(after, 2, None, bold_f)
    if amount is not None:
        ws.write_blank(after, 3, None, bold_f)
        ws.write_number(after, 4, total / 100, bold_money_f)
    else:  # no amount per firm: the list's total still
        ws.write_string(after, 3, f"金额 {fmt_fen(total)} 元", bold_f)
    ws.set_paper(9)                              # A4
    ws.set_portrait()
    ws.repeat_rows(TITLE_ROWS)                   # the header on every printed page
    ws.fit_to_pages(1, 0)
    ws.set_footer("&C第 &P 页，共 &N 页")
    ws.freeze_panes(first, 0)
    text_style, money_style = text_f._get_xf_index(), money_f._get_xf_index()
    wb.close()

    r = pl.col("_r")

    def text(j: int, value: pl.Expr) -> pl.Expr:
        return pl.format(f'<c r="{_letters(j)}{{}}" s="{text_style}" t="inlineStr"><is><t xml:space="preserve">{{}}</t></is></c>',
                         r, _xml_text(value.cast(pl.String).fill_null("")))

    cells = [pl.format(f'<c r="A{{}}" s="{text_style}"><v>{{}}</v></c>', r, pl.col("firm_no")), text(1, pl.col("applicant_name")), text(2, pl.col("code")),
             text(3, pl.col("clause"))]
    if amount is not None:
        cells.append(pl.when(amount.is_not_null()).then(
            pl.format(f'<c r="E{{}}" s="{money_style}"><v>{{}}</v></c>', r, yuan_text(amount)))
            .otherwise(pl.format(f'<c r="E{{}}" s="{money_style}"/>', r)))
    data = rows.with_columns(pl.int_range(first + 1, first + 1 + pl.len()).cast(pl.String).alias("_r")).select(
        pl.format('<row r="{}">{}</row>', r, pl.concat_str(cells)).str.join("").cast(pl.Binary)).item() \
        if rows.height else b""
    with zipfile.ZipFile(staging) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
        for item in src.infolist():
            data_ = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                xml = data_.decode("utf-8")
                xml = re.sub(r'<dimension ref="[^"]*"/>',
                             f'<dimension ref="A1:{_letters(len(headings) - 1)}{after + 1}"/>', xml, count=1)
                at = xml.index(f'<row r="{after + 1}"')   # the total row: the data rows go in before it
                data_ = b"".join((xml[:at].encode("utf-8"), data, xml[at:].encode("utf-8")))
            dst.writestr(item, data_, compresslevel=1)
    staging.unlink()


# --- the printable page ---------------------------------------------------------------------------

def _write_html(path: Path, rows: pl.DataFrame, result: RegionResult, year: int, run: RunInfo,
                shown: PublicNotice, total: int) -> None:
    amount = _amount(shown)
    span = pl.when(pl.col("first")).then(pl.format(
        '<td rowspan="{}" class="num">{}</td><td rowspan="{}">{}</td><td rowspan="{}" class="id">{}</td>',
        pl.col("rows"), pl.col("firm_no"), pl.col("rows"), _html("applicant_name"), pl.col("rows"), _html("code"),
    )).otherwise(pl.lit(""))
    if shown.amounts == "per_line":
        money = pl.format('<td class="num">{}</td>', fmt_fen_expr(pl.col("amount_fen")))
    elif shown.amounts == "per_firm":
        money = pl.when(pl.col("first")).then(pl.format('<td rowspan="{}" class="num">{}</td>', pl.col("rows"),
                                                        fmt_fen_expr(pl.col("firm_fen")))).otherwise(pl.lit(""))
    else:
        money = pl.lit("")
    # a firm's rows stay on one printed page where they fit (one <tbody> per firm)
    row = pl.format('{}<tr>{}<td>{}</td>{}</tr>{}',
                    pl.when(pl.col("first")).then(pl.lit('<tbody class="firm">')).otherwise(pl.lit("")),
                    span, _html("clause"), money,
                    pl.when(pl.col("applicant_id") != pl.col("applicant_id").shift(-1, fill_value="")).then(
                        pl.lit("</tbody>")).otherwise(pl.lit("")))
    body = rows.select(row.str.join("\n")).item() if rows.height else ""
    page = _env.get_template("public_notice.html.j2").render(
        title=title_of(result, year), policy_title=result.policy_title, run_line=_run_line(run),
        amount_heading=_amount_heading(shown) if amount is not None else None, body=Markup(body),
        total_line=_total_line(rows, total), firms=rows["applicant_id"].n_unique(), lines=rows.height,
        total=fmt_fen(total), masked=shown.mask_credit_code)
    path.write_text(page, encoding="utf-8")
