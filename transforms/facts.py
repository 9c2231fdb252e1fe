"""An applicant's facts as they were in a year (SPEC §3 ``applicants``).

``applicants`` holds one row per applicant, or, with its optional ``year``
column, one row per applicant and year from which the row's facts
(``ledgers.FACT_COLUMNS``: name, size, above_scale, sector, credit_ok) hold
until the applicant's next row. Its id, region and dates are one per applicant
(validation rejects an applicant whose rows disagree on them).

The row in force for year Y is the applicant's latest row whose year is at
most Y. For a year before its first row, the first row holds: the firm existed
then, and its earliest known facts are the best the ledgers say of it (a row
without a year holds from the firm's beginning likewise). So every accepted
applicant has exactly one row in force for every year.

Grain of ``with_from``'s result: the applicants' rows, with ``FROM`` the first
year each holds for. ``in_force``: one row per applicant. ``facts_for``: the
rows of the frame given, each with its applicant's facts for its own year.
"""

from __future__ import annotations

import polars as pl

FROM = "_facts_from"  # the first year a row of applicants holds for (its year; the applicant's first row: always)
ALWAYS = -1           # FROM of an applicant's first row: it holds for every year before the next


def with_from(applicants: pl.DataFrame) -> pl.DataFrame:
    """APPLICANTS with ``FROM``: the row's year, or ALWAYS for the applicant's first row (or a row with no year).

    Idempotent: a frame that has ``FROM`` is returned as it is."""
    if FROM in applicants.columns:
        return applicants
    if "year" not in applicants.columns or applicants["year"].null_count() == applicants.height:
        return applicants.with_columns(pl.lit(ALWAYS, pl.Int64).alias(FROM))  # one row per applicant, for every year
    year = pl.col("year").cast(pl.Int64)
    # a row with no year is the applicant's first (validation allows one such row per applicant); without one,
    # its earliest year
    first = year.is_null() | ((year == year.min().over("applicant_id")) & (year.null_count().over("applicant_id") == 0))
    return applicants.with_columns(pl.when(first).then(pl.lit(ALWAYS, pl.Int64)).otherwise(year).alias(FROM))


def _one_row_each(rows: pl.DataFrame) -> bool:
    """Every row of ROWS (``with_from``) holds for every year: one row per applicant (its first)."""
    return rows.height == 0 or rows[FROM].max() == ALWAYS


def in_force(applicants: pl.DataFrame, year: int) -> pl.DataFrame:
    """One row per applicant: the row in force for YEAR, with the columns of APPLICANTS (``FROM`` and
    ``year`` dropped), in file order of the rows in force."""
    rows = with_from(applicants)
    if _one_row_each(rows):
        return rows.drop(FROM, "year", strict=False)
    return (
        rows.with_row_index("_order")
        .filter(pl.col(FROM) <= year)
        .sort(FROM)
        .group_by("applicant_id", maintain_order=True).last()
        .sort("_order")
        .drop("_order", FROM, "year", strict=False)
    )


def facts_for(df: pl.DataFrame, applicants: pl.DataFrame, year: str, columns: list[str] | tuple[str, ...],
              *, on: str = "applicant_id", rename: dict[str, str] | None = None) -> pl.DataFrame:
    """DF (order kept) with COLUMNS of the applicant named by ON as they were in the year in DF's column YEAR.

    Vectorised: the applicants' rows are resolved once per distinct year in DF (few: a run's year and the
    years of lines paid late), then joined on (applicant, year). An applicant unknown to APPLICANTS gets
    nulls, as a left join gives."""
    rows = with_from(applicants).select(pl.col("applicant_id").alias(on), FROM, *columns)
    if _one_row_each(rows):  # every row holds for every year: a plain join
        return df.join(rows.drop(FROM).rename(rename or {}), on=on, how="left", maintain_order="left")
    years = df.select(pl.col(year).cast(pl.Int64).alias("_year")).unique().drop_nulls()
    resolved = (
        rows.join(years, how="cross")
        .filter(pl.col(FROM) <= pl.col("_year"))
        .sort(FROM)
        .group_by(on, "_year").last()
        .drop(FROM)
        .rename(rename or {})
    )
    return (
        df.with_columns(pl.col(year).cast(pl.Int64).alias("_year"))
        .join(resolved, on=[on, "_year"], how="left", maintain_order="left")
        .drop("_year")
    )
