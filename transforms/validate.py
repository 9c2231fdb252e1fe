"""Type and check the raw ledgers (SPEC §3): accepted rows typed, faults listed.

A record the reader could not split (``ledgers.MALFORMED``) is one fault and
nothing else is checked on it. Value faults (missing, malformed, not allowed,
unknown reference) come from a pandera schema per ledger, run on the collected
text frame; faults across rows (duplicate keys, a project claimed by two
applicants) and across columns and ledgers (a year that is not its date's, a
recognition naming no row, an applicant's amounts summing beyond
``money.MAX_SUM_FEN``) are polars expressions. A row with any fault is
rejected whole, one line per fault, and never reaches ``accepted``.
Applicants go first: the other ledgers may only name an accepted applicant.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial

import pandera.polars as pa
import polars as pl

from disburse import uscc
from disburse.ledgers import (
    AMBIGUOUS_ZH, BOOL, DATE, ENUM_ZH, FIRM_COLUMNS, INT, LEDGERS, MALFORMED, MONEY, NUMBER, RATE, ROW, STR, Col, Ledger,
    empty_raw,
)
from disburse.sheets import FAULT
from disburse.money import MAX_SUM_FEN, MONEY_RE, RATE_RE, fmt_fen, parse_money, parse_rate, rate_to_ppm

APPLICANT = "applicant_id"
REJECTED_SCHEMA = {
    "ledger": pl.String, "row": pl.Int64, "column": pl.String,
    "value": pl.String, "reason": pl.String, APPLICANT: pl.String,
}
FAULT_COLUMNS = ["row", "column", "value", "reason"]
UNKNOWN_APPLICANT = "unknown_applicant: no accepted applicant with this id"
LEDGER_THREADS = 2  # ledgers checked at once after the applicants
OWNER = "_owner"  # while validating: the region of the row's accepted applicant (null: none), see _owners

# [0-9], never \d: polars' \d also matches full-width and other scripts' digits (１００, ١٠٠).
NUMBER_RE = r"^[0-9]{1,15}(\.[0-9]+)?$"
INT_RE = r"^[0-9]{1,18}$"
DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
MAX_INT = 10**18 - 1  # INT_RE's 18 digits
FIRST_YEAR, LAST_YEAR = 1990, 2100
BAD_MONEY = "bad_money: not an amount in yuan with at most 2 decimals"
BAD_RATE = "bad_rate: expected a share from 0 to 1"
MAX_QUANTITY = 1_000_000_000  # a count (trainees, firms, PFLOPS): unit × quantity stays far inside Int64
assert next(iter(LEDGERS)) == "applicants"  # validate() relies on it

# The forms a bureau types, each read to exactly one canonical value (docs/inputs.md, "Spreadsheets, Chinese headers and the bureau's forms").
TRUE_WORDS, FALSE_WORDS = ("true", "TRUE", "True", "是"), ("false", "FALSE", "False", "否")
DATE_FORMS = (  # year first, the month and day of 1 or 2 digits, one separator throughout
    r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})$", r"^([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})$",
    r"^([0-9]{4})年([0-9]{1,2})月([0-9]{1,2})日$",
)
AMBIGUOUS_DATE_RE = r"^[0-9]{1,2}[-/.][0-9]{1,2}[-/.][0-9]{2,4}$"  # 3/4/2021: day and month could be either
SERIAL_DATE_RE = r"^[0-9]{5}(\.[0-9]+)?$"  # 44286: an Excel serial number, not a date
YUAN_SIGN_RE = r"^[¥￥]\s*"
THOUSANDS_RE = r"^-?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?$"  # 216,543.22: groups of three only
TOTAL_WORDS_RE = r"^(合计|总计|小计|共计)"  # a total row: never an applicant, never summed

Rule = tuple[str, Callable[[pl.Expr], pl.Expr]]  # (reason, value -> passes); nulls are not its business

PARSE: dict[str, Callable[[pl.Expr], pl.Expr]] = {  # text (checked by the rules below) to the contract's type
    STR: lambda v: v,
    MONEY: parse_money,
    RATE: parse_rate,
    DATE: lambda v: v.str.to_date("%Y-%m-%d"),
    BOOL: lambda v: v == "true",
    INT: lambda v: v.cast(pl.Int64),
    NUMBER: lambda v: v.cast(pl.Float64),
}
PARSE_TYPED: dict[str, Callable[[pl.Expr], pl.Expr]] = {  # a typed Parquet column (ledgers.native) likewise
    MONEY: lambda v: (v.cast(pl.Decimal(38, 2)) * 100).cast(pl.Int64),
    RATE: lambda v: (v.cast(pl.Decimal(38, 6)) * 1_000_000).cast(pl.Int64),
    DATE: lambda v: v,
    BOOL: lambda v: v,
    INT: lambda v: v.cast(pl.Int64),
    NUMBER: lambda v: v.cast(pl.Float64),
}


def parser(col: Col, dtype: pl.DataType) -> Callable[[pl.Expr], pl.Expr]:
    """COL's values as read (text, or typed Parquet) to the contract's type; only for values its rules passed."""
    return PARSE[col.type] if dtype == pl.String else PARSE_TYPED[col.type]


def as_text(v: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A value as the rejected file shows it: text as read; a Decimal without its padding zeros."""
    if dtype == pl.String:
        return v
    text = v.cast(pl.String)
    if isinstance(dtype, pl.Decimal) and (dtype.scale or 0) > 0:
        text = text.str.replace(r"0+$", "").str.strip_suffix(".")
    return text


@dataclass
class Validated:
    # ledger name -> typed frame, with _row; a ledger naming applicants is its regions' rows (by_region)
    # end to end: file order within a region, the regions in the catalogue's order
    accepted: dict[str, pl.DataFrame]
    rejected: pl.DataFrame             # REJECTED_SCHEMA, one line per fault
    # region -> ledger -> the accepted rows of the region's applicants (split while validating, _split);
    # a copy with other accepted rows sets it to {} (the computation then filters by region afresh)
    by_region: dict[str, dict[str, pl.DataFrame]] = field(default_factory=dict)
    rows_read: dict[str, int] = field(default_factory=dict)  # ledger -> rows read (accepted + rejected)
    applicant_regions: pl.DataFrame | None = None  # applicant_id, region: as read (disburse.job.check)


def validate(raw: dict[str, pl.DataFrame], regions: Collection[str], clause_ids: Collection[str],
             rate_ranges: Mapping[str, tuple[Decimal, Decimal]] | None = None,
             matter_ledgers: Mapping[str, str] | None = None,
             installment_counts: Mapping[str, int] | None = None,
             region_zh: Mapping[str, str] | None = None) -> Validated:
    """``rate_ranges``: clause id -> the approved rates its recognitions may carry (lingang.5.1 10%-30%).
    ``region_zh``: region id -> its Chinese name (a ledger's region may be either).
    ``matter_ledgers``: for each clause that pays on a ledger row, that ledger; a recognition for
    such a clause must name a row id found in it (``unknown_matter``).
    ``installment_counts``: clause id -> how many installments it pays in (1: at once); a prior
    payment giving ``installments`` must give its clause's count (``installments_mismatch``)."""
    known = {"region": list(regions), "clause_id": list(clause_ids), APPLICANT: None}
    regions = list(regions)
    raw = {name: normalise(df, LEDGERS[name], region_zh) for name, df in raw.items()}
    check = partial(_check_ledger, raw=raw, known=known, rate_ranges=rate_ranges or {},
                    matter_ledgers=matter_ledgers or {}, regions=regions,
                    installment_counts=installment_counts or {})
    first = check("applicants")  # applicants come first: the others refer to them
    known[APPLICANT] = first[0][APPLICANT]
    owners = _owners(raw, first[0], regions)
    # The other ledgers only read the applicants' results: checked two at a time (polars releases the
    # GIL; several of its kernels run on one core), gathered in the ledgers' order.
    with ThreadPoolExecutor(max_workers=LEDGER_THREADS) as pool:
        done = [first, *pool.map(lambda name: check(name, owner=owners.get(name)), list(LEDGERS)[1:])]
    accepted = {name: acc for name, (acc, _, _) in zip(LEDGERS, done)}
    by_region = {r: {name: parts[r] for name, (_, _, parts) in zip(LEDGERS, done)} for r in regions}
    return Validated(accepted, pl.concat([rej for _, rej, _ in done]), by_region=by_region)


def _check_ledger(name: str, *, raw: dict[str, pl.DataFrame], known: dict, rate_ranges: Mapping[str, tuple[Decimal, Decimal]],
                  matter_ledgers: Mapping[str, str], regions: list[str], installment_counts: Mapping[str, int],
                  owner: pl.Series | None = None,
                  ) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, pl.DataFrame]]:
    """One ledger: its accepted rows (typed), its rejected lines, and its accepted rows by region.

    OWNER: each row's region as ``_owners`` looked it up (ledgers naming an applicant, after the applicants)."""
    ledger = LEDGERS[name]
    read = raw.get(name, empty_raw(ledger))
    df = read.select(ROW, *ledger.column_names)  # text, or typed where the Parquet file was (ledgers.native)
    if owner is not None:
        df = df.with_columns(owner.alias(OWNER))
    split, malformed = _malformed(read)
    cells = _cell_faults(read, ledger)
    value_faults = _value_faults(df.filter(split), ledger, known, read)
    value_faults = pl.concat([cells, value_faults])
    # every later check reads values as the contract types them, on rows whose every value passed
    typed = df.filter(split & ~pl.col(ROW).is_in(value_faults["row"].implode())).with_columns(
        parser(c, df.schema[c.name])(pl.col(c.name)).alias(c.name) for c in ledger.columns)
    faults = pl.concat([
        malformed, value_faults, *_row_faults(df.filter(split), ledger),
        _as_read(df, [*_range_faults(typed, ledger, rate_ranges), *_cross_faults(typed, ledger, raw, matter_ledgers),
                     *_installment_faults(typed, ledger, installment_counts)]),
    ])
    if name == "applicants" and df["year"].is_not_null().any():  # without years, one row per applicant
        faults = pl.concat([faults, _incomplete_applicants(df, faults)])
    accepted = typed.filter(~pl.col(ROW).is_in(faults["row"].implode()))
    parts = _split(name, accepted, regions)
    if OWNER in accepted.columns or name == "applicants":
        # every accepted row has its region: the ledger is its regions' parts end to end, not a second copy
        # (rows in file order within a region; every reader of the whole ledger filters by region or sums)
        accepted = pl.concat([parts[r] for r in regions], rechunk=False) if regions else accepted.clear()
    return accepted.drop(OWNER, strict=False), _rejected_lines(name, df, faults), parts


def _owners(raw: dict[str, pl.DataFrame], applicants: pl.DataFrame, regions: list[str]) -> dict[str, pl.Series]:
    """For every later ledger naming an applicant: each row's region, in file order, as its accepted applicant
    has it; null where no accepted applicant has the id (the ``unknown_applicant`` fault).

    One lookup for all ledgers: the applicants' hash table is built once, not once per ledger (and once
    more to split the rows by region). An accepted applicant's rows agree on its region (``_disagreeing_applicants``)."""
    names = [n for n, led in LEDGERS.items()
             if n != "applicants" and led.has_applicant and n in raw and raw[n].height]
    if not names:
        return {}
    ids = pl.concat([raw[n].select(pl.col(APPLICANT).cast(pl.String)) for n in names], rechunk=False)
    # an applicant's rows (one per year from which its facts hold) share its region: one entry per applicant
    table = applicants.select(APPLICANT, pl.col("region").cast(pl.Enum(regions)).alias(OWNER)).unique(APPLICANT)
    owner = ids.join(table, on=APPLICANT, how="left", maintain_order="left")[OWNER]
    assert owner.len() == ids.height  # unique ids: the lookup neither drops nor repeats a row
    out, at = {}, 0
    for n in names:
        out[n] = owner.slice(at, raw[n].height)
        at += raw[n].height
    return out


def _split(name: str, accepted: pl.DataFrame, regions: list[str]) -> dict[str, pl.DataFrame]:
    """Region -> the accepted rows of that region's applicants, in file order (``Validated.by_region``).

    A ledger naming applicants is partitioned by the region its rows were given in validation (``_owners``);
    the applicants by their own region; a ledger naming none (the fund's own facts) goes whole to every region."""
    key = OWNER if OWNER in accepted.columns else "region" if name == "applicants" else None
    if key is None:
        return {r: accepted for r in regions}
    parts = accepted.partition_by(key, as_dict=True, include_key=key != OWNER, maintain_order=True)
    empty = accepted.clear().drop(OWNER, strict=False)
    return {r: parts.get((r,), empty) for r in regions}


def _as_read(df: pl.DataFrame, faults: list[pl.DataFrame]) -> pl.DataFrame:
    """FAULTS (row, column, reason) found on typed values, with each value as the file holds it (DF)."""
    found = pl.concat(faults) if faults else pl.DataFrame(schema={c: REJECTED_SCHEMA[c] for c in ("row", "column", "reason")})
    columns = found["column"].unique().to_list()
    values = df.join(found.select(pl.col("row").alias(ROW)), on=ROW, how="semi").select(
        pl.col(ROW).alias("row"), *(as_text(pl.col(c), df.schema[c]) for c in columns))
    long = values.unpivot(index="row", on=columns, variable_name="column", value_name="value") if columns else \
        pl.DataFrame(schema={"row": pl.Int64, "column": pl.String, "value": pl.String})
    return found.join(long, on=["row", "column"], how="left", maintain_order="left").select(FAULT_COLUMNS)


def normalise(df: pl.DataFrame, ledger: Ledger, region_zh: Mapping[str, str] | None = None) -> pl.DataFrame:
    """The forms a bureau types, in text columns, to the canonical text (every other value as it is):
    是/否 and TRUE/FALSE to true/false; 2021/3/31, 2021-3-31 and 2021年3月31日 to 2021-03-31; ¥/￥ and
    well-formed thousands separators dropped from amounts; an enumeration value's Chinese name (and a
    region's) to its English one. A total row (合计, 总计, 小计, 共计 starting a cell) is marked malformed
    (``total_row``). Column by column, never row by row."""
    out = []
    for c in ledger.columns:
        if c.name not in df.columns or df.schema[c.name] != pl.String:
            continue
        v = pl.col(c.name)
        if c.type == BOOL:
            v = pl.when(v.is_in(TRUE_WORDS)).then(pl.lit("true")).when(v.is_in(FALSE_WORDS)).then(pl.lit("false")).otherwise(v)
        elif c.type == DATE:
            iso = None
            for form in DATE_FORMS:
                parts = v.str.extract_groups(form)
                e = pl.when(v.str.contains(form)).then(pl.concat_str(
                    parts.struct.field("1"), parts.struct.field("2").str.pad_start(2, "0"),
                    parts.struct.field("3").str.pad_start(2, "0"), separator="-"))
                iso = e if iso is None else pl.coalesce(iso, e)
            v = pl.coalesce(iso, v)
        elif c.type in (MONEY, NUMBER):
            bare = v.str.replace(YUAN_SIGN_RE, "") if c.type == MONEY else v
            v = pl.when(bare.str.contains(THOUSANDS_RE)).then(bare.str.replace_all(",", "", literal=True)).otherwise(bare)
        elif c.enum:
            v = v.replace({z: e for e, z in ENUM_ZH[c.enum].items()})
        elif c.name == "region" and region_zh:
            v = v.replace({z: r for r, z in region_zh.items()})
        out.append(v.alias(c.name))
    df = df.with_columns(out) if out else df
    text = [c for c in ledger.column_names if c in df.columns and df.schema[c] == pl.String]
    if not text or df.height == 0:
        return df
    total = pl.any_horizontal(pl.col(text).str.contains(TOTAL_WORDS_RE).fill_null(False))
    key = [k for k in ("applicant_id", *ledger.key) if k in text]
    money = [c.name for c in ledger.columns if c.type == MONEY and c.name in df.columns]
    if key and money:  # a blank id with sums: the totals of a sheet under its rows
        total = total | (pl.all_horizontal(pl.col(key).is_null()) & pl.any_horizontal(pl.col(money).is_not_null()))
    why = pl.when(total).then(pl.lit("total_row: a total (合计) row, not a ledger row; it is never summed"))
    if MALFORMED in df.columns:
        return df.with_columns(pl.coalesce(pl.col(MALFORMED), why).alias(MALFORMED))
    return df.with_columns(why.alias(MALFORMED)) if df.select(total.any()).item() else df


def _cell_faults(read: pl.DataFrame, ledger: Ledger) -> pl.DataFrame:
    """One fault per spreadsheet cell that could not be read exactly (``disburse.sheets``): its row, column,
    the cell as shown, and why."""
    cols = [c for c in ledger.column_names if FAULT + c in read.columns]
    if not cols:
        return pl.DataFrame(schema={c: REJECTED_SCHEMA[c] for c in FAULT_COLUMNS})
    keep = read.filter(pl.col(MALFORMED).is_null()) if MALFORMED in read.columns else read
    return pl.concat([
        keep.filter(pl.col(FAULT + c).is_not_null()).select(
            pl.col(ROW).alias("row"), pl.lit(c).alias("column"), pl.col(c).cast(pl.String).alias("value"),
            pl.col(FAULT + c).alias("reason"))
        for c in cols
    ]).sort("row", maintain_order=True)


def _malformed(read: pl.DataFrame) -> tuple[pl.Expr, pl.DataFrame]:
    """Rows the reader could split into the header's fields, and one fault per row it could not
    (or a total row)."""
    if MALFORMED not in read.columns:
        return pl.lit(True), pl.DataFrame(schema={c: REJECTED_SCHEMA[c] for c in FAULT_COLUMNS})
    bad = read.filter(pl.col(MALFORMED).is_not_null())
    faults = bad.select(pl.col(ROW).alias("row"), pl.lit(None, pl.String).alias("column"),
                        pl.lit(None, pl.String).alias("value"), pl.col(MALFORMED).alias("reason"))
    return ~pl.col(ROW).is_in(bad[ROW].implode()), faults


# --- value faults: one pandera schema per ledger ------------------------------

def _rules(ledger: Ledger, col: Col, known: dict, dtype: pl.DataType = pl.String) -> list[Rule]:
    rules = _text_rules(col) if dtype == pl.String else _typed_rules(col)
    if col.enum:
        vague = AMBIGUOUS_ZH.get(col.name, {})
        if vague:
            rules.append((f"ambiguous_value: {' or '.join(vague)} names more than one of {', '.join(col.enum)}",
                          lambda v: ~v.is_in(list(vague))))
        rules.append((f"not_allowed: expected one of {', '.join(col.enum)} (or their Chinese names)",
                      lambda v: v.is_in(col.enum) | v.is_in(list(vague))))

    number = (lambda v: v) if dtype != pl.String else (lambda v: v.cast(pl.Int64, strict=False))
    whole = (lambda v: pl.lit(True)) if dtype != pl.String else (lambda v: v.str.contains(INT_RE))
    if col.name == "quantity":
        rules.append((f"out_of_range: {col.name} above {MAX_QUANTITY:,}",
                      lambda v: ~whole(v) | (number(v) <= MAX_QUANTITY)))
    if col.name == "year":
        rules.append((f"bad_year: expected a year from {FIRST_YEAR} to {LAST_YEAR}",
                      lambda v: ~whole(v) | number(v).is_between(FIRST_YEAR, LAST_YEAR)))
    elif ledger.name == "applicants" and col.name == APPLICANT:
        rules.append(("bad_credit_code: not an 18-character code with a valid GB 32100-2015 check character",
                      uscc.valid_expr))
    elif ledger.name == "applicants" and col.name == "region":
        rules.append(("unknown_region: no rules for this region", lambda v: v.is_in(known["region"])))
    elif col.name == APPLICANT:
        rules.append((UNKNOWN_APPLICANT, lambda v: v.is_in(known[APPLICANT].implode())))
    elif col.name == "clause_id":
        rules.append(("unknown_clause: no such clause in the rules", lambda v: v.is_in(known["clause_id"])))
    return rules


def _text_rules(col: Col) -> list[Rule]:
    if col.type == MONEY:
        vague = r"[0-9][,.][0-9]"  # separators other than well-formed thousands (1.234,56; 216,54.3)
        return [("ambiguous_money: separators that could mean two things (write 1234.56 or 1,234.56)",
                 lambda v: ~(v.str.contains(",") & v.str.contains(vague))),
                *[(r, lambda v, p=p: p(v) | (v.str.contains(",") & v.str.contains(vague)))
                  for r, p in _unsigned(MONEY_RE, BAD_MONEY, "negative_amount: money cannot be negative")]]
    if col.type == NUMBER:
        return _unsigned(NUMBER_RE, "bad_number: not a number", f"negative_number: {col.name} cannot be negative")
    if col.type == INT:
        return _unsigned(INT_RE, "bad_int: not a whole number", f"negative_number: {col.name} cannot be negative")
    if col.type == RATE:
        return [(BAD_RATE, lambda v: v.str.contains(RATE_RE))]
    if col.type == DATE:
        odd = lambda v: v.str.contains(AMBIGUOUS_DATE_RE) | v.str.contains(SERIAL_DATE_RE)  # noqa: E731
        return [("ambiguous_date: day and month could be either way round (write 2021-03-04 or 2021年3月4日)",
                 lambda v: ~v.str.contains(AMBIGUOUS_DATE_RE)),
                ("serial_date: a number (an Excel serial number?) where a date is expected; type the date",
                 lambda v: ~v.str.contains(SERIAL_DATE_RE)),
                ("bad_date: not a real date YYYY-MM-DD",
                 lambda v: odd(v) | v.str.contains(DATE_RE) & v.str.to_date("%Y-%m-%d", strict=False).is_not_null())]
    if col.type == BOOL:
        return [("bad_bool: expected true or false (是 or 否)", lambda v: v.is_in(["true", "false"]))]
    return []


def _typed_rules(col: Col) -> list[Rule]:
    """The same limits on a typed Parquet column (``ledgers.native``): its type already rules out the
    malformed text; what is left is scale, range and sign, in the text rules' words."""
    if col.type == MONEY:  # Decimal: at most 2 decimals, at most 13 digits before the point (as MONEY_RE)
        return [(BAD_MONEY, lambda v: (v.round(2) == v) & (v.abs() < 10**13)),
                ("negative_amount: money cannot be negative", lambda v: v >= 0)]
    if col.type == NUMBER:
        return [("bad_number: not a number", lambda v: v.cast(pl.Float64).is_finite() & (v.abs() < 10**15)),
                (f"negative_number: {col.name} cannot be negative", lambda v: v >= 0)]
    if col.type == INT:
        return [("bad_int: not a whole number", lambda v: v <= MAX_INT),
                (f"negative_number: {col.name} cannot be negative", lambda v: v >= 0)]
    if col.type == RATE:  # Decimal: 0 to 1 with at most 6 decimals (as RATE_RE)
        return [(BAD_RATE, lambda v: (v >= 0) & (v <= 1) & (v.round(6) == v))]
    return []  # a Date or a Boolean is one by its type


def _unsigned(pattern: str, bad: str, negative: str) -> list[Rule]:
    """PATTERN (anchored ^...$) must match; the same with a leading minus is the NEGATIVE fault."""
    minus = "^-" + pattern[1:]
    return [
        (bad, lambda v: v.str.contains(pattern) | v.str.contains(minus)),
        (negative, lambda v: ~v.str.contains(minus)),
    ]


def _check(reason: str, passes: Callable[[pl.Expr], pl.Expr]) -> pa.Check:
    def check(data: pa.PolarsData) -> pl.LazyFrame:
        v = pl.col(data.key)
        return data.lazyframe.select(v.is_null() | passes(v))

    return pa.Check(check, name=reason.split(":")[0], error=reason)


def value_rules(ledger: Ledger, known: dict, dtypes: Mapping[str, pl.DataType] | None = None,
                ) -> list[tuple[str, str, Callable[[pl.Expr], pl.Expr] | None]]:
    """(column, reason, passes) for every value rule of LEDGER, in the order they are tried:
    column by column, its required check (passes None) first. One list, two readers:
    ``schema`` (pandera, the schema of record) and ``_value_faults`` (one polars pass)."""
    out = []
    for c in ledger.columns:
        if not c.nullable:
            out.append((c.name, f"missing_value: {c.name} is required", None))
        out += [(c.name, reason, passes) for reason, passes in _rules(ledger, c, known, (dtypes or {}).get(c.name, pl.String))]
    return out


def schema(ledger: Ledger, known: dict, dtypes: Mapping[str, pl.DataType] | None = None) -> pa.DataFrameSchema:
    """LEDGER as read (text; DTYPES where a Parquet column is typed), as a pandera schema: columns, types,
    nullability and every value check with its reason.

    The schema of record: ``_value_faults`` evaluates the same rules (``value_rules``) in one polars pass,
    and a test holds the two to the same faults."""
    rules = value_rules(ledger, known, dtypes)
    return pa.DataFrameSchema({
        c.name: pa.Column((dtypes or {}).get(c.name, pl.String), nullable=c.nullable,
                          checks=[_check(r, passes) for col, r, passes in rules if col == c.name and passes])
        for c in ledger.columns
    })


def _value_faults(df: pl.DataFrame, ledger: Ledger, known: dict, read: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per (row, rule) that fails, as pandera reports them for ``schema``, in one pass over DF.

    Every rule is a boolean column of one lazy select; only the rows failing one are kept and unpivoted,
    so the cost is one scan of the text whatever the number of rules."""
    rules = value_rules(ledger, known, df.schema)
    if OWNER in df.columns:  # the applicant was looked up once for every ledger (_owners): the same membership
        rules = [(col, reason, (lambda v: pl.col(OWNER).is_not_null()) if reason == UNKNOWN_APPLICANT else passes)
                 for col, reason, passes in rules]
    cell = {c: FAULT + c for c in ledger.column_names if read is not None and FAULT + c in read.columns}
    if cell:  # a cell already at fault (disburse.sheets) is that fault alone
        df = df.join(read.select(ROW, *cell.values()), on=ROW, how="left", maintain_order="left")
    failed = [
        ((pl.col(col).is_null() if passes is None else pl.col(col).is_not_null() & ~passes(pl.col(col)))
         & (pl.col(cell[col]).is_null() if col in cell else pl.lit(True))).alias(f"_f{i}")
        for i, (col, _, passes) in enumerate(rules)
    ]
    flags = [f"_f{i}" for i in range(len(rules))]
    bad = df.lazy().select(ROW, *failed).filter(pl.any_horizontal(flags)).collect()
    if bad.is_empty():
        return pl.DataFrame(schema={c: REJECTED_SCHEMA[c] for c in FAULT_COLUMNS})
    catalogue = pl.DataFrame({"_rule": flags, "column": [r[0] for r in rules], "reason": [r[1] for r in rules],
                              "_order": list(range(len(rules)))})
    long = bad.unpivot(index=ROW, on=flags, variable_name="_rule", value_name="_failed").filter("_failed")
    values = df.join(bad.select(ROW), on=ROW, how="semi").select(
        ROW, *(as_text(pl.col(c), df.schema[c]) for c in ledger.column_names))
    return (
        long.join(catalogue, on="_rule")
        .join(values.unpivot(index=ROW, on=list(dict.fromkeys(r[0] for r in rules)),
                             variable_name="column", value_name="value"), on=[ROW, "column"], how="left")
        .sort("_order", ROW)  # pandera's order: rule by rule, rows in file order
        .select(pl.col(ROW).alias("row"), "column", "value", "reason")
    )


# --- faults across rows ---------------------------------------------------------

def _rows_in_group(*by: str) -> pl.Expr:
    return pl.col(ROW).sort().cast(pl.String).str.join(", ").over(by)


_KEY_SEED = 20_240_601  # any fixed seed: the hash only screens, equal keys are compared exactly


def _row_faults(df: pl.DataFrame, ledger: Ledger) -> list[pl.DataFrame]:
    # an optional key column (applicants' year) empty in every row is no part of the key: a file without it is
    # keyed by the rest; where it has values, an empty one is a value like any other (one row per applicant
    # may have none: its facts from the beginning)
    key = [k for k in ledger.key if not ledger.col(k).nullable or df[k].is_not_null().any()]
    required = [k for k in key if not ledger.col(k).nullable]
    repeated = df.filter(pl.all_horizontal(pl.col(required).is_not_null()))
    # the repeats, found by hashing; only they get their text. A key of one column is first screened by its
    # 64-bit hash (measured: half the time of hashing the texts themselves), and the few rows whose hash
    # repeats are then compared exactly, so a collision never rejects a row.
    if len(key) == 1:
        repeated = repeated.filter(pl.col(key[0]).hash(_KEY_SEED).is_duplicated())
    repeated = repeated.filter((pl.col(key[0]) if len(key) == 1 else pl.struct(key)).is_duplicated())
    duplicates = repeated.select(
        pl.col(ROW).alias("row"),
        pl.lit("|".join(key)).alias("column"),
        pl.concat_str([pl.col(k).cast(pl.String).fill_null("") for k in key], separator="|").alias("value"),
        pl.format("duplicate_key: {} repeats on rows {}", pl.lit(", ".join(key)), _rows_in_group(*key)).alias("reason"),
    )
    if ledger.name == "applicants" and "year" in key:  # several rows per applicant (without years, a repeat is a duplicate)
        return [duplicates, _disagreeing_applicants(df.join(duplicates.select(pl.col("row").alias(ROW)), on=ROW, how="anti"))]
    if ledger.name != "projects":
        return [duplicates]
    conflicts = df.filter(
        pl.col("project_id").is_not_null() & pl.col(APPLICANT).is_not_null()
    ).filter(pl.col(APPLICANT).n_unique().over("project_id") > 1).select(
        pl.col(ROW).alias("row"),
        pl.lit(APPLICANT).alias("column"),
        pl.col(APPLICANT).alias("value"),
        pl.format("conflicting_applicant: project {} has rows for several applicants (rows {})",
                  "project_id", _rows_in_group("project_id")).alias("reason"),
    )
    return [duplicates, conflicts]


def _disagreeing_applicants(df: pl.DataFrame) -> pl.DataFrame:
    """An applicant's id, region and dates are one per applicant (SPEC §3): where its rows (one per year from
    which its facts hold) differ in one of them, every row of it is refused, one line per row and column that
    differs. Rows whose key repeats are refused as duplicates already and are not compared (DF has none)."""
    rows = df.filter(pl.col(APPLICANT).is_not_null())
    multi = rows.filter(pl.len().over(APPLICANT) > 1)
    if multi.is_empty():
        return pl.DataFrame(schema={c: REJECTED_SCHEMA[c] for c in FAULT_COLUMNS})
    return pl.concat([
        multi.filter(pl.col(col).n_unique().over(APPLICANT) > 1).select(
            pl.col(ROW).alias("row"),
            pl.lit(col).alias("column"),
            as_text(pl.col(col), df.schema[col]).alias("value"),
            pl.format("applicant_rows_disagree: this applicant's rows {} give different {}",
                      _rows_in_group(APPLICANT), pl.lit(col)).alias("reason"),
        )
        for col in FIRM_COLUMNS
    ])


def _incomplete_applicants(df: pl.DataFrame, faults: pl.DataFrame) -> pl.DataFrame:
    """An applicant with several rows is known only whole: a row refused leaves the years it held for without
    facts, so the applicant's other rows are refused too (the other ledgers then name no accepted applicant)."""
    refused = df.join(faults.select(pl.col("row").alias(ROW)).unique(), on=ROW, how="semi")
    ids = refused.select(pl.col(APPLICANT).drop_nulls().unique())
    return (
        df.join(ids, on=APPLICANT, how="semi")
        .join(refused.select(ROW), on=ROW, how="anti")
        .join(refused.group_by(APPLICANT).agg(pl.col(ROW).sort().cast(pl.String).str.join(", ").alias("_refused")),
              on=APPLICANT)
        .select(
            pl.col(ROW).alias("row"),
            pl.lit(APPLICANT).alias("column"),
            pl.col(APPLICANT).alias("value"),
            pl.format("applicant_incomplete: another row of this applicant was refused (rows {})", "_refused").alias("reason"),
        )
        .cast({c: REJECTED_SCHEMA[c] for c in FAULT_COLUMNS})
    )


def _range_faults(df: pl.DataFrame, ledger: Ledger, rate_ranges: Mapping[str, tuple[Decimal, Decimal]]) -> list[pl.DataFrame]:
    """A recognition whose approved rate lies outside the range its clause allows is refused, not capped."""
    if ledger.name != "recognitions" or not rate_ranges:
        return []
    ranges = pl.DataFrame(
        [{"clause_id": cid, "_low": rate_to_ppm(lo), "_high": rate_to_ppm(hi), "_text": f"{lo:.0%}–{hi:.0%}"}
         for cid, (lo, hi) in rate_ranges.items()],
        schema={"clause_id": pl.String, "_low": pl.Int64, "_high": pl.Int64, "_text": pl.String},
    )
    return [
        df.filter(pl.col("approved_rate").is_not_null())
        .join(ranges, on="clause_id")
        .filter(~pl.col("approved_rate").is_between(pl.col("_low"), pl.col("_high")))
        .select(
            pl.col(ROW).alias("row"),
            pl.lit("approved_rate").alias("column"),
            pl.format("rate_outside_range: {} approves a rate from {} only", "clause_id", "_text").alias("reason"),
        )
    ]


INSTALLMENT_COLUMNS = ("installment", "installments", "award")


def _installment_faults(df: pl.DataFrame, ledger: Ledger, counts: Mapping[str, int]) -> list[pl.DataFrame]:
    """A prior payment of an award in installments (SPEC §3): installment, installments and award given
    together or not at all; 1 <= installment <= installments; installments the clause's own count (a
    clause paying at once: 1); award at least the amount paid, and exactly it for a payment made at once."""
    if ledger.name != "prior_payments":
        return []
    given = pl.sum_horizontal(pl.col(c).is_not_null().cast(pl.Int8) for c in INSTALLMENT_COLUMNS)
    partial_rows = [
        df.filter((given > 0) & (given < len(INSTALLMENT_COLUMNS)) & pl.col(c).is_null()).select(
            pl.col(ROW).alias("row"), pl.lit(c).alias("column"),
            pl.lit("incomplete_installment: installment, installments and award are given together "
                   "or not at all").alias("reason"))
        for c in INSTALLMENT_COLUMNS
    ]
    whole = df.filter(given == len(INSTALLMENT_COLUMNS))
    plan = pl.DataFrame({"clause_id": list(counts), "_count": list(counts.values())},
                        schema={"clause_id": pl.String, "_count": pl.Int64})
    own = whole.join(plan, on="clause_id", how="left")
    return [
        *partial_rows,
        whole.filter((pl.col("installment") < 1) | (pl.col("installment") > pl.col("installments"))).select(
            pl.col(ROW).alias("row"), pl.lit("installment").alias("column"),
            pl.format("bad_installment: installment {} is not from 1 to installments {}", "installment",
                      "installments").alias("reason")),
        own.filter(pl.col("_count").is_not_null() & (pl.col("installments") != pl.col("_count"))).select(
            pl.col(ROW).alias("row"), pl.lit("installments").alias("column"),
            pl.format("installments_mismatch: clause {} pays in {} installment(s)", "clause_id", "_count").alias("reason")),
        whole.filter(pl.col("award") < pl.col("amount")).select(
            pl.col(ROW).alias("row"), pl.lit("award").alias("column"),
            pl.lit("award_below_amount: the award is less than the amount paid").alias("reason")),
        whole.filter((pl.col("installments") == 1) & (pl.col("award") > pl.col("amount"))).select(
            pl.col(ROW).alias("row"), pl.lit("award").alias("column"),
            pl.lit("award_not_amount: a payment made at once pays its whole award").alias("reason")),
    ]


def _cross_faults(df: pl.DataFrame, ledger: Ledger, raw: dict[str, pl.DataFrame],
                  matter_ledgers: Mapping[str, str]) -> list[pl.DataFrame]:
    """Faults between columns and ledgers, on rows whose every value passed its rules (DF, typed)."""
    out = []
    date_col = ledger.date_column
    if date_col and not ledger.col(date_col).nullable and "year" in ledger.column_names:
        out.append(df.filter(pl.col("year") != pl.col(date_col).dt.year()).select(
            pl.col(ROW).alias("row"), pl.lit("year").alias("column"),
            pl.format("year_mismatch: year {} is not the year of {} {}", "year", pl.lit(date_col), date_col).alias("reason"),
        ))
    if ledger.name == "recognitions" and matter_ledgers:
        out.append(_unknown_matters(df, raw, matter_ledgers))
    money = [c.name for c in ledger.columns if c.type == MONEY]
    if money and APPLICANT in ledger.column_names:
        out += _sums_out_of_range(df, money)
    return [f.select("row", "column", "reason").cast({c: REJECTED_SCHEMA[c] for c in ("row", "column", "reason")})
            for f in out]


def _unknown_matters(rec: pl.DataFrame, raw: dict[str, pl.DataFrame], matter_ledgers: Mapping[str, str]) -> pl.DataFrame:
    """A recognition for a clause that pays on a ledger row must name a row of that ledger."""
    clauses = pl.DataFrame({"clause_id": list(matter_ledgers), "_ledger": list(matter_ledgers.values())})
    ids = pl.concat([
        raw.get(name, empty_raw(LEDGERS[name])).select(
            pl.lit(name).alias("_ledger"), pl.col(LEDGERS[name].key[0]).cast(pl.String).alias("matter_id"))
        for name in sorted(set(matter_ledgers.values()))
    ])
    return (
        rec.join(clauses, on="clause_id").join(ids, on=["_ledger", "matter_id"], how="anti")
        .select(pl.col(ROW).alias("row"), pl.lit("matter_id").alias("column"),
                pl.format("unknown_matter: clause {} pays on a {} row and no {} row has this id",
                          "clause_id", "_ledger", "_ledger").alias("reason"))
    )


def _sums_out_of_range(df: pl.DataFrame, money: list[str]) -> list[pl.DataFrame]:
    """An applicant's rows whose money column sums beyond MAX_SUM_FEN (all years): every such row is refused.

    Any base a clause forms is a sum of some of these rows, so within the
    bound every sum and every product with a rate fits Int64 fen and
    Decimal(18, 2) yuan; beyond it the set is refused, never wrapped.
    (A window sum measured faster here than a group-by and a join back.) A column whose total over
    every applicant is within the bound cannot hold an applicant beyond it: one exact sum skips it.
    """
    totals = df.select(pl.col(c).cast(pl.Int128).sum() for c in money).row(0)
    return [
        df.filter(pl.col(col).is_not_null() & (pl.col(col).cast(pl.Int128).sum().over(APPLICANT) > MAX_SUM_FEN)).select(
            pl.col(ROW).alias("row"), pl.lit(col).alias("column"),
            pl.lit(f"sum_out_of_range: this applicant's {col} rows sum beyond {fmt_fen(MAX_SUM_FEN)} yuan").alias("reason"),
        )
        for col, total in zip(money, totals) if total is not None and total > MAX_SUM_FEN
    ]


def _rejected_lines(name: str, df: pl.DataFrame, faults: pl.DataFrame) -> pl.DataFrame:
    out = faults.join(df.select(pl.col(ROW).alias("row"), APPLICANT), on="row", how="left")
    out = out.with_columns(pl.lit(name).alias("ledger")).select(list(REJECTED_SCHEMA)).cast(REJECTED_SCHEMA)
    return out.sort("row", "column", maintain_order=True)
