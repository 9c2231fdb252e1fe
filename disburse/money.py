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


# --- amounts in Chinese capitals (大写金额) ------------------------------------------------
_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_PLACES = ("仟", "佰", "拾", "")


def _capitals_below_10000(n: int) -> str:
    """1..9999 in capitals, a zero inside (or several) read as one 零, none at the end: 壹仟零伍, 壹拾."""
    out, zero = [], False
    for digit, place in zip(f"{n:04d}", _PLACES):
        d = int(digit)
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out.append("零")
        out.append(_DIGITS[d] + place)
        zero = False
    return "".join(out)


def _capitals_whole(n: int) -> str:
    """A whole number of yuan > 0 in capitals, by sections of 亿 and 万; a gap before a section's
    highest place is one 零 (壹拾万零壹, 壹亿零壹万, 壹万零壹亿)."""
    for size, unit in ((10**8, "亿"), (10**4, "万")):
        if n >= size:
            high, low = divmod(n, size)
            text = _capitals_whole(high) + unit
            if low:
                text += ("零" if low < size // 10 else "") + _capitals_whole(low)
            return text
    return _capitals_below_10000(n)


def yuan_in_capitals(fen: int) -> str:
    """An amount in fen as a bureau writes it in capitals on a notice (大写金额), without 人民币 before it.

    The rules of 正确填写票据和结算凭证的基本规定: digits 零壹贰叁肆伍陆柒捌玖 with 拾佰仟万亿, a ten at
    the start written 壹拾; zeros inside the yuan read as one 零; 整 after 元 where there are no 角 and 分;
    where 角 is 0 and 分 is not, 零 after 元 (壹元零伍分); where the yuan ends in 0 and 角 is not 0, 零 after
    元 too, the standard's first form (¥1,680.32: 壹仟陆佰捌拾元零叁角贰分; ¥107,000.53: 壹拾万柒仟元零伍角叁分);
    below one yuan no 元 (伍分). 12345678 → 壹拾贰万叁仟肆佰伍拾陆元柒角捌分,
    1000 → 壹拾元整, 0 → 零元整.
    """
    if not isinstance(fen, int) or isinstance(fen, bool) or fen < 0:
        raise ValueError(f"yuan_in_capitals: expected whole fen >= 0, got {fen!r}")
    whole, cents = divmod(fen, 100)
    jiao, fen_digit = divmod(cents, 10)
    text = _capitals_whole(whole) + "元" if whole else ""
    if not cents:
        return (text or "零元") + "整"
    if whole and (not jiao or whole % 10 == 0):
        text += "零"  # 壹元零伍分; and the standard's first form where the yuan ends in 0: 壹仟陆佰捌拾元零叁角贰分
    if jiao:
        text += _DIGITS[jiao] + "角"
    if fen_digit:
        text += _DIGITS[fen_digit] + "分"
    return text
