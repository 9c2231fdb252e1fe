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

import contextlib
import ctypes
import hashlib
import io
import logging
import platform
import re
import zipfile
import zlib
from pathlib import Path
from xml.etree import ElementTree

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


# glibc's mallopt parameter for the size from which an allocation is its own mapping.
_M_MMAP_THRESHOLD = -3


@contextlib.contextmanager
def cells_returned_to_os():
    """While reading sheets, calamine's cell arrays (tens of MB a sheet, allocated with the C library's
    malloc) are each their own mapping, given back to the system when freed. Without it glibc, whose
    threshold for that grows to 32 MiB once such an array is freed, keeps the freed arrays in its heaps
    for the rest of the run: at 100,000 applicants 0.45 against 0.31 GiB after reading the workbooks
    (the run's peak 0.77-0.84 against 0.69 GiB, sheets read two at a time), for about 0.15 s more
    CPU. After, the threshold is 32 MiB, where glibc's own would have grown to. Elsewhere than
    glibc: nothing."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 20)
    try:
        yield
    finally:
        if libc is not None:
            libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)


def _glibc():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        return libc
    except (OSError, AttributeError):
        return None


def visible_sheets(book: fastexcel.ExcelReader, path: Path) -> list[str]:
    """The names of the workbook's visible sheets, in order (hidden and very hidden ones are ignored).

    For .xlsx/.xlsm each sheet's state is read from ``xl/workbook.xml`` (a few hundred bytes);
    calamine would parse a whole sheet to tell it. A sheet that file does not name as the
    workbook does, and every .xls/.ods sheet, is asked of calamine."""
    states = _book_parts(path)[0] if path.suffix.lower() in (".xlsx", ".xlsm") else {}
    out = []
    for name in book.sheet_names:
        state = states.get(name)
        if state is None:
            state = str(book.load_sheet(name, n_rows=0).visible).lower()
        if state.endswith("visible") and "hidden" not in state:
            out.append(name)
    return out


def read_sheet(book: fastexcel.ExcelReader, path: Path, sheet: str, types: dict[str, str],
               header: callable) -> pl.DataFrame:
    """SHEET as text columns named by HEADER(names) (the ledger's names), ``_row`` (the sheet's row),
    and ``_fault:<column>`` where a cell could not be read exactly. TYPES: ledger column -> its type."""
    names, height, cells = _cells(book, sheet)
    if not names or height == 0 and not any(n and not n.startswith("__UNNAMED__") for n in names):
        raise BookError(f"sheet {sheet} is empty (no header row)")
    canonical = header([("" if n.startswith("__UNNAMED__") else n) for n in names])
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


def _cells(book, sheet: str) -> tuple[list[str], int, pl.DataFrame]:
    """The header's names, the sheet's height and the cells as typed frames: one exact load when every
    column is of one type, else a struct per column (s: text, b: TRUE/FALSE or number read as bool,
    d: datetime, f: float) from four loads. The header comes from the load that reads the cells
    (calamine parses the whole sheet for any load, even of no rows)."""
    try:
        strict = book.load_sheet(sheet, schema_sample_rows=None, dtype_coercion="strict")
        batch, errors = strict.to_arrow_with_errors()
        df = pl.from_arrow(batch)
        return df.columns, strict.total_height, _with_errors(df, errors)
    except fastexcel.UnsupportedColumnTypeCombinationError:
        pass
    except Exception as exc:  # noqa: BLE001
        raise BookError(f"sheet {sheet}: unreadable ({_one_line(exc)})") from None
    loads = {}
    for key, dtype in (("s", "string"), ("b", "boolean"), ("d", "datetime"), ("f", "float")):
        try:
            load = book.load_sheet(sheet, dtypes=dtype)
            batch, errors = load.to_arrow_with_errors()
            if key == "s":
                names, height = pl.from_arrow(batch).columns, load.total_height
        except Exception as exc:  # noqa: BLE001
            raise BookError(f"sheet {sheet}: unreadable ({_one_line(exc)})") from None
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
    return names, height, mixed.with_columns(text.select(extra)) if extra else mixed


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
    struct = isinstance(dtype, pl.Struct)
    v = pl.col(src)
    if struct:
        kind = v.struct.field("kind")
        parts = {"text": v.struct.field("s"), "bool": v.struct.field("b"), "date": v.struct.field("d"),
                 "number": v.struct.field("f")}
    else:  # one kind for every cell of the column: only that kind's text is built
        kind = {pl.String: "text", pl.Boolean: "bool", pl.Float64: "number", pl.Int64: "number"}.get(
            dtype, "date" if dtype.is_temporal() else "text")
        parts = {"text": v.cast(pl.String), "bool": v, "date": v, "number": v.cast(pl.Float64, strict=False)}
    number, date = parts["number"], parts["date"]
    if struct or dtype.is_temporal():
        date = date.cast(pl.Datetime("ms"))
        date_text = pl.when(date.dt.time() == pl.time(0)).then(date.dt.strftime("%Y-%m-%d")).otherwise(
            date.dt.strftime("%Y-%m-%d %H:%M:%S"))
    else:
        date_text = pl.lit(None, pl.String)
    shortest = number.cast(pl.String)  # polars writes a double's shortest round-trip form, as Python's repr
    whole = number.is_finite() & (number == number.round(0)) & (number.abs() < EXACT_WHOLE)
    digits = pl.when(whole).then(number.cast(pl.Int64, strict=False).cast(pl.String))
    plain = pl.when(shortest.str.contains("e")).then(None).otherwise(shortest.str.strip_suffix(".0"))
    number_text = digits.otherwise(plain).fill_null(shortest)
    bool_text = pl.when(parts["bool"].cast(pl.Boolean)).then(pl.lit("true")).otherwise(pl.lit("false"))
    if struct:
        text = (pl.when(kind == "text").then(parts["text"])
                .when(kind == "bool").then(bool_text)
                .when(kind == "date").then(date_text)
                .when(kind == "number").then(number_text))
        is_num = kind == "number"
    else:
        present = v.is_not_null()
        text = parts["text"] if kind == "text" else pl.when(present).then(
            {"bool": bool_text, "date": date_text, "number": number_text}[kind])
        is_num = present if kind == "number" else None  # None: no cell of the column is a number
    if is_num is None:
        fault = pl.lit(None, pl.String)
    elif type_ == "money":
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


def _formulas_without_value(path: Path, sheet: str, header: list[str], types: dict[str, str]) -> list[tuple[str, list[int]]]:
    """(ledger column, rows) of the .xlsx cells holding a formula but no result (calamine reads them empty).

    The sheet's XML is streamed and searched for a formula element (``<f>``, ``<f .../>``) a chunk at a
    time, never held whole; only a sheet holding one is read whole and its formula cells listed."""
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        return []
    try:
        target = _book_parts(path)[1].get(sheet)
        if target is None:
            return []
        with zipfile.ZipFile(path) as z:
            if not _has_formula(z, target):
                return []
            data = z.read(target)
    except (KeyError, zipfile.BadZipFile, OSError):
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


_FORMULA = re.compile(rb"<f[\s>/]")  # a cell's formula element (not <filterColumn>, <font>, ...)
_CHUNK = 1 << 18  # compressed bytes a step (about 2 MiB of XML)


def _has_formula(z: zipfile.ZipFile, target: str) -> bool:
    """Whether the sheet's XML holds a formula element: inflated a chunk at a time, stopping at the first.

    A deflated part is inflated straight from its bytes in the file, without the CRC check zipfile
    adds (a third of the cost; calamine has read the part already); any other part through zipfile."""
    info = z.getinfo(target)
    if info.compress_type == zipfile.ZIP_DEFLATED and not info.flag_bits & 0x1 and isinstance(z.filename, str):
        with open(z.filename, "rb") as f:
            f.seek(info.header_offset)
            local = f.read(30)
            if local[:4] == b"PK\x03\x04":
                f.seek(info.header_offset + 30 + int.from_bytes(local[26:28], "little")
                       + int.from_bytes(local[28:30], "little"))
                inflate, left, tail = zlib.decompressobj(-15), info.compress_size, b""
                while left > 0 and not inflate.eof:
                    data = f.read(min(_CHUNK, left))
                    if not data:
                        break
                    left -= len(data)
                    while data and not inflate.eof:
                        chunk = inflate.decompress(data, 8 * _CHUNK)  # at most 2 MiB of XML held
                        data = inflate.unconsumed_tail
                        if _FORMULA.search(tail + chunk[:8]) or _FORMULA.search(chunk):
                            return True
                        tail = chunk[-8:]
                return False
    with z.open(target) as f:
        tail = b""
        while chunk := f.read(_CHUNK):
            if _FORMULA.search(tail + chunk[:8]) or _FORMULA.search(chunk):
                return True
            tail = chunk[-8:]
    return False


def _first_column(data: bytes) -> int:
    m = re.search(rb'<dimension ref="([A-Z]+)', data)
    col = 0
    for ch in (m.group(1) if m else b"A"):
        col = col * 26 + ch - 64
    return col - 1


def _book_parts(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """An .xlsx workbook's sheets from ``xl/workbook.xml`` and its relations: name -> state (``visible``,
    ``hidden``, ``veryhidden``) and name -> the sheet's part in the zip. Empty when unreadable (the caller
    then asks calamine)."""
    try:
        with zipfile.ZipFile(path) as z:
            book = ElementTree.fromstring(z.read("xl/workbook.xml"))
            try:
                rels = ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
            except KeyError:
                rels = None
    except (KeyError, zipfile.BadZipFile, OSError, ElementTree.ParseError):
        return {}, {}
    targets = {}
    for rel in (rels.iter() if rels is not None else ()):
        if rel.tag.endswith("}Relationship") and rel.get("Id") and rel.get("Target"):
            t = rel.get("Target")
            targets[rel.get("Id")] = t.lstrip("/") if t.startswith("/") else "xl/" + t
    states, parts = {}, {}
    for el in book.iter():
        if el.tag.rsplit("}", 1)[-1] != "sheet" or el.get("name") is None:
            continue
        name = el.get("name")
        states[name] = (el.get("state") or "visible").lower()
        rid = next((v for k, v in el.attrib.items() if k.startswith("{") and k.endswith("}id")), None)
        if rid in targets:
            parts[name] = targets[rid]
    return states, parts


def frame_sha256(df: pl.DataFrame) -> str:
    """A sheet's digest: sha256 of the ledger as read (``_row`` and the columns as text, faults included),
    written as CSV (UTF-8, no BOM, header of the ledger's English names)."""
    buf = io.BytesIO()
    df.write_csv(buf)  # the bytes polars writes (UTF-8), not decoded to text and encoded again
    return hashlib.sha256(buf.getbuffer()).hexdigest()


def _one_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
