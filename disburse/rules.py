"""The rules catalogue: one YAML file per clause, strictly loaded, compiled to tables.

Layout: ``rules/<region>/policy.yaml`` (the policy: source, window, provisions)
and ``rules/<region>/<clause_id>.yaml`` (one paying clause each). Loading
refuses unknown keys, bad dates, negative caps, rates outside 0..1 and
duplicate clause ids, naming the file and the key in one line. Sectors, sizes,
level words, ledgers and columns are checked against the ledger contract
(``disburse.ledgers``), and ``KINDS`` declares, for every kind, the keys it
requires and the keys it reads: a key the kind's formula would ignore is
refused, so a rule never loads only to be misread.

The engine never reads these models row by row: ``compile_tables`` turns the
catalogue into small polars tables (one row per clause, per tier, per level,
per ladder step, per installment) that the transforms join to the lines, and
``disburse.compiled`` hands them the rest, in fen and ppm: the transforms never
read these models.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from disburse.ledgers import BOOL, LEDGERS, MONEY, RECOGNITION_LEVELS, SECTORS, SIZES, STR
from disburse.money import fmt_ppm, rate_to_ppm, yuan_to_fen

# Amounts in yuan to the fen and shares to the millionth, as the engine holds them (integer fen and ppm,
# disburse.compiled): a rule file with a finer value is refused where it is loaded, naming the file.
Money = Annotated[Decimal, Field(decimal_places=2)]
Rate = Annotated[Decimal, Field(decimal_places=6)]

Kind = Literal[
    "rate",         # rate × base
    "progressive",  # tiers of rate over slices of the base
    "fixed",        # a fixed amount
    "level",        # a fixed amount by recognised level
    "per_unit",     # unit amount × recognised quantity
    "matching",     # rate × higher-level funding summed over a project's rows
    "ladder",       # award for the highest threshold a yearly figure has exceeded
    "first_reach",  # pays once, in the year a balance first reaches a threshold
    "growth",       # share of the increase of a yearly figure after sustained growth
    "approved",     # the recognised approved amount
    "in_kind",      # not money: an award in kind (hangzhou.10 compute), listed in in_kind.csv
]


class RuleError(Exception):
    """The catalogue cannot be loaded; the message is one line."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Words from the ledger contract: a rule naming anything else would match no row.
Sector = Literal[SECTORS]
Size = Literal[SIZES]
Level = Literal[RECOGNITION_LEVELS]
# The ledgers a clause can pay on: every ledger of the contract but the applicants and the
# engine's own history of payments.
PAYING_LEDGERS = tuple(n for n in LEDGERS if n not in ("applicants", "prior_payments"))
# Ledgers holding one yearly figure per applicant (rd, revenue): ladder and growth compare years.
YEARLY_LEDGERS = tuple(n for n in PAYING_LEDGERS if LEDGERS[n].key == ("applicant_id", "year"))
# Ledgers of yearly rows of a matter that is completed on a date (projects, accepted_on):
# matching sums a matter's rows up to the year of that date.
MATTER_YEAR_LEDGERS = tuple(n for n in PAYING_LEDGERS if len(LEDGERS[n].key) == 2 and LEDGERS[n].key[1] == "year"
                            and LEDGERS[n].key[0] != "applicant_id" and LEDGERS[n].date_column)
# Ledgers whose rows have an id of their own (a row, project or event): a recognised matter can be one.
MATTER_LEDGERS = tuple(n for n in PAYING_LEDGERS if n != "recognitions" and LEDGERS[n].key[0] != "applicant_id")


def money_columns(ledger: str) -> list[str]:
    return [c.name for c in LEDGERS[ledger].columns if c.type == MONEY]


class Base(Strict):
    ledger: Literal[PAYING_LEDGERS]
    amount: str | None = None  # the money column the clause pays on
    where: dict[str, list[str | bool]] = Field(default_factory=dict)
    # inclusive bounds (yuan) on a money column: {amount: [500000, 10000000]}
    between: dict[str, tuple[Money | None, Money | None]] = Field(default_factory=dict)
    per: Literal["row", "applicant_year"] = "row"
    # for a recognition-only clause whose matter_id is a ledger row's id (a project recognised under
    # changning.7.3 is the project of changning.7.2): the ledger, so keep-the-highest compares them
    matter_ledger: Literal[MATTER_LEDGERS] | None = None
    # the column naming who is paid, when it is not the row's applicant (jinan.9a pays the VC firm)
    payee: Literal["investor_id"] | None = None
    # conditions on the row's applicant when the payee is someone else (jinan.9a pays the VC firm for
    # investing in an early AI SME): its main revenue that year must not exceed this (yuan; no revenue
    # figure: not met), and its sector and size must be among these
    max_main_revenue: Money | None = Field(default=None, ge=0)
    investee_sector: list[Sector] | None = None
    investee_size: list[Size] | None = None
    # a second amount paid at the same rate, with a cap of its own (jinan.10 guarantee fees)
    second_amount: str | None = None
    second_cap: Money | None = Field(default=None, ge=0)
    # only rows dated on or after the row's applicant's registered_in_region_on count (lingang.8.1
    # 注册并实到: capital paid in before the firm registered in the region is not 实到 there)
    since_in_region: bool = False

    @model_validator(mode="after")
    def _columns_of_the_contract(self):
        led = LEDGERS[self.ledger]
        money = money_columns(self.ledger)
        for key, col in [("amount", self.amount), ("second_amount", self.second_amount),
                         *((f"between.{c}", c) for c in self.between)]:
            if col is not None and col not in money:
                raise ValueError(f"{key}: ledger {self.ledger} has no money column {col} (it has {', '.join(money) or 'none'})")
        if self.payee is not None and self.payee not in led.column_names:
            raise ValueError(f"payee: ledger {self.ledger} has no column {self.payee}")
        for col, values in self.where.items():
            if col not in led.column_names:
                raise ValueError(f"where.{col}: ledger {self.ledger} has no column {col}")
            c = led.col(col)
            if c.type == BOOL:
                wrong = [v for v in values if not isinstance(v, bool)]
            elif c.type == STR:
                wrong = [v for v in values if not isinstance(v, str) or (c.enum is not None and v not in c.enum)]
            else:
                raise ValueError(f"where.{col}: a {c.type} column cannot be matched by value (use between for money)")
            if wrong:
                allowed = ", ".join(c.enum) if c.enum else ("true, false" if c.type == BOOL else "text")
                raise ValueError(f"where.{col}: {wrong[0]!r} is not a value of {self.ledger}.{col} ({allowed})")
        if self.payee is not None and self.per != "row":
            raise ValueError("payee: only a line per row names its payee (per: row)")
        if self.second_cap is not None and self.second_amount is None:
            raise ValueError("second_cap: caps the second_amount, which is not given")
        if self.ledger == "recognitions":
            # a recognised matter is its own line: nothing to filter, sum or pay to someone else
            extra = sorted(self.model_fields_set - {"ledger", "amount", "matter_ledger"})
            if extra:
                raise ValueError(f"{extra[0]}: a recognitions base reads only amount and matter_ledger")
        elif "matter_ledger" in self.model_fields_set:
            raise ValueError("matter_ledger: only for a recognitions base (its matter ids are that ledger's rows)")
        return self


class Tier(Strict):
    up_to: Money | None = None  # upper bound of the slice (yuan); None: no bound
    rate: Rate = Field(ge=0, le=1)


class Step(Strict):
    threshold: Money = Field(ge=0)
    award: Money = Field(ge=0)


class Ladder(Strict):
    # the figure compared with the steps is the base's amount (a yearly figure of rd or revenue)
    steps: list[Step] = Field(min_length=1)
    # 超过 is strictly greater; 达到 / 以上 include the threshold.
    comparison: Literal["over", "at_least"]


class Growth(Strict):
    # the figure that grows is the base's amount (a yearly figure of rd or revenue)
    min_growth: Rate = Field(ge=0)        # each of the `years` years
    years: int = Field(ge=1)              # consecutive years of growth
    min_intensity: Rate = Field(ge=0)     # the figure / main revenue in the paying year
    min_increase: Money = Field(ge=0)     # the figure's increase over the year before


class InKind(Strict):
    unit: str                       # e.g. PFLOPS
    max_quantity: Decimal = Field(ge=0)
    duration: str                   # e.g. one year


class Period(Strict):
    first_year_only: bool = False         # only the first year it is paid
    consecutive_years: int | None = Field(default=None, ge=1)  # from the first paid year
    max_years: int | None = Field(default=None, ge=1)          # paid in at most N years
    min_gap_years: int | None = Field(default=None, ge=1)      # at least N years after the last payment
    scope: Literal["matter", "applicant"] = "matter"


class Eligibility(Strict):
    sector: list[Sector] | None = None
    size: list[Size] | None = None
    above_scale: bool | None = None
    credit_ok: bool | None = None
    max_age_years: int | None = Field(default=None, ge=0)            # since established_on
    max_years_since_move_in: int | None = Field(default=None, ge=0)  # since registered_in_region_on
    moved_in: bool | None = None  # 新迁入: registered in the region after it was established elsewhere
    # 新注册或新迁入: registered_in_region_on (founded there or moved in) falls inside the policy window
    new_in_region: bool | None = None


class Rule(Strict):
    clause_id: str
    title: str
    title_en: str | None = None
    article: str
    text: str
    kind: Kind
    base: Base | None = None
    recognition: bool = False
    # 经认定 over the whole sentence: the matter must be recognised under another clause of the
    # region (the construction half: lingang.2b under lingang.2a), in the paying year or before
    recognition_under: str | None = None
    # 经事前认定备案: the recognition must be dated on or before the line's own date (the event)
    recognition_in_advance: bool = False
    # 10%-30%: an approved_rate outside [low, high] rejects the recognition row (not paid, not capped)
    approved_rate_range: tuple[Rate, Rate] | None = None
    # what a recognition's approved amount bounds: each line (`line`, default: a year's subsidy) or the
    # matter's total under the clause over the years (`matter`: a project's support approved as a whole)
    approved_scope: Literal["line", "matter"] = "line"
    rate: Rate | None = Field(default=None, ge=0, le=1)
    max_rate: Rate | None = Field(default=None, ge=0, le=1)
    size_rates: dict[Size, Rate] | None = None  # replaces rate for these sizes
    tiers: list[Tier] | None = None
    levels: dict[Level, Money] | None = None
    ladder: Ladder | None = None
    growth: Growth | None = None
    amount: Money | None = Field(default=None, ge=0)
    unit_amount: Money | None = Field(default=None, ge=0)
    min_quantity: int | None = Field(default=None, ge=0)  # the recognised quantity must reach it (达…及以上)
    threshold: Money | None = Field(default=None, ge=0)
    item_cap: Money | None = Field(default=None, ge=0)
    level_caps: dict[Level, Money] | None = None
    level_cumulative_caps: dict[Level, Money] | None = None  # replaces cumulative_cap for these levels
    annual_cap: Money | None = Field(default=None, ge=0)
    annual_cap_group: str | None = None
    cumulative_cap: Money | None = Field(default=None, ge=0)
    cumulative_scope: Literal["matter", "applicant"] = "matter"
    one_off: bool = False
    one_off_scope: Literal["matter", "applicant"] = "matter"
    level_up: bool = False
    installments: list[Rate] | None = None
    in_kind: InKind | None = None
    period: Period | None = None
    paid_for: str = "matter"
    params: list[Literal["rate", "annual_cap", "item_cap", "amount"]] = Field(default_factory=list)
    eligibility: Eligibility = Field(default_factory=Eligibility)

    @property
    def region(self) -> str:
        return self.clause_id.split(".", 1)[0]

    @model_validator(mode="after")
    def _kind_reads_what_it_is_given(self):
        spec = KINDS[self.kind]
        for need in spec.requires:
            if not any(self._has(k) for k in need.split("|")):
                what = " or ".join(_shown(k) for k in need.split("|"))
                raise ValueError(f"{need.split('|')[0]}: required for kind {self.kind}" if "|" not in need
                                 else f"{need.split('|')[0]}: kind {self.kind} needs {what}")
        given = [k for k in _keys() if self._given(k)] + [f"params.{p}" for p in self.params]
        for key in given:
            read = key in EVERY_KIND or key in spec.reads or key.removeprefix("params.") in EVERY_KIND | spec.reads
            if not read:
                raise ValueError(f"{key}: kind {self.kind} does not read it (rules/README.md: what each kind reads)")
            if key in DEPENDS and not any(self._has(k) for k in DEPENDS[key].split("|")):
                raise ValueError(f"{key}: needs {' or '.join(_shown(k) for k in DEPENDS[key].split('|'))} (read only beside it)")
        for p in self.params:
            if self._given(p):
                raise ValueError(f"params.{p}: the rule gives its own {p}, so the administrator's is never read")
        for one, other in spec.exclusive:
            if any(self._has(k) for k in one.split("|")) and any(self._has(k) for k in other.split("|")):
                raise ValueError(f"{other.split('|')[0]}: kind {self.kind} reads it only without {one.split('|')[0]}")
        if self.base is not None and self.base.ledger not in spec.ledgers:
            raise ValueError(f"base.ledger: kind {self.kind} reads {', '.join(spec.ledgers)}, not {self.base.ledger}")
        for key in sorted(JOINED | BOUNDED):
            if self._given(key) and (self.base is None or self.base.ledger == "recognitions"):
                raise ValueError(f"{key}: read only for lines of a ledger base (a recognised matter is its own recognition)")
        if self.size_rates:
            for size, value in self.size_rates.items():
                if not 0 <= value <= 1:
                    raise ValueError(f"size_rates.{size}: a rate is a share from 0 to 1")
        for key in ("level_caps", "level_cumulative_caps"):
            if getattr(self, key) and self.levels and set(getattr(self, key)) - set(self.levels):
                raise ValueError(f"{key}: a level with a cap must also have an award in levels")
        if self.recognition_under is not None:
            if self.recognition:
                raise ValueError("recognition_under: a clause is recognised under itself (recognition) "
                                 "or under another, not both")
            if self.recognition_under.split(".", 1)[0] != self.region or self.recognition_under == self.clause_id:
                raise ValueError("recognition_under: must name another clause of the same region")
        if self.approved_rate_range is not None:
            low, high = self.approved_rate_range
            if not 0 <= low <= high <= 1 or not self.recognition:
                raise ValueError("approved_rate_range: [low, high] shares from 0 to 1, on a clause with recognition")
        if self.installments is not None and sum(self.installments) != 1:
            raise ValueError("installments: shares must add up to 1")
        if self.tiers is not None:
            bounds = [t.up_to for t in self.tiers]
            if bounds[-1] is not None or any(b is None for b in bounds[:-1]) or bounds[:-1] != sorted(bounds[:-1]):
                raise ValueError("tiers: ascending up_to bounds, the last tier without one")
        return self

    def _given(self, key: str) -> bool:
        """The key is written in the rule's file (base.x: in its base; params.x: among its parameters)."""
        if key.startswith("params."):
            return key.removeprefix("params.") in self.params
        if key.startswith("base."):
            return self.base is not None and key.removeprefix("base.") in self.base.model_fields_set
        return key in self.model_fields_set

    def _has(self, key: str) -> bool:
        """The key is written with a value that asks for something (not empty, not false)."""
        if not self._given(key) or key.startswith("params."):
            return self._given(key)
        value = getattr(self.base, key.removeprefix("base.")) if key.startswith("base.") else getattr(self, key)
        return not (value is None or value is False or (isinstance(value, (list, dict)) and not value))


def _shown(key: str) -> str:
    if key.startswith("params."):
        return f"params: [{key.removeprefix('params.')}]"
    return f"{key}: true" if key == "recognition" else key


def _keys() -> list[str]:
    """Every key a rule file can give, base keys as base.x."""
    return [*Rule.model_fields, *(f"base.{k}" for k in Base.model_fields)]


# --- what each kind requires and reads -------------------------------------------------------
#
# The one place that says which keys the engine reads, per kind. A key written in a rule file
# that its kind does not read (a revenue base under growth's fixed R&D, `where` under a ladder)
# stops loading, naming the file and the key. A new key goes into EVERY_KIND when every kind
# reads it, else into the `reads` of the kinds whose extraction or formula reads it (and into
# DEPENDS if it means something only beside another key); tests/test_code_health.py fails for
# a schema key declared nowhere, or declared but read nowhere in the engine.
# Keys are written as in the file: `base.where` is `where` inside `base`; `params.rate` is the
# administrator parameter `rate`; "a|b" is one of them.

# Kinds by how their amount arises (the groups the engine branches on; defined here, once).
RATED_KINDS = ("rate", "matching", "growth")            # a rate times a base
FROM_HISTORY_KINDS = ("ladder", "first_reach", "growth")  # an amount worked out from several years' figures

# Keys every kind reads: the clause's identity and words, eligibility, caps, periods, installments.
EVERY_KIND = frozenset({
    "clause_id", "title", "title_en", "article", "text", "kind", "eligibility", "params", "paid_for",
    "item_cap", "annual_cap", "annual_cap_group", "cumulative_cap", "cumulative_scope",
    "one_off", "one_off_scope", "installments", "period",
})
# Keys for a person, never read by the engine: glosses and quoted text (tests check the quotes
# against the policy). tests/test_code_health.py lets these, and only these, go unread.
WORDS_ONLY = frozenset({"title_en", "text", "source", "provisions.keep_highest", "non_monetary.text"})
# A key that means something only beside another (an approved rate needs a recognition to carry it).
DEPENDS = {
    "approved_rate_range": "recognition",
    "approved_scope": "recognition",
    "recognition_in_advance": "recognition|recognition_under",
    "level_caps": "recognition",
    "level_cumulative_caps": "recognition",
    "min_quantity": "recognition",
    "cumulative_scope": "cumulative_cap|level_cumulative_caps",
    "one_off_scope": "one_off",
}
# Read by every extraction that joins the recognition of the line's matter (all but ladder, growth).
RECOGNISED = frozenset({"recognition", "level_caps", "level_cumulative_caps", "min_quantity"})
# Read where a line of a ledger base is joined to a recognition (candidates._join_recognition): not by
# a recognitions base or a kind without one (level), nor by ladder and growth.
JOINED = frozenset({"recognition_under", "recognition_in_advance"})
# Read where a recognition's approved amount bounds a formula (compute.approved_left): the kinds above, less
# those whose amount is the approved amount itself (approved) or no money (in_kind); lines of a ledger base.
BOUNDED = frozenset({"approved_scope"})
# Read by the extraction of ledger rows (candidates._ledger_base); a recognitions base reads only
# ledger, amount and matter_ledger (Base checks that).
LEDGER_BASE = frozenset({
    "base", "base.ledger", "base.where", "base.between", "base.per", "base.payee",
    "base.max_main_revenue", "base.investee_sector", "base.investee_size", "base.matter_ledger",
})
RATED = frozenset({"rate", "max_rate", "size_rates", "approved_rate_range"})


@dataclass(frozen=True)
class KindKeys:
    requires: tuple[str, ...]       # each a key, or "a|b": one of them
    reads: frozenset[str]           # the keys it reads besides EVERY_KIND (its requirements among them)
    ledgers: tuple[str, ...] = PAYING_LEDGERS  # the base ledgers its extraction reads
    exclusive: tuple[tuple[str, str], ...] = ()  # (a, b): b is not read when a is given


KINDS: dict[str, KindKeys] = {
    "rate": KindKeys(
        ("base", "base.amount", "rate|params.rate|max_rate|recognition"),
        LEDGER_BASE | RATED | RECOGNISED | JOINED | BOUNDED | {"base.amount", "base.second_amount", "base.second_cap"}),
    "progressive": KindKeys(("base", "base.amount", "tiers"), LEDGER_BASE | RECOGNISED | JOINED | BOUNDED | {"base.amount", "tiers"}),
    "fixed": KindKeys(("amount|params.amount",), LEDGER_BASE | RECOGNISED | JOINED | BOUNDED | {"amount"}),
    "level": KindKeys(("recognition", "levels"),
                      RECOGNISED | {"base", "base.ledger", "base.matter_ledger", "levels", "level_up"},
                      ledgers=("recognitions",)),
    "per_unit": KindKeys(("recognition", "unit_amount"), LEDGER_BASE | RECOGNISED | JOINED | BOUNDED | {"unit_amount"}),
    "matching": KindKeys(
        ("base", "base.amount", "rate|params.rate"),
        RATED | RECOGNISED | JOINED | BOUNDED | {"base", "base.ledger", "base.amount", "base.where", "base.between"},
        ledgers=MATTER_YEAR_LEDGERS),
    "ladder": KindKeys(("base", "base.amount", "ladder"), frozenset({"base", "base.ledger", "base.amount", "ladder", "level_up"}),
                       ledgers=YEARLY_LEDGERS),
    "first_reach": KindKeys(
        ("base", "base.amount", "threshold", "rate|amount|params.rate|params.amount"),
        RATED | RECOGNISED | JOINED | BOUNDED | {"base", "base.ledger", "base.amount", "base.where", "base.between",
                                                 "base.since_in_region", "threshold", "amount"},
        ledgers=tuple(n for n in PAYING_LEDGERS if n != "recognitions"),
        exclusive=(("rate|params.rate", "amount|params.amount"),)),
    "growth": KindKeys(("base", "base.amount", "growth", "rate|params.rate"),
                       frozenset({"base", "base.ledger", "base.amount", "growth", "rate", "size_rates"}),
                       ledgers=YEARLY_LEDGERS),
    "approved": KindKeys(("recognition",), LEDGER_BASE | RECOGNISED | JOINED),
    "in_kind": KindKeys(("recognition", "in_kind"), LEDGER_BASE | RECOGNISED | JOINED | {"in_kind"}),
}
assert set(KINDS) == set(Kind.__args__), "every kind declares its keys"


def kinds_markdown() -> str:
    """KINDS as the Markdown table rules/README.md carries (a test keeps the two equal)."""
    shown = lambda key: " or ".join(f"`{_shown(k)}`" for k in key.split("|"))  # noqa: E731
    rows = ["| kind | requires | also reads | base ledgers |", "| --- | --- | --- | --- |"]
    for kind, spec in KINDS.items():
        needed = {k for need in spec.requires for k in need.split("|")}
        others = sorted(spec.reads - needed, key=lambda k: (k.startswith("base."), k))
        ledgers = "any" if spec.ledgers == PAYING_LEDGERS else ", ".join(spec.ledgers)
        rows.append(f"| `{kind}` | {', '.join(shown(n) for n in spec.requires) or '—'} | "
                    f"{', '.join(f'`{k}`' for k in others) or '—'} | {ledgers} |")
    every = ", ".join(f"`{k}`" for k in sorted(EVERY_KIND))
    depends = "; ".join(f"`{k}` only with {shown(v)}" for k, v in DEPENDS.items())
    return ("\n".join(rows) + f"\n\nEvery kind also reads {every}.\nA key is read only beside another: {depends}; "
            "in `base`, `payee` only with `per: row`, `second_cap` only with `second_amount`, `matter_ledger` only "
            "in a `recognitions` base, which reads nothing but `ledger`, `amount` and `matter_ledger`. "
            f"{', '.join(f'`{k}`' for k in sorted(JOINED | BOUNDED))} only for lines of a ledger base (not `recognitions`). "
            "An administrator parameter (`params`) is read only for a key the rule does not give itself.\n")


class PolicyProvisions(Strict):
    keep_highest: str | None = None         # the article that says 就高不重复 (quoted), if the policy has one
    clawback_on_relocation_years: int | None = Field(default=None, ge=1)
    clawback_text: str | None = None
    fraud_text: str | None = None


class NonMonetary(Strict):
    article: str
    title: str
    text: str | None = None


class Policy(Strict):
    region: str
    source: str
    title: str
    region_zh: str | None = None            # the region's Chinese name: a ledger's region may be either
    valid_from: dt.date | None = None       # None: an administrator parameter (policies.<region>.effective_from)
    valid_to: dt.date | None = None
    valid_years: int | None = Field(default=None, ge=1)  # with a parameter start: window length
    eligibility: Eligibility = Field(default_factory=Eligibility)
    provisions: PolicyProvisions
    # the clause ids CLAUSES.md lists for this policy: coverage shows each, encoded or not
    paying_clauses: list[str] = Field(default_factory=list)
    non_monetary: list[NonMonetary] = Field(default_factory=list)

    @model_validator(mode="after")
    def _window(self):
        if self.valid_from is not None and (self.valid_to is None or self.valid_to < self.valid_from):
            raise ValueError("valid_to: must be given and not before valid_from")
        if self.valid_from is None and self.valid_years is None:
            raise ValueError("valid_years: needed when valid_from is an administrator parameter")
        if self.valid_from is not None and self.valid_years is not None:
            raise ValueError("valid_years: only read when valid_from is an administrator parameter (valid_to ends this window)")
        if self.valid_from is None and self.valid_to is not None:
            raise ValueError("valid_to: a window starting on an administrator parameter ends after valid_years")
        return self


class Catalogue(Strict):
    policies: dict[str, Policy]
    rules: dict[str, Rule]
    fingerprint: str

    @property
    def regions(self) -> list[str]:
        return sorted(self.policies)

    def rules_of(self, region: str) -> list[Rule]:
        return [r for r in self.rules.values() if r.region == region]


def _one_line(err: ValidationError) -> str:
    e = err.errors()[0]
    loc = [str(p) for p in e["loc"]]
    if e["type"] == "value_error":  # the validators' own messages start with the key, relative to the model
        return ".".join([*loc, e["msg"].removeprefix("Value error, ")])
    return f"{'.'.join(loc) or '(file)'}: {e['msg']}"


class TextDateLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser where installed: ~10x faster
    """YAML with dates left as text, so a bad date is reported by the schema with its key."""


TextDateLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _load_yaml(path: Path) -> dict:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=TextDateLoader)
    except yaml.YAMLError as exc:
        raise RuleError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise RuleError(f"{path}: expected a mapping of keys")
    return data


def region_names(catalogue: Catalogue) -> dict[str, str]:
    """Region id -> its Chinese name (policy.yaml ``region_zh``), for the regions that give one."""
    return {r: p.region_zh for r, p in sorted(catalogue.policies.items()) if p.region_zh}


def load_catalogue(rules_dir: Path) -> Catalogue:
    if not rules_dir.is_dir():
        raise RuleError(f"{rules_dir}: rules directory not found")
    policies: dict[str, Policy] = {}
    rules: dict[str, Rule] = {}
    digest = hashlib.sha256()
    for region_dir in sorted(p for p in rules_dir.iterdir() if p.is_dir()):
        policy_path = region_dir / "policy.yaml"
        if not policy_path.is_file():
            raise RuleError(f"{policy_path}: every region needs a policy.yaml")
        for path in sorted(region_dir.glob("*.yaml")):
            digest.update(path.relative_to(rules_dir).as_posix().encode() + b"\0" + path.read_bytes())
            data = _load_yaml(path)
            try:
                if path.name == "policy.yaml":
                    policy = Policy.model_validate(data)
                    if policy.region != region_dir.name:
                        raise RuleError(f"{path}: region: {policy.region} is not its folder {region_dir.name}")
                    policies[policy.region] = policy
                    continue
                rule = Rule.model_validate(data)
            except ValidationError as exc:
                raise RuleError(f"{path}: {_one_line(exc)}") from None
            if rule.region != region_dir.name or path.stem != rule.clause_id:
                raise RuleError(f"{path}: clause_id: {rule.clause_id} must match its folder and file name")
            if rule.clause_id in rules:
                raise RuleError(f"{path}: clause_id: duplicate clause id {rule.clause_id}")
            rules[rule.clause_id] = rule
    for cid, rule in sorted(rules.items()):
        if rule.recognition_under is not None and rule.recognition_under not in rules:
            raise RuleError(f"{rules_dir / rule.region / (cid + '.yaml')}: recognition_under: "
                            f"no clause {rule.recognition_under} in the rules")
    if not policies:
        raise RuleError(f"{rules_dir}: no policies found")
    return Catalogue(policies=policies, rules=rules, fingerprint=digest.hexdigest())


def natural_key(clause_id: str) -> tuple:
    """lingang.9.2 sorts before lingang.10.1a."""
    return tuple(int(p) if p.isdigit() else p for p in re.findall(r"\d+|[a-z_]+", clause_id))


def _fen(v) -> int | None:
    return None if v is None else yuan_to_fen(v)


def _ppm(v) -> int | None:
    return None if v is None else rate_to_ppm(v)


S, I, B = pl.String, pl.Int64, pl.Boolean
CLAUSE_SCHEMA = {
    "clause_id": S, "region": S, "clause_order": I, "kind": S, "title": S, "article": S,
    "rate_ppm": I, "max_rate_ppm": I, "fixed_fen": I, "unit_fen": I, "item_cap_fen": I, "annual_cap_fen": I,
    "annual_group": S, "cumulative_cap_fen": I, "cumulative_scope": S, "one_off": B, "one_off_scope": S,
    "level_up": B, "installments": I, "paid_for": S, "recognition": B,
    "recognition_in_advance": B, "approved_scope": S, "first_year_only": B,
    "consecutive_years": I, "max_years": I, "min_gap_years": I, "min_quantity": I, "second_cap_fen": I, "period_scope": S,
    "in_kind_text": S, "in_kind_unit": S, "in_kind_max": I,
    "elig_sector": pl.List(S), "elig_size": pl.List(S), "elig_above_scale": B, "elig_credit_ok": B,
    "elig_max_age_years": I, "elig_max_years_since_move_in": I, "elig_moved_in": B, "elig_new_in_region": B,
    "tiers_text": S,
}


def compile_tables(cat: Catalogue) -> dict[str, pl.DataFrame]:
    """The catalogue as tables keyed by clause_id (amounts in fen, rates in ppm)."""
    order = {cid: i for i, cid in enumerate(sorted(cat.rules, key=natural_key))}
    clauses, tiers, levels, steps, shares, size_rates = [], [], [], [], [], []
    for r in cat.rules.values():
        pol = cat.policies[r.region].eligibility
        elig = {f: getattr(r.eligibility, f) if getattr(r.eligibility, f) is not None else getattr(pol, f)
                for f in Eligibility.model_fields}
        clauses.append({
            "clause_id": r.clause_id, "region": r.region, "clause_order": order[r.clause_id],
            "kind": r.kind, "title": r.title, "article": r.article,
            "rate_ppm": _ppm(r.rate), "max_rate_ppm": _ppm(r.max_rate),
            "fixed_fen": _fen(r.amount), "unit_fen": _fen(r.unit_amount),
            "item_cap_fen": _fen(r.item_cap), "annual_cap_fen": _fen(r.annual_cap),
            "annual_group": r.annual_cap_group or r.clause_id,
            "cumulative_cap_fen": _fen(r.cumulative_cap), "cumulative_scope": r.cumulative_scope,
            "one_off": r.one_off, "one_off_scope": r.one_off_scope, "level_up": r.level_up,
            "installments": len(r.installments) if r.installments else 1,
            "paid_for": r.paid_for, "recognition": r.recognition,
            "recognition_in_advance": r.recognition_in_advance, "approved_scope": r.approved_scope,
            "first_year_only": bool(r.period and r.period.first_year_only),
            "consecutive_years": r.period.consecutive_years if r.period else None,
            "max_years": r.period.max_years if r.period else None,
            "min_gap_years": r.period.min_gap_years if r.period else None,
            "min_quantity": r.min_quantity,
            "second_cap_fen": _fen(r.base.second_cap) if r.base else None,
            "in_kind_text": (f"不超过 {r.in_kind.max_quantity} {r.in_kind.unit}，期限 {r.in_kind.duration}"
                             if r.in_kind else None),
            "in_kind_unit": r.in_kind.unit if r.in_kind else None,
            "in_kind_max": int(r.in_kind.max_quantity) if r.in_kind else None,
            "period_scope": r.period.scope if r.period else "matter",
            **{f"elig_{f}": v for f, v in elig.items()},
            "tiers_text": "，".join(
                f"{t.up_to:,.2f} 以内 {fmt_ppm(_ppm(t.rate))}" if t.up_to is not None else f"超过部分 {fmt_ppm(_ppm(t.rate))}"
                for t in r.tiers) if r.tiers else None,
        })
        if r.tiers:
            lower = 0
            for t in r.tiers:
                upper = _fen(t.up_to)
                tiers.append({"clause_id": r.clause_id, "lower_fen": lower, "upper_fen": upper, "rate_ppm": _ppm(t.rate)})
                lower = upper
        awards = r.levels or dict.fromkeys({**(r.level_caps or {}), **(r.level_cumulative_caps or {})})
        ranked = sorted(awards.items(), key=lambda kv: (kv[1] is None, kv[1] or 0, kv[0]))
        for rank, (lvl, amt) in enumerate(ranked):
            levels.append({"clause_id": r.clause_id, "level": lvl, "level_rank": rank, "award_fen": _fen(amt),
                           "level_cap_fen": _fen((r.level_caps or {}).get(lvl)),
                           "level_cumulative_cap_fen": _fen((r.level_cumulative_caps or {}).get(lvl))})
        for size, rate in (r.size_rates or {}).items():
            size_rates.append({"clause_id": r.clause_id, "size": size, "size_rate_ppm": _ppm(rate)})
        for rank, s in enumerate(r.ladder.steps if r.ladder else []):
            steps.append({"clause_id": r.clause_id, "step_rank": rank, "threshold_fen": _fen(s.threshold),
                          "award_fen": _fen(s.award)})
        cum = 0
        for k, share in enumerate(r.installments or [1], start=1):
            shares.append({"clause_id": r.clause_id, "installment": k, "prev_cum_ppm": cum,
                           "cum_ppm": cum + _ppm(share)})
            cum += _ppm(share)
    schemas = {
        "tiers": {"clause_id": pl.String, "lower_fen": pl.Int64, "upper_fen": pl.Int64, "rate_ppm": pl.Int64},
        "levels": {"clause_id": pl.String, "level": pl.String, "level_rank": pl.Int64,
                   "award_fen": pl.Int64, "level_cap_fen": pl.Int64, "level_cumulative_cap_fen": pl.Int64},
        "steps": {"clause_id": pl.String, "step_rank": pl.Int64, "threshold_fen": pl.Int64, "award_fen": pl.Int64},
        "shares": {"clause_id": pl.String, "installment": pl.Int64, "prev_cum_ppm": pl.Int64, "cum_ppm": pl.Int64},
        "size_rates": {"clause_id": pl.String, "size": pl.String, "size_rate_ppm": pl.Int64},
    }
    return {
        "clauses": pl.DataFrame(clauses, schema=CLAUSE_SCHEMA),
        "tiers": pl.DataFrame(tiers, schema=schemas["tiers"]),
        "levels": pl.DataFrame(levels, schema=schemas["levels"]),
        "steps": pl.DataFrame(steps, schema=schemas["steps"]),
        "shares": pl.DataFrame(shares, schema=schemas["shares"]),
        "size_rates": pl.DataFrame(size_rates, schema=schemas["size_rates"]),
    }
