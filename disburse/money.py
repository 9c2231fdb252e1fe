"""Money in one representation: integer fen inside, yuan with two decimals at the edge.

Rates are integer millionths (ppm): 50% is 500_000. A product ``fen × ppm``
(millionths of a fen) can pass 2^63 for amounts above 9.2 billion yuan, so it
is formed in Int128 (``micro``) and rounded back to Int64 fen once.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl

PPM = 1_000_000
# [0-9], never \d: polars' \d matches full-width and other scripts' digits too (１００, ١٠٠).
MONEY_RE = r"^[0-9]{1,13}(\.[0-9]{1,2})?$"
RATE_RE = r"^(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$"
# The most one applicant's rows of one money column may sum to (100 trillion yuan): within it,
# every base a clause sums, and its product with a rate, fits Int64 fen and Decimal(18, 2) yuan
# with room for every line of a region; transforms.validate refuses a set of rows beyond it.
MAX_SUM_FEN = 10**16


def yuan_to_fen(value: str | int | float | Decimal) -> int:
    """Exact yuan (text, int or Decimal; a float is taken by its shortest text) to fen."""
    d = Decimal(str(value))
    fen = d * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"{value} has more than 2 decimals")
    return int(fen)


def rate_to_ppm(value: str | float | Decimal) -> int:
    d = Decimal(str(value)) * PPM
    if d != d.to_integral_value():
        raise ValueError(f"rate {value} has more than 6 decimals")
    return int(d)


def fen_to_decimal(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


def fmt_fen(fen: int | None) -> str:
    """1234567 -> '12,345.67' (for reports and messages)."""
    if fen is None:
        return ""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


def fmt_ppm(ppm: int | None) -> str:
    """500000 -> '50%', 2000 -> '0.2%'."""
    if ppm is None:
        return ""
    pct = (Decimal(ppm) / 10_000).normalize()
    return f"{pct:f}%"


# --- polars expressions -------------------------------------------------------

def parse_money(col: str | pl.Expr) -> pl.Expr:
    """Text yuan (already checked against MONEY_RE) to Int64 fen, exactly."""
    e = pl.col(col) if isinstance(col, str) else col
    whole = e.str.extract(r"^([0-9]+)", 1).cast(pl.Int64)
    frac = e.str.extract(r"\.([0-9]{1,2})$", 1).str.pad_end(2, "0").cast(pl.Int64).fill_null(0)
    return whole * 100 + frac


def parse_rate(col: str | pl.Expr) -> pl.Expr:
    """Text share 0..1 (checked against RATE_RE) to Int64 millionths, exactly."""
    e = pl.col(col) if isinstance(col, str) else col
    whole = e.str.extract(r"^([0-9])", 1).cast(pl.Int64)
    frac = e.str.extract(r"\.([0-9]{1,6})$", 1).str.pad_end(6, "0").cast(pl.Int64).fill_null(0)
    return whole * PPM + frac


def sum_fen(fen: pl.Expr) -> pl.Expr:
    """A sum of fen that never wraps: added in Int128, back to Int64 by a strict cast, which
    raises rather than wrap (validation keeps every ledger sum far inside: MAX_SUM_FEN)."""
    return fen.cast(pl.Int128).sum().cast(pl.Int64)


def total_fen(fen: pl.Series) -> int:
    """The exact total of a column of fen (Int128: a region's lines never wrap)."""
    return int(fen.cast(pl.Int128).sum() or 0)


def micro(fen: pl.Expr, ppm: pl.Expr | int) -> pl.Expr:
    """fen × rate exactly, in millionths of a fen (Int128: no overflow for any ledger amount)."""
    return fen.cast(pl.Int128) * ppm


def round_micro(millionths: pl.Expr) -> pl.Expr:
    """Millionths of a fen to fen, half up (non-negative amounts), back in Int64."""
    return ((millionths + PPM // 2) // PPM).cast(pl.Int64)


def apply_rate(fen: pl.Expr, ppm: pl.Expr) -> pl.Expr:
    """fen × rate, rounded half up to the fen (both operands non-negative)."""
    return round_micro(micro(fen, ppm))


def fen_to_yuan_expr(fen: pl.Expr) -> pl.Expr:
    """Int64 fen to Decimal(18, 2) yuan, exactly (for the files finance reads)."""
    exact = fen.cast(pl.Decimal(20, 0)).cast(pl.Decimal(18, 2)) / pl.lit(Decimal(100)).cast(pl.Decimal(18, 2))
    return exact.cast(pl.Decimal(18, 2))  # fen / 100 has exactly two decimals: the cast only narrows the type


def yuan_text(fen: str | pl.Expr) -> pl.Expr:
    """Int64 fen to '1234.56' (the text finance's spreadsheets parse)."""
    e = pl.col(fen) if isinstance(fen, str) else fen
    return pl.format("{}.{}", e // 100, (e % 100).cast(pl.String).str.zfill(2))


def rate_text(ppm: str) -> pl.Expr:
    """Int64 millionths to a decimal share: 500000 -> '0.5'."""
    e = pl.col(ppm)
    frac = (e % 1_000_000).cast(pl.String).str.zfill(6).str.strip_chars_end("0")
    return pl.when(frac == "").then((e // 1_000_000).cast(pl.String)).otherwise(pl.format("{}.{}", e // 1_000_000, frac))


def fmt_fen_expr(fen: pl.Expr) -> pl.Expr:
    """Int64 fen to '1,234,567.89' text, vectorised (non-negative amounts).

    Thousands separators without look-ahead: reverse the digits, put a comma
    after every three, drop a trailing one, reverse back.
    """
    whole = (
        (fen // 100).cast(pl.String).str.reverse()
        .str.replace_all(r"(\d{3})", "$1,").str.strip_suffix(",").str.reverse()
    )
    return pl.format("{}.{}", whole, (fen % 100).cast(pl.String).str.zfill(2))


def fmt_ppm_expr(ppm: pl.Expr) -> pl.Expr:
    """Int64 millionths to '50%' / '0.2%' text, vectorised."""
    whole = (ppm // 10_000).cast(pl.String)
    frac = (ppm % 10_000).cast(pl.String).str.zfill(4).str.strip_chars_end("0")
    return pl.when(frac == "").then(pl.format("{}%", whole)).otherwise(pl.format("{}.{}%", whole, frac))
