"""The ledgers of SPEC §3 as data, and reading them from disk.

Grain of every ledger is its ``key``. Reading keeps every value as text
(``pl.String``) and adds ``_row``: the row number in the file, the header
being row 1 (for Parquet, the first data row is row 2 likewise). Typing and
checking happen in ``transforms.validate``; nothing here interprets a value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

ROW = "_row"

# Column types. "money" is yuan with at most 2 decimals, held inside as integer
# fen (Int64); "rate" is a share 0..1 held as integer millionths (Int64).
STR, INT, DATE, BOOL, MONEY, RATE, NUMBER = "str", "int", "date", "bool", "money", "rate", "number"

SIZES = ("large", "medium", "small", "micro")
SECTORS = ("ai", "blockchain", "collab", "other")
COMPUTE_CATEGORIES = ("telecom", "cloud", "compute_center", "supercomputing", "platform_service")
HIGHER_LEVELS = ("national", "provincial", "municipal")
FINANCING_KINDS = ("paid_in_capital", "vc_investment", "loan", "bond", "listing")
RECOGNITION_LEVELS = (
    "national", "provincial", "municipal", "cns", "ccf_a", "demo", "advantage", "national_key_lab",
)
# The team's project categories (SPEC §3 leaves them to us); each names the
# kind of project a clause pays for. See README "Project categories".
PROJECT_CATEGORIES = (
    "key_technology",          # lingang.1, xuhui.5, hangzhou.2
    "open_source_platform",    # lingang.2a/2b
    "public_dataset",          # lingang.3.1a/3.1b
    "industry_dataset",        # lingang.3.2a/3.2b
    "ai_transformation",       # lingang.5.1
    "pilot_scenario",          # lingang.5.2
    "ai_procurement",          # lingang.5.3a/5.3b
    "smart_city",              # lingang.5.5
    "service_platform",        # lingang.6.1a/b/c
    "rd_institution",          # lingang.9.2
    "higher_level_funded",     # changning.7.1, jinan.4b
    "innovation_project",      # changning.7.2
    "open_scenario",           # changning.7.3
    "scenario_platform",       # hangzhou.11
    "data_exchange",           # hangzhou.6
    "trading_platform",        # hangzhou.7
    "application_scenario",    # jinan.3a/3b
    "big_science",             # jinan.4a
    "patent_insurance",        # lingang.10.2a
    "other",
)
EVENT_KINDS = (
    "forum", "competition", "exhibition_hosted", "exhibition_attended",
    "conference", "ecosystem", "summit", "other",
)


@dataclass(frozen=True)
class Col:
    name: str
    type: str
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

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def col(self, name: str) -> Col:
        return next(c for c in self.columns if c.name == name)


def _c(name, type_=STR, **kw) -> Col:
    return Col(name, type_, **kw)


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
        ),
        key=("applicant_id",),
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
        (APPLICANT, _c("clause_id"), _c("matter_id"), YEAR, _c("amount", MONEY)),
        key=("applicant_id", "clause_id", "matter_id", "year"),
    ),
}

LEDGER_ORDER = tuple(LEDGERS)


class InputError(Exception):
    """A file-level fault: the run cannot proceed. The message is one line."""


def find_file(ledgers_dir: Path, name: str) -> Path | None:
    """The ledger's file in DIR: NAME.csv or NAME.parquet (two is an error)."""
    found = [p for p in (ledgers_dir / f"{name}.csv", ledgers_dir / f"{name}.parquet") if p.is_file()]
    if len(found) > 1:
        raise InputError(f"{found[0]} and {found[1]}: two files for ledger {name}; keep one")
    return found[0] if found else None


def empty_raw(ledger: Ledger) -> pl.DataFrame:
    return pl.DataFrame(schema={ROW: pl.Int64, **{c: pl.String for c in ledger.column_names}})


def read_raw(path: Path, ledger: Ledger) -> pl.DataFrame:
    """Every column as text, plus ``_row``. Raises InputError on file faults."""
    try:
        if path.suffix == ".parquet":
            df = pl.read_parquet(path)
            df = df.with_columns(pl.all().cast(pl.String))
        else:
            df = pl.read_csv(path, infer_schema=False, encoding="utf8")
    except Exception as exc:  # noqa: BLE001 - any reader failure is a file fault
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: unreadable {ledger.name} file ({first})") from None
    df = df.rename({c: c.strip().lstrip("\ufeff") for c in df.columns})
    missing = [c.name for c in ledger.columns if c.required and c.name not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column {missing[0]} in ledger {ledger.name}")
    for c in ledger.columns:
        if c.name not in df.columns:
            df = df.with_columns(pl.lit(None, pl.String).alias(c.name))
    df = df.select(ledger.column_names).with_columns(
        pl.col(ledger.column_names).str.strip_chars().replace("", None)
    )
    return df.with_row_index(ROW, offset=2).with_columns(pl.col(ROW).cast(pl.Int64)).select(
        [ROW, *ledger.column_names]
    )


def check_ledgers_dir(ledgers_dir: Path) -> None:
    if not ledgers_dir.is_dir():
        raise InputError(f"{ledgers_dir}: ledgers directory not found")
    for name, ledger in LEDGERS.items():
        if not ledger.optional_file and find_file(ledgers_dir, name) is None:
            raise InputError(f"{ledgers_dir}/{name}.csv: required ledger {name} not found")


def read_ledgers(ledgers_dir: Path) -> tuple[dict[str, pl.DataFrame], dict[str, Path | None]]:
    """All ten ledgers as raw text frames, and the file each came from."""
    check_ledgers_dir(ledgers_dir)
    frames: dict[str, pl.DataFrame] = {}
    files: dict[str, Path | None] = {}
    for name, ledger in LEDGERS.items():
        path = find_file(ledgers_dir, name)
        if path is None:  # only optional ledgers can be absent: check_ledgers_dir saw to that
            frames[name], files[name] = empty_raw(ledger), None
            continue
        frames[name], files[name] = read_raw(path, ledger), path
    return frames, files
