"""Reading a ledger from a spreadsheet (.xlsx, .xlsm, .xls, .ods) with calamine (fastexcel), cell by cell exactly.

Every cell becomes the text the CSV reader would have given, by its cell type and
the ledger column's type, column by column (never row by row):

- a text cell is its text (the same rules as CSV text then apply);
- a TRUE/FALSE cell is ``true``/``false``;
- a date cell is ``YYYY-MM-DD`` (one with a time of day keeps it, and is no date);
- a number cell is a binary double, written in its shortest decimal form
  (``repr``): money with more than 2 decimals in that form (``0.30000000000000004``)
  is the fault ``inexact_number``, never rounded; a number in a date column is
  an Excel serial number (``serial_date``); a number in a credit-code column has
  lost its last digits (``id_as_number``); a whole number in another text column
  (a row id typed as 1001) is that number's digits;
- an error cell (``#DIV/0!``) is ``cell_error``; a formula whose result the file
  does not hold (a workbook written by a program and never opened in Excel) is
  ``formula_no_value`` (.xlsx; .xls always holds the result);
- an empty cell is empty.

A cell fault goes in a column ``_fault:<column>`` beside the value (the value then
holds the cell as shown in the rejected line); ``transforms.validate`` rejects the
row. A row whose every cell is empty is no row: it is dropped, and the rows after
it keep their row numbers (the sheet's row, header = row 1). Cells merged across
rows hold their value in the first row only: the others read empty.

One load with every column's type guessed over all rows, strictly: when each
column's cells are of one type (the usual case, and a template's) that load is
exact. A column mixing types is read four times (as text, as TRUE/FALSE, as a
date, as a number), which tells each cell's type: a number or TRUE/FALSE cell
is the only kind the TRUE/FALSE load reads, a date the only kind the date load
reads that the TRUE/FALSE load does not.
"""

from __future__ import annotations

import hashlib
import logging
import re
import zipfile
from pathlib import Path

import fastexcel
import polars as pl

# fastexcel logs "Could not determine dtype for column N" for an empty column; every column is read as text
# or by its cells here, so it says nothing a person needs, and a run writes nothing on stderr unless it fails
logging.getLogger("fastexcel").setLevel(logging.ERROR)

SPREADSHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
FAULT = "_fault:"  # prefix of a column's cell faults
ZIP, OLE2 = b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Columns holding 统一社会信用代码: a number there has lost characters.
CREDIT_CODE_COLUMNS = ("applicant_id", "investor_id")
# Whole numbers up to 2^53 are exact doubles: below it, a number in a text column is its digits.
EXACT_WHOLE = 2**53


class BookError(Exception):
    """A workbook that cannot be read at all (one line)."""


def is_spreadsheet(path: Path) -> bool:
    return path.suffix.lower() in SPREADSHEET_SUFFIXES


def open_book(path: Path) -> fastexcel.ExcelReader:
    """The workbook, or a one-line BookError: not what its extension says, password-protected, corrupt."""
    with path.open("rb") as f:
        head = f.read(8)
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".ods") and head.startswith(OLE2):
        raise BookError("a password-protected (encrypted) workbook; save it without a password")
    expected = OLE2 if suffix == ".xls" else ZIP
    if not head.startswith(expected):
        if not head:
            raise BookError(f"an empty file, not a {suffix} workbook")
        raise BookError(f"not a {suffix} workbook (its content is something else, a CSV renamed?)")
    try:
        return fastexcel.read_excel(path)
    except Exception as exc:  # noqa: BLE001 - calamine's faults: corrupt zip, encrypted .xls, ...
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "password" in text.lower() or "encrypt" in text.lower():
            raise BookError("a password-protected (encrypted) workbook; save it without a password") from None
        raise BookError(f"unreadable workbook ({text})") from None


def visible_sheets(book: fastexcel.ExcelReader) -> list[str]:
    """The names of the workbook's visible sheets, in order (hidden and very hidden ones are ignored)."""
    out = []
    for name in book.sheet_names:
        sheet = book.load_sheet(name, n_rows=0)
        if str(sheet.visible).lower().endswith("visible") and "hidden" not in str(sheet.visible).lower():
            out.append(name)
    return out


def read_sheet(book: fastexcel.ExcelReader, path: Path, sheet: str, types: dict[str, str],
               header: callable) -> pl.DataFrame:
    """SHEET as text columns named by HEADER(names) (the ledger's names), ``_row`` (the sheet's row),
    and ``_fault:<column>`` where a cell could not be read exactly. TYPES: ledger column -> its type."""
    try:
        first = book.load_sheet(sheet, n_rows=0)
        names = [c.name for c in first.available_columns()]
    except Exception as exc:  # noqa: BLE001
        raise BookError(f"sheet {sheet}: unreadable ({_one_line(exc)})") from None
    if not names or first.total_height == 0 and not any(n and not n.startswith("__UNNAMED__") for n in names):
        raise BookError(f"sheet {sheet} is empty (no header row)")
    canonical = header([("" if n.startswith("__UNNAMED__") else n) for n in names])
    cells = _cells(book, sheet)
    cells.columns = [f"_c{i}" for i in range(len(cells.columns))]
    cols: list[pl.Expr] = []
    for i, name in enumerate(canonical):
        if name not in types:
            continue
        cols += _column(cells, i, name, types[name])
    df = cells.with_row_index("_row", offset=2).with_columns(pl.col("_row").cast(pl.Int64))
    df = df.select("_row", *cols)
    for name, ref in _formulas_without_value(path, sheet, canonical, types):
        df = df.with_columns(
            pl.when(pl.col("_row").is_in(ref)).then(pl.lit("formula_no_value: a formula whose result the file does not hold"))
            .otherwise(pl.col(FAULT + name) if FAULT + name in df.columns else None).alias(FAULT + name))
    values = [c for c in df.columns if c != "_row" and not c.startswith(FAULT)]
    blank = pl.all_horizontal(pl.col(values).is_null() | (pl.col(values).str.strip_chars() == "")) if values else pl.lit(True)
    faults = [c for c in df.columns if c.startswith(FAULT)]
    if faults:
        blank = blank & pl.all_horizontal(pl.col(faults).is_null())
    return df.filter(~blank)


def _cells(book, sheet: str) -> pl.DataFrame:
    """The cells as typed frames: one exact load when every column is of one type, else a struct per column
    (s: text, b: TRUE/FALSE or number read as bool, d: datetime, f: float) from four loads."""
    try:
        strict = book.load_sheet(sheet, schema_sample_rows=None, dtype_coercion="strict")
        batch, errors = strict.to_arrow_with_errors()
        df = pl.from_arrow(batch)
        return _with_errors(df, errors)
    except fastexcel.UnsupportedColumnTypeCombinationError:
        pass
    except Exception as exc:  # noqa: BLE001
        raise BookError(f"sheet {sheet}: unreadable ({_one_line(exc)})") from None
    loads = {}
    for key, dtype in (("s", "string"), ("b", "boolean"), ("d", "datetime"), ("f", "float")):
        batch, errors = book.load_sheet(sheet, dtypes=dtype).to_arrow_with_errors()
        loads[key] = _with_errors(pl.from_arrow(batch), errors) if key == "s" else pl.from_arrow(batch)
    text = loads["s"]
    out = {}
    for i, c in enumerate(text.columns):
        if c.startswith(FAULT):
            continue
        s, b, d, f = (loads[k].get_column(c) for k in "sbdf")
        kind = (pl.when(b.is_not_null() & s.is_in(["true", "false"]) & f.is_in([0.0, 1.0])).then(pl.lit("bool"))
                .when(b.is_not_null()).then(pl.lit("number"))
                .when(d.is_not_null()).then(pl.lit("date"))
                .when(s.is_not_null()).then(pl.lit("text")))
        out[c] = pl.select(pl.struct(kind.alias("kind"), s.alias("s"), b.alias("b"), d.alias("d"), f.alias("f"))).to_series()
    mixed = pl.DataFrame(out)
    extra = [c for c in text.columns if c.startswith(FAULT)]
    return mixed.with_columns(text.select(extra)) if extra else mixed


def _with_errors(df: pl.DataFrame, errors) -> pl.DataFrame:
    """Error cells (#DIV/0!, #N/A) as a fault column beside their column (the errors list is short: only such cells)."""
    if not errors:
        return df
    found: dict[int, list[int]] = {}
    for e in errors.errors:  # one entry per error cell, never per row
        row, col = e.position
        found.setdefault(col, []).append(row)
    for col, rows in found.items():
        name = df.columns[col]
        df = df.with_columns(pl.when(pl.int_range(pl.len()).is_in(rows)).then(
            pl.lit("cell_error: the cell holds an error (#DIV/0!, #N/A, ...), not a value")).alias(FAULT + name))
    return df


def _column(cells: pl.DataFrame, i: int, name: str, type_: str) -> list[pl.Expr]:
    """Ledger column NAME (of TYPE) from the sheet's column I: its text, and its cell faults."""
    src = cells.columns[i]
    dtype = cells.schema[src]
    error = pl.col(FAULT + src) if FAULT + src in cells.columns else pl.lit(None, pl.String)
    if isinstance(dtype, pl.Struct):
        v = pl.col(src)
        kind = v.struct.field("kind")
        parts = {"text": v.struct.field("s"), "bool": v.struct.field("b"), "date": v.struct.field("d"),
                 "number": v.struct.field("f")}
    else:
        kind = pl.lit({pl.String: "text", pl.Boolean: "bool", pl.Float64: "number", pl.Int64: "number"}.get(
            dtype, "date" if dtype.is_temporal() else "text"))
        v = pl.col(src)
        parts = {"text": v.cast(pl.String), "bool": v, "date": v, "number": v.cast(pl.Float64, strict=False)}
        kind = pl.when(v.is_not_null()).then(kind)
    number, date = parts["number"], parts["date"]
    if isinstance(dtype, pl.Struct) or dtype.is_temporal():
        date = date.cast(pl.Datetime("ms"))
        date_text = pl.when(date.dt.time() == pl.time(0)).then(date.dt.strftime("%Y-%m-%d")).otherwise(
            date.dt.strftime("%Y-%m-%d %H:%M:%S"))
    else:
        date_text = pl.lit(None, pl.String)
    shortest = number.cast(pl.String)  # polars writes a double's shortest round-trip form, as Python's repr
    whole = number.is_finite() & (number == number.round(0)) & (number.abs() < EXACT_WHOLE)
    digits = pl.when(whole).then(number.cast(pl.Int64, strict=False).cast(pl.String))
    plain = pl.when(shortest.str.contains("e")).then(None).otherwise(shortest.str.replace(r"\.0$", ""))
    number_text = digits.otherwise(plain).fill_null(shortest)
    bool_text = pl.when(parts["bool"].cast(pl.Boolean)).then(pl.lit("true")).otherwise(pl.lit("false"))
    text = (pl.when(kind == "text").then(parts["text"])
            .when(kind == "bool").then(bool_text)
            .when(kind == "date").then(date_text)
            .when(kind == "number").then(number_text))
    is_num = kind == "number"
    if type_ == "money":
        fault = pl.when(is_num & ~number_text.str.contains(r"^-?[0-9]{1,13}(\.[0-9]{1,2})?$")).then(
            pl.format("inexact_number: the number cell holds {}, not an amount to the fen", shortest))
    elif type_ == "date":
        fault = pl.when(is_num).then(pl.lit("serial_date: a number (an Excel serial number?) where a date is expected; "
                                            "format the cell as a date"))
    elif name in CREDIT_CODE_COLUMNS:
        fault = pl.when(is_num).then(pl.lit("id_as_number: the credit code is a number cell and has lost characters; "
                                            "format the column as text and type the code again"))
    elif type_ == "str":
        fault = pl.when(is_num & ~whole).then(pl.lit("id_as_number: a number cell where text is expected; "
                                                      "format the column as text"))
    else:
        fault = pl.lit(None, pl.String)
    fault = pl.coalesce(error, fault) if FAULT + src in cells.columns else fault
    return [text.alias(name), fault.cast(pl.String).alias(FAULT + name)]


_CELL = re.compile(rb'<c r="([A-Z]+)([0-9]+)"[^>]*?(?:/>|>(.*?)</c>)', re.S)


def _formulas_without_value(path: Path, sheet: str, header: list[str], types: dict[str, str]) -> list[tuple[str, list[int]]]:
    """(ledger column, rows) of the .xlsx cells holding a formula but no result (calamine reads them empty)."""
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        return []
    try:
        with zipfile.ZipFile(path) as z:
            target = _sheet_part(z, sheet)
            if target is None:
                return []
            data = z.read(target)
    except (KeyError, zipfile.BadZipFile, OSError):
        return []
    if b"<f" not in data:
        return []
    found: dict[int, list[int]] = {}
    for m in re.finditer(rb'<c r="([A-Z]+)([0-9]+)"[^>]*>(<f[^>]*/>|<f[^>]*>[^<]*</f>)(<v\s*/>|<v></v>)?</c>', data):
        col = 0
        for ch in m.group(1):
            col = col * 26 + ch - 64
        found.setdefault(col - 1, []).append(int(m.group(2)))
    first = _first_column(data)
    out = []
    for col, rows in found.items():
        i = col - first
        if 0 <= i < len(header) and header[i] in types:
            out.append((header[i], rows))
    return out


def _first_column(data: bytes) -> int:
    m = re.search(rb'<dimension ref="([A-Z]+)', data)
    col = 0
    for ch in (m.group(1) if m else b"A"):
        col = col * 26 + ch - 64
    return col - 1


def _sheet_part(z: zipfile.ZipFile, sheet: str) -> str | None:
    book = z.read("xl/workbook.xml").decode("utf-8")
    rels = z.read("xl/_rels/workbook.xml.rels").decode("utf-8")
    for m in re.finditer(r'<sheet\b[^>]*>', book):
        tag = m.group(0)
        name = re.search(r'name="([^"]*)"', tag)
        rid = re.search(r'r:id="([^"]*)"', tag)
        if name and rid and _unescape(name.group(1)) == sheet:
            rel = re.search(r'<Relationship\b[^>]*Id="%s"[^>]*>' % re.escape(rid.group(1)), rels)
            target = rel and re.search(r'Target="([^"]*)"', rel.group(0))
            if target:
                t = target.group(1)
                return t.lstrip("/") if t.startswith("/") else "xl/" + t
    return None


def _unescape(s: str) -> str:
    return s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'").replace("&amp;", "&")


def frame_sha256(df: pl.DataFrame) -> str:
    """A sheet's digest: sha256 of the ledger as read (``_row`` and the columns as text, faults included),
    written as CSV (UTF-8, no BOM, header of the ledger's English names)."""
    return hashlib.sha256(df.write_csv().encode("utf-8")).hexdigest()


def _one_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
