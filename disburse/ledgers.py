"""The ledgers of SPEC §3 as data, and reading them from disk.

Grain of every ledger is its ``key``. Reading keeps every value as text
(``pl.String``) and adds ``_row``: the row number in the file, the header
being row 1 (for Parquet, the first data row is row 2 likewise). A Parquet
column already of the contract's type (``native``: Decimal money, Int64
years, Date, Boolean) stays typed, so it is never printed to text and parsed
back. Typing and checking happen in ``transforms.validate``; nothing here
interprets a value.

A CSV is UTF-8 (BOM or not) or else GB18030; a well-formed UTF-8 file is read
by polars in one call. A record that cannot be split into the header's fields
is kept as a row marked ``_malformed`` (rejected by validation), and the rest
of the file is read. What stops a run is a file fault: a ledger name that is
no file, a header that is not CSV or names a ledger column twice, text that
is neither encoding, a missing column.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl

from disburse.sheets import (FAULT, SPREADSHEET_SUFFIXES, BookError, cells_returned_to_os, frame_sha256, is_spreadsheet,
                             open_book, read_sheet, visible_sheets)

ROW = "_row"

# Column types. "money" is yuan with at most 2 decimals, held inside as integer
# fen (Int64); "rate" is a share 0..1 held as integer millionths (Int64).
STR, INT, DATE, BOOL, MONEY, RATE, NUMBER = "str", "int", "date", "bool", "money", "rate", "number"

# Every enumeration value with its one Chinese name (what a bureau types, and
# what a template's drop-down offers). A value is read by either name; see
# docs/inputs.md "Spreadsheets, Chinese headers and the bureau's forms".
SIZES_ZH = {"large": "大型", "medium": "中型", "small": "小型", "micro": "微型"}
SECTORS_ZH = {"ai": "人工智能", "blockchain": "区块链", "collab": "协同创新", "other": "其他"}
COMPUTE_CATEGORIES_ZH = {
    "telecom": "通信服务", "cloud": "云服务", "compute_center": "算力中心",
    "supercomputing": "超算", "platform_service": "公共算力平台服务",
}
HIGHER_LEVELS_ZH = {"national": "国家级", "provincial": "省级", "municipal": "市级"}
FINANCING_KINDS_ZH = {
    "paid_in_capital": "实缴资本", "vc_investment": "风险投资", "loan": "贷款", "bond": "债券", "listing": "上市",
}
RECOGNITION_LEVELS_ZH = {
    **HIGHER_LEVELS_ZH,
    "cns": "CNS论文", "ccf_a": "CCF A类论文", "demo": "示范企业", "advantage": "优势企业",
    "national_key_lab": "国家重点实验室",
}
# The team's project categories (SPEC §3 leaves them to us); each names the
# kind of project a clause pays for. See docs/ledgers.md "What the categories mean".
PROJECT_CATEGORIES_ZH = {
    "key_technology": "关键技术攻关",         # lingang.1, xuhui.5, hangzhou.2
    "open_source_platform": "开源平台",       # lingang.2a/2b
    "public_dataset": "公共数据集",           # lingang.3.1a/3.1b
    "industry_dataset": "行业数据集",         # lingang.3.2a/3.2b
    "ai_transformation": "智能化改造",        # lingang.5.1
    "pilot_scenario": "试点场景",             # lingang.5.2
    "ai_procurement": "智能产品采购",         # lingang.5.3a/5.3b
    "smart_city": "智慧城市",                 # lingang.5.5
    "service_platform": "公共服务平台",       # lingang.6.1a/b/c
    "rd_institution": "研发机构",             # lingang.9.2
    "higher_level_funded": "上级资助项目",    # changning.7.1, jinan.4b
    "innovation_project": "创新产业项目",     # changning.7.2
    "open_scenario": "开放场景",              # changning.7.3
    "scenario_platform": "场景开放服务平台",  # hangzhou.11
    "data_exchange": "数据集交易",            # hangzhou.6
    "trading_platform": "交易平台",           # hangzhou.7
    "application_scenario": "应用场景",       # jinan.3a/3b
    "big_science": "大科学计划",              # jinan.4a
    "patent_insurance": "专利保险",           # lingang.10.2a
    "other": "其他",
}
EVENT_KINDS_ZH = {
    "forum": "论坛", "competition": "大赛", "exhibition_hosted": "主办展会", "exhibition_attended": "参展",
    "conference": "会议", "ecosystem": "生态活动", "summit": "峰会", "other": "其他",
}
# A bureau's word that names more than one value: never read as either (a rejected row, reason ambiguous_value).
AMBIGUOUS_ZH = {"size": {"小微": ("small", "micro"), "中小": ("medium", "small"), "中小微": ("medium", "small", "micro")}}

SIZES = tuple(SIZES_ZH)
SECTORS = tuple(SECTORS_ZH)
COMPUTE_CATEGORIES = tuple(COMPUTE_CATEGORIES_ZH)
HIGHER_LEVELS = tuple(HIGHER_LEVELS_ZH)
FINANCING_KINDS = tuple(FINANCING_KINDS_ZH)
RECOGNITION_LEVELS = tuple(RECOGNITION_LEVELS_ZH)
PROJECT_CATEGORIES = tuple(PROJECT_CATEGORIES_ZH)
EVENT_KINDS = tuple(EVENT_KINDS_ZH)
# enumeration (its English values) -> its Chinese names
ENUM_ZH: dict[tuple[str, ...], dict[str, str]] = {
    SIZES: SIZES_ZH, SECTORS: SECTORS_ZH, COMPUTE_CATEGORIES: COMPUTE_CATEGORIES_ZH,
    HIGHER_LEVELS: HIGHER_LEVELS_ZH, FINANCING_KINDS: FINANCING_KINDS_ZH,
    RECOGNITION_LEVELS: RECOGNITION_LEVELS_ZH, PROJECT_CATEGORIES: PROJECT_CATEGORIES_ZH,
    EVENT_KINDS: EVENT_KINDS_ZH,
}


@dataclass(frozen=True)
class Col:
    name: str
    type: str
    zh: str = ""                   # its one Chinese name (a header may be either)
    required: bool = True          # the column must be present in the file
    nullable: bool = False         # an empty value is allowed
    enum: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Ledger:
    name: str
    columns: tuple[Col, ...]
    key: tuple[str, ...]
    date_column: str | None = None  # the row's own date, if it has one
    has_applicant: bool = True
    optional_file: bool = True
    extra: dict = field(default_factory=dict)
    # A row of it that fails validation stops the run instead of being rejected: the ledger records
    # money already paid, and a row left out would be paid again (docs/reliability.md, "Inputs").
    stops_the_run: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def zh(self) -> str:
        """The ledger's one Chinese name (a file or sheet may be named by either)."""
        return LEDGER_ZH[self.name]

    def column_zh(self) -> dict[str, str]:
        """English column name -> its Chinese name, for the columns this ledger has."""
        return {c.name: c.zh for c in self.columns}

    def col(self, name: str) -> Col:
        return next(c for c in self.columns if c.name == name)


# The Chinese name of each ledger, and of each column by ledger. A column's
# name is the same wherever the English name is the same, except where the
# ledger gives it its own (COLUMN_ZH_BY_LEDGER). Columns a ledger may gain
# (applicants.year; prior_payments.installment/installments/award) are named
# here already: a name for a column a ledger lacks is never read.
LEDGER_ZH = {
    "applicants": "申报主体", "rent": "房租", "rd": "研发投入", "revenue": "营业收入", "compute": "算力账单",
    "projects": "项目", "events": "活动", "recognitions": "认定", "financing": "融资", "prior_payments": "历史兑付",
}
COLUMN_ZH = {
    "applicant_id": "统一社会信用代码", "name": "企业名称", "region": "所属区域",
    "established_on": "成立日期", "registered_in_region_on": "落户日期", "size": "企业规模",
    "above_scale": "是否规上企业", "sector": "所属领域", "credit_ok": "信用记录良好",
    "relocated_out_on": "迁出日期", "fraud_found_on": "查实弄虚作假日期",
    "row_id": "行编号", "year": "年度",
    "carrier": "载体名称", "key_carrier": "是否重点载体", "area_m2": "面积（平方米）", "rent_paid": "实付房租",
    "self_use": "是否自用", "demo_base_operator": "是否示范基地运营方",
    "rd_expense": "研发投入金额", "main_revenue": "主营业务收入", "overseas_revenue": "境外收入",
    "billed_on": "账单日期", "category": "类别", "vendor": "服务商", "related_party": "是否关联方",
    "amount": "金额",
    "project_id": "项目编号", "total_investment": "总投资", "ai_investment": "智能化投资", "rd_cost": "研发费用",
    "operating_cost": "运营费用", "purchase_amount": "采购金额", "service_volume": "服务金额",
    "higher_level_funding": "上级资助金额", "higher_level": "上级资助级别", "accepted_on": "验收日期",
    "event_id": "活动编号", "held_on": "举办日期", "kind": "类型", "cost": "活动费用", "venue_rent": "场租",
    "clause_id": "条款编号", "matter_id": "事项编号", "level": "认定级别", "recognized_on": "认定日期",
    "approved_amount": "核定金额", "approved_rate": "核定比例", "quantity": "数量",
    "dated_on": "日期", "interest_paid": "实付利息", "guarantee_fee": "担保费", "investor_id": "投资方信用代码",
    "installment": "期次", "installments": "总期数", "award": "奖励总额",
}
COLUMN_ZH_BY_LEDGER = {
    ("compute", "amount"): "账单金额", ("financing", "amount"): "融资金额", ("prior_payments", "amount"): "已兑付金额",
    ("compute", "category"): "算力类别", ("projects", "category"): "项目类别",
    ("events", "kind"): "活动类型", ("financing", "kind"): "融资类型",
    ("rent", "row_id"): "租赁编号", ("compute", "row_id"): "账单编号", ("financing", "row_id"): "融资编号",
    ("financing", "dated_on"): "融资日期",
}


def column_zh(ledger: str, column: str) -> str:
    """The Chinese name of COLUMN in LEDGER (also for a column the ledger may gain)."""
    return COLUMN_ZH_BY_LEDGER.get((ledger, column)) or COLUMN_ZH[column]


def _c(name, type_=STR, **kw) -> Col:
    return Col(name, type_, **kw)


# An applicant's facts that may change from year to year (one value per row of ``applicants``); its
# other columns (FIRM_COLUMNS) are one per applicant, the same on all its rows.
FACT_COLUMNS = ("name", "size", "above_scale", "sector", "credit_ok")
FIRM_COLUMNS = ("region", "established_on", "registered_in_region_on", "relocated_out_on", "fraud_found_on")

APPLICANT = _c("applicant_id")
YEAR = _c("year", INT)

LEDGERS: dict[str, Ledger] = {
    "applicants": Ledger(
        "applicants",
        (
            APPLICANT,
            _c("name"),
            _c("region"),  # checked against the regions that have rules
            _c("established_on", DATE),
            _c("registered_in_region_on", DATE),
            _c("size", enum=SIZES),
            _c("above_scale", BOOL),
            _c("sector", enum=SECTORS),
            _c("credit_ok", BOOL),
            _c("relocated_out_on", DATE, required=False, nullable=True),
            _c("fraud_found_on", DATE, required=False, nullable=True),
            # The year from which the row's facts (FACT_COLUMNS) hold, until the firm's next row; optional:
            # without the column (or with it empty) the row holds from the firm's beginning.
            _c("year", INT, required=False, nullable=True),
        ),
        # one row per applicant, or per applicant and year (a key column that is empty in every row
        # is left out of the key, so a file without `year` is keyed by applicant_id alone)
        key=("applicant_id", "year"),
        optional_file=False,
    ),
    "rent": Ledger(
        "rent",
        (
            _c("row_id"), APPLICANT, YEAR,
            _c("carrier", nullable=True),
            _c("key_carrier", BOOL),
            _c("area_m2", NUMBER),
            _c("rent_paid", MONEY),
            _c("self_use", BOOL),
            _c("demo_base_operator", BOOL),
        ),
        key=("row_id",),
    ),
    "rd": Ledger("rd", (APPLICANT, YEAR, _c("rd_expense", MONEY)), key=("applicant_id", "year")),
    "revenue": Ledger(
        "revenue",
        (APPLICANT, YEAR, _c("main_revenue", MONEY), _c("overseas_revenue", MONEY)),
        key=("applicant_id", "year"),
    ),
    "compute": Ledger(
        "compute",
        (
            _c("row_id"), APPLICANT, YEAR,
            _c("billed_on", DATE),
            _c("category", enum=COMPUTE_CATEGORIES),
            _c("vendor", nullable=True),
            _c("related_party", BOOL),
            _c("amount", MONEY),
        ),
        key=("row_id",),
        date_column="billed_on",
    ),
    "projects": Ledger(
        "projects",
        (
            _c("project_id"), APPLICANT, YEAR,
            _c("category", enum=PROJECT_CATEGORIES),
            _c("total_investment", MONEY, nullable=True),
            _c("ai_investment", MONEY, nullable=True),
            _c("rd_cost", MONEY, nullable=True),
            _c("operating_cost", MONEY, nullable=True),
            _c("purchase_amount", MONEY, nullable=True),
            _c("service_volume", MONEY, nullable=True),
            _c("higher_level_funding", MONEY, nullable=True),
            _c("higher_level", nullable=True, enum=HIGHER_LEVELS),
            _c("accepted_on", DATE, nullable=True),
        ),
        key=("project_id", "year"),
        date_column="accepted_on",
    ),
    "events": Ledger(
        "events",
        (
            _c("event_id"), APPLICANT, YEAR,
            _c("held_on", DATE),
            _c("kind", enum=EVENT_KINDS),
            _c("cost", MONEY, nullable=True),
            _c("venue_rent", MONEY, nullable=True),
        ),
        key=("event_id",),
        date_column="held_on",
    ),
    "recognitions": Ledger(
        "recognitions",
        (
            APPLICANT,
            _c("clause_id"),  # checked against the rules catalogue
            _c("matter_id"),
            YEAR,
            _c("level", nullable=True, enum=RECOGNITION_LEVELS),
            _c("recognized_on", DATE),
            _c("approved_amount", MONEY, required=False, nullable=True),
            _c("approved_rate", RATE, required=False, nullable=True),
            _c("quantity", INT, required=False, nullable=True),
        ),
        key=("applicant_id", "clause_id", "matter_id", "year"),
        date_column="recognized_on",
    ),
    "financing": Ledger(
        "financing",
        (
            _c("row_id"), APPLICANT, YEAR,
            _c("kind", enum=FINANCING_KINDS),
            _c("dated_on", DATE),
            _c("amount", MONEY),
            _c("interest_paid", MONEY, required=False, nullable=True),
            _c("guarantee_fee", MONEY, required=False, nullable=True),
            _c("investor_id", required=False, nullable=True),
        ),
        key=("row_id",),
        date_column="dated_on",
    ),
    "prior_payments": Ledger(
        "prior_payments",
        (
            APPLICANT, _c("clause_id"), _c("matter_id"), YEAR, _c("amount", MONEY),
            # an award paid in installments (SPEC §3): this row is installment `installment` of
            # `installments` of `award`, given all three or none (transforms.validate checks them);
            # without them, under a clause paying in installments, the row is its first installment
            # (disburse.state.history infers the award from the clause's first share)
            _c("installment", INT, required=False, nullable=True),
            _c("installments", INT, required=False, nullable=True),
            _c("award", MONEY, required=False, nullable=True),
        ),
        key=("applicant_id", "clause_id", "matter_id", "year"),
        stops_the_run=True,
    ),
}

# Each column carries its Chinese name (Col.zh), from the tables above.
LEDGERS = {
    n: replace(l, columns=tuple(replace(c, zh=column_zh(n, c.name)) for c in l.columns)) for n, l in LEDGERS.items()
}
LEDGER_ORDER = tuple(LEDGERS)


class InputError(Exception):
    """A file-level fault: the run cannot proceed. The message is one line."""


# A column present only when a CSV file had malformed records: why the row's record could
# not be split into the header's fields (null for the rows that could). See _split_records.
MALFORMED = "_malformed"
# A quoted value may span at most this many physical lines; a quote still open
# after them is an unterminated quote on the record's first line.
MAX_RECORD_LINES = 100


def _not_a_file(path: Path) -> str | None:
    """Why PATH, which exists as a name, is not a regular file to read (None: it is one)."""
    if path.is_symlink():
        try:
            path.stat()
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "is a symlink loop"
            return f"is a dangling symlink (to {os.readlink(path)})"
    if path.is_dir():
        return "is a directory, not a file"
    if not path.is_file():
        return "is not a regular file"
    return None


@dataclass(frozen=True)
class Source:
    """Where a ledger is read from: a file (CSV, Parquet, or a spreadsheet's first visible sheet) or a
    workbook's sheet named for the ledger."""
    path: Path
    sheet: str | None = None

    def __str__(self) -> str:
        return f"{self.path} sheet {self.sheet}" if self.sheet is not None else str(self.path)


FILE_SUFFIXES = (".csv", ".parquet", *SPREADSHEET_SUFFIXES)


def ledger_named(name: str) -> str | None:
    """The ledger a file stem or a sheet name names, by its English or its Chinese name (None: none)."""
    name = name.strip()
    return name if name in LEDGERS else next((n for n, z in LEDGER_ZH.items() if z == name), None)


def find_sources(ledgers_dir: Path) -> dict[str, Source]:
    """Each ledger's source in DIR.

    A file named for a ledger (``compute.csv``, ``算力账单.xlsx``, ``rd.parquet``) is that ledger; a
    spreadsheet named otherwise (``台账.xlsx``) is a workbook whose visible sheets named for a ledger are
    those ledgers (its other sheets are ignored). Two sources for one ledger stop the run, naming both.
    Excel's lock files (``~$…``) and hidden files are not read. A name that exists but is no readable
    file (a directory, a dangling symlink, a symlink loop, a pipe) stops the run: it is never taken for
    an absent ledger.
    """
    found: dict[str, Source] = {}

    def claim(name: str, src: Source) -> None:
        if name in found:
            raise InputError(f"{found[name]} and {src}: two sources for ledger {name} ({LEDGER_ZH[name]}); keep one")
        found[name] = src

    entries = sorted(ledgers_dir.iterdir(), key=lambda p: p.name)
    books = []
    for p in entries:
        if p.name.startswith(("~$", ".")) or p.suffix.lower() not in FILE_SUFFIXES:
            continue
        name = ledger_named(p.stem)
        if name is None and not is_spreadsheet(p):
            continue
        why = _not_a_file(p)
        if why:
            raise InputError(f"{p}: {'ledger ' + name if name else 'workbook'} {why}")
        if name is not None:
            claim(name, Source(p))
        else:
            books.append(p)
    for p in books:
        sheets = [s for s in _visible(p) if ledger_named(s)]
        if not sheets:
            raise InputError(f"{p}: no visible sheet is named for a ledger (a workbook's sheets are named "
                             f"applicants or 申报主体, compute or 算力账单, ...)")
        for s in sheets:
            claim(ledger_named(s), Source(p, s))
    return found


def _visible(path: Path) -> list[str]:
    try:
        return visible_sheets(open_book(path), path)
    except BookError as exc:
        raise InputError(f"{path}: {exc}") from None


def find_file(ledgers_dir: Path, name: str) -> Path | None:
    """The file ledger NAME is read from in DIR (None: absent); see ``find_sources``."""
    src = find_sources(ledgers_dir).get(name)
    return src.path if src else None


def empty_raw(ledger: Ledger) -> pl.DataFrame:
    return pl.DataFrame(schema={ROW: pl.Int64, **{c: pl.String for c in ledger.column_names}})


@dataclass
class RawLedger:
    """A ledger read as text: the frame (``_row``, the columns, ``_malformed`` when a record was
    malformed, ``_fault:<column>`` for a spreadsheet's cells that could not be read exactly), the text
    encoding of its file (None for a spreadsheet) and, for a sheet, the sheet's name and digest."""
    frame: pl.DataFrame
    encoding: str | None
    sheet: str | None = None
    sheet_sha256: str | None = None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _decode(path: Path, data: bytes) -> tuple[str, str]:
    """The file's text and its encoding: UTF-8 (BOM or not), else GB18030, else a one-line stop."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return data.decode("gb18030"), "gb18030"
        except UnicodeDecodeError:
            raise InputError(f"{path}: neither UTF-8 nor GB18030 text; save it as UTF-8 CSV") from None
    if text.startswith("\ufeff"):
        return text[1:], "utf-8-sig"
    return text, "utf-8"


def aliases(ledger: Ledger) -> dict[str, str]:
    """Every name a header may give a column of LEDGER (English or Chinese) -> the column."""
    return {**{c.name: c.name for c in ledger.columns}, **{c.zh: c.name for c in ledger.columns if c.zh}}


def _header(path, names: list[str], ledger: Ledger) -> list[str]:
    """Header names stripped of blanks and BOM, each ledger column's Chinese name read as its English one.
    A column named twice (twice the same, or once by each name) stops the run, naming both headers."""
    names = [n.strip().lstrip("\ufeff").strip() for n in names]
    alias = aliases(ledger)
    seen: dict[str, str] = {}
    for n in names:
        c = alias.get(n)
        if c is None:
            continue
        if c in seen and seen[c] == n:
            raise InputError(f"{path}: column {c} appears {names.count(n)} times in the header of ledger {ledger.name}")
        if c in seen:
            raise InputError(f"{path}: header {seen[c]} and header {n} both name column {c} of ledger "
                             f"{ledger.name} ({ledger.zh}); keep one")
        seen[c] = n
    return [alias.get(n, n) for n in names]


def _split_records(path: Path, text: str, ledger: Ledger) -> pl.DataFrame:
    """Row-by-row reading, only for a file the vectorised reader refused (a malformed record).

    Each record is split with the csv module; a quoted value may span up to
    MAX_RECORD_LINES lines. A record with more fields than the header, a quote
    left open or stray, becomes a row whose MALFORMED column says why (its
    other values are what could be split, so the rejected line still names its
    applicant), and reading goes on with the next line. A record with fewer
    fields is padded with empty values, as the vectorised reader does. Cost:
    one pass over the lines, plus at most MAX_RECORD_LINES lines re-read per
    open quote.
    """
    lines = [line + "\n" for line in text.split("\n")]  # "\n" only, as polars (not str.splitlines' \x85, \u2028)
    if text.endswith("\n"):
        lines.pop()
    header, i = _record(lines, 0)
    if header is None:
        raise InputError(f"{path}: unreadable {ledger.name} file (its header is not valid CSV)")
    names = _header(path, header, ledger)
    width = len(names)
    rows, malformed = [], []
    while i < len(lines):
        fields, j = _record(lines, i)
        why = None if fields is None or len(fields) <= width else f"{len(fields)} fields where the header has {width}"
        if fields is None or why is not None:
            fields = _safe_fields(lines[i])
            why = why or "a quote is not closed or stands inside a value"
            j = i + 1  # the bad record is its first line alone: go on with the next line
        rows.append(((fields or [""]) + [""] * width)[:width])
        malformed.append(None if why is None else f"malformed_row: {why}")
        i = j
    df = pl.DataFrame(rows, schema={f"_c{k}": pl.String for k in range(width)}, orient="row")
    df.columns = _dedupe(names)
    return df.with_columns(pl.Series(MALFORMED, malformed, dtype=pl.String))


def _record(lines: list[str], i: int) -> tuple[list[str] | None, int]:
    """The record starting at line I, and the line after it; None when it is not valid CSV."""
    j, chunk = i + 1, lines[i]
    while chunk.count('"') % 2 and j < len(lines) and j - i < MAX_RECORD_LINES:
        chunk += lines[j]
        j += 1
    if chunk.count('"') % 2:
        return None, j
    try:
        return next(csv.reader([chunk], strict=True), []), j
    except csv.Error:
        return None, j


def _safe_fields(line: str) -> list[str]:
    """The fields of a malformed line as far as they can be split (quotes taken as text)."""
    return next(csv.reader([line.rstrip("\r\n")], quoting=csv.QUOTE_NONE), [])


def _dedupe(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        out.append(n if k == 0 else f"{n}\x00{k}")  # an extra column named twice: keep both, never used
        seen[n] = k + 1
    return out


def _read_csv(path: Path, ledger: Ledger) -> tuple[pl.DataFrame, str]:
    """Fast path: polars reads valid UTF-8 directly. Otherwise decode (UTF-8, GB18030), read the
    text with polars, and only if that fails too split it record by record."""
    try:
        df = pl.read_csv(path, infer_schema=False, encoding="utf8")
        with path.open("rb") as f:
            first = f.readline()
        bom = first.startswith(b"\xef\xbb\xbf")
        names = next(csv.reader([first.decode("utf-8-sig", errors="replace")]), [])
        if len(names) == len(df.columns):
            df.columns = _dedupe(_header(path, names, ledger))
        else:  # a header spanning lines: take polars' names
            df.columns = _dedupe(_header(path, [re.sub(r"_duplicated_\d+$", "", c) for c in df.columns], ledger))
        return df, "utf-8-sig" if bom else "utf-8"
    except InputError:
        raise
    except Exception:  # noqa: BLE001 - not valid UTF-8, or a malformed record: the careful path below
        pass
    text, encoding = _decode(path, path.read_bytes())
    try:
        df = pl.read_csv(io.BytesIO(text.encode("utf-8")), infer_schema=False)
        names = next(csv.reader(io.StringIO(text)), [])
        if len(names) != len(df.columns):
            names = [re.sub(r"_duplicated_\d+$", "", c) for c in df.columns]
        df.columns = _dedupe(_header(path, names, ledger))
        return df, encoding
    except InputError:
        raise
    except Exception:  # noqa: BLE001
        return _split_records(path, text, ledger), encoding


def native(col: Col, dtype: pl.DataType) -> bool:
    """Whether a Parquet column of DTYPE is kept typed for the ledger column COL (checked by
    ``transforms.validate`` on its type: scale, range, sign) rather than read as text."""
    if col.type in (MONEY, RATE):
        return isinstance(dtype, pl.Decimal)
    if col.type == INT:
        return dtype.is_integer()
    if col.type == NUMBER:
        return dtype.is_integer() or dtype.is_float() or isinstance(dtype, pl.Decimal)
    return dtype == {DATE: pl.Date, BOOL: pl.Boolean}.get(col.type, pl.String)


def _parquet_frame(df: pl.DataFrame, ledger: Ledger) -> pl.DataFrame:
    """A Parquet ledger as read: each ledger column of a type the contract knows (``native``) as it is,
    every other column as text; a Decimal's padding zeros dropped (Decimal(38, 6) 100.500000 is 100.5),
    so money with a wide scale but at most 2 decimals reads as money."""
    cols = {c.name: c for c in ledger.columns}
    text = [n for n, t in df.schema.items() if not (n in cols and native(cols[n], t)) and t != pl.String]
    decimals = [n for n in text if isinstance(df.schema[n], pl.Decimal) and (df.schema[n].scale or 0) > 0]
    df = df.with_columns(pl.col(text).cast(pl.String)) if text else df
    return df.with_columns(
        pl.col(decimals).str.replace(r"0+$", "").str.strip_suffix(".")
    ) if decimals else df


def _read_spreadsheet(src: Source, ledger: Ledger) -> tuple[pl.DataFrame, str]:
    """A ledger's sheet (SRC's sheet, or its file's first visible one) and the sheet's name."""
    try:
        book = open_book(src.path)
        sheet = src.sheet
        if sheet is None:
            visible = visible_sheets(book, src.path)
            if not visible:
                raise BookError("an empty workbook (no visible sheet)")
            sheet = visible[0]
        types = {c.name: c.type for c in ledger.columns}
        return read_sheet(book, src.path, sheet, types, lambda names: _header(Source(src.path, sheet), names, ledger)), sheet
    except BookError as exc:
        raise InputError(f"{src.path}: {exc}") from None


def read_raw(path: Path | Source, ledger: Ledger) -> RawLedger:
    """Every column as text (or typed, from Parquet: ``native``), plus ``_row``. Raises InputError on file faults."""
    src = path if isinstance(path, Source) else Source(path)
    path = src.path
    sheet = None
    try:
        if is_spreadsheet(path):
            df, sheet = _read_spreadsheet(src, ledger)
            encoding = None
        elif path.suffix == ".parquet":
            df, encoding = pl.read_parquet(path), "utf-8"
            df.columns = _dedupe(_header(path, df.columns, ledger))
            df = _parquet_frame(df, ledger)
        else:
            df, encoding = _read_csv(path, ledger)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reader failure is a file fault
        raise InputError(f"{path}: unreadable {ledger.name} file ({_first_line(exc)})") from None
    where = f"{path} sheet {sheet}" if sheet is not None else str(path)
    missing = [c for c in ledger.columns if c.required and c.name not in df.columns]
    if missing:
        c = missing[0]
        raise InputError(f"{where}: missing column {c.name} in ledger {ledger.name} (a header {c.name} or {c.zh})")
    for c in ledger.columns:
        if c.name not in df.columns:
            df = df.with_columns(pl.lit(None, pl.String).alias(c.name))
    extra = [MALFORMED] if MALFORMED in df.columns else []
    extra += [FAULT + c for c in ledger.column_names if FAULT + c in df.columns]
    text = [c for c in ledger.column_names if df.schema[c] == pl.String]
    rows = [ROW] if ROW in df.columns else []
    df = df.select(*rows, *ledger.column_names, *extra).with_columns(pl.col(text).str.strip_chars().replace("", None))
    if not rows:
        df = df.with_row_index(ROW, offset=2).with_columns(pl.col(ROW).cast(pl.Int64))
    frame = df.select([ROW, *ledger.column_names, *extra])
    return RawLedger(frame, encoding, sheet, frame_sha256(frame) if sheet is not None else None)


def check_ledgers_dir(ledgers_dir: Path) -> dict[str, Source]:
    """Every ledger's source is a readable file or absent, and the required ones are there."""
    if not ledgers_dir.is_dir():
        raise InputError(f"{ledgers_dir}: ledgers directory not found")
    sources = find_sources(ledgers_dir)
    for name, ledger in LEDGERS.items():
        if name not in sources and not ledger.optional_file:
            raise InputError(f"{ledgers_dir}/{name}.csv: required ledger {name} not found (a CSV, Parquet or "
                             f"spreadsheet file named {name} or {ledger.zh}, or a workbook's sheet so named)")
    return sources


@dataclass
class Read:
    """All ledgers as read: raw frames, and per ledger its file, text encoding, sheet and sheet digest."""
    frames: dict[str, pl.DataFrame]
    files: dict[str, Path | None]
    encodings: dict[str, str | None]
    sheets: dict[str, tuple[str, str] | None]

    def __iter__(self):  # frames, files, encodings = read_ledgers(...)
        return iter((self.frames, self.files, self.encodings))

    def __getitem__(self, i):
        return (self.frames, self.files, self.encodings)[i]


def read_ledgers(ledgers_dir: Path) -> Read:
    """All ten ledgers as raw text frames, the file each came from and its text encoding (and sheet).

    Sheets are read two at a time (calamine and polars work outside the GIL: a workbook city of
    100,000 applicants reads in 2.8-3.5 s against 5.2 s, with a core free); a CSV or Parquet file in this thread.
    A fault stops the run as read one after another would: the first ledger's, in ledger order."""
    sources = check_ledgers_dir(ledgers_dir)
    sheets = {n: s for n, s in sources.items() if is_spreadsheet(s.path)}
    with cells_returned_to_os() if sheets else contextlib.nullcontext():
        return _read_all(sources, sheets)


def _read_all(sources: dict[str, Source], sheets: dict[str, Source]) -> Read:
    out = Read({}, {}, {}, {})
    pool = ThreadPoolExecutor(max_workers=SHEET_THREADS, thread_name_prefix="sheet") if len(sheets) > 1 else None
    try:
        # largest first: the pool's last sheet is a small one
        order = sorted(sheets, key=lambda n: -_size(sheets[n].path)) if pool else []
        pending = {n: pool.submit(read_raw, sheets[n], LEDGERS[n]) for n in order}
        for name, ledger in LEDGERS.items():
            src = sources.get(name)
            if src is None:  # only optional ledgers can be absent: check_ledgers_dir saw to that
                out.frames[name], out.files[name], out.encodings[name], out.sheets[name] = empty_raw(ledger), None, None, None
                continue
            raw = pending[name].result() if name in pending else read_raw(src, ledger)
            out.frames[name], out.files[name], out.encodings[name] = raw.frame, src.path, raw.encoding
            out.sheets[name] = (raw.sheet, raw.sheet_sha256) if raw.sheet is not None else None
    finally:
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)
    return out


# Sheets read at once: calamine parses one sheet on one core; two cover this machine's.
SHEET_THREADS = 2


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
