"""The catalogue and the administrator parameters compiled once per run: what the transforms read.

``compile_catalogue(cat, params)`` runs once, where the job loads the rules and
the parameters, and hands the transforms plain frozen values:

- every amount in integer fen and every rate in integer millionths (ppm); a
  yuan amount or a share from a rule file or the params file is converted here
  and nowhere below;
- per region (``Region``): its clauses in the order the rules were loaded, each
  a ``Clause`` (the keys its extraction reads), the clause tables of
  ``disburse.rules.compile_tables``, the policy window (the rule's dates, or the
  administrator's ``effective_from`` and ``valid_years``; None where that start is
  missing), the administrator's per-clause values (``params``: one row per clause and
  date a dated value of it changes on, see ``PARAM_SCHEMA``),
  the fund ceilings per year, ``carry_budget_shortfall``, which clauses are
  suspended, and the policy's clawback provisions and words;
- which administrator parameters are missing: found here, from the catalogue and
  the params file, with the one-line message that names them. Whether a run
  needs one is a fact of its ledgers (SPEC §2: a parameter "that a line of this
  run needs"): the transforms stop the run with ``Region.missing_parameter``
  where a candidate of a region without its start date, or a live line of a
  clause without its parameter (or dated before its first dated value), exists.

The transforms import nothing of ``disburse.rules``' models or of
``disburse.params`` (tests/test_code_health.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import polars as pl

from disburse.money import rate_to_ppm, yuan_to_fen
from disburse.params import ClauseParams, ParamError, Params, change_dates, in_force, policy_windows
from disburse.rules import FROM_HISTORY_KINDS, RATED_KINDS, Catalogue, Rule, compile_tables
from disburse.tables import CLAUSE_TEXT_SCHEMA

__all__ = ["FROM_HISTORY_KINDS", "RATED_KINDS", "PARAM_SCHEMA", "Clause", "ClauseBase", "Compiled", "Growth",
           "Ladder", "Region", "compile_catalogue"]

# The administrator's values per clause of a region, in fen and ppm: one row per clause and date its
# values change on (``p_from``; ``ALWAYS`` for the first row, so every line finds a row), each value the
# one in force from that date on, with the date it took effect (``p_rate_from``, ...; null for a plain
# value, in force on every date). ``p_missing``: the parameters the clause names (``params:`` in its rule
# file) that have no value from ``p_from`` on: not given, or dated later. A line takes the row of its
# clause with the latest ``p_from`` on or before its ``line_date``.
PARAMETERS = {"rate": "p_rate_ppm", "annual_cap": "p_annual_cap_fen", "item_cap": "p_item_cap_fen",
              "amount": "p_amount_fen"}
PARAM_SCHEMA = {"clause_id": pl.String, "p_from": pl.Date,
                **{k: t for name, col in PARAMETERS.items() for k, t in ((col, pl.Int64), (f"p_{name}_from", pl.Date))},
                "p_missing": pl.List(pl.String)}
ALWAYS = dt.date(1, 1, 1)  # p_from of the values in force before any dated one changes


def _fen(v) -> int | None:
    return None if v is None else yuan_to_fen(v)


def _ppm(v) -> int | None:
    return None if v is None else rate_to_ppm(v)


@dataclass(frozen=True)
class ClauseBase:
    """Where a clause's lines come from: a ledger, its money column, the rows it keeps."""
    ledger: str
    amount: str | None
    where: dict[str, list[str | bool]]
    between_fen: dict[str, tuple[int | None, int | None]]  # inclusive bounds on a money column
    # the where and between conditions as a year's summed line names them in its supersede key
    # (the bounds as the rule file writes them, in yuan)
    where_text: str
    per: str
    matter_ledger: str | None
    payee: str | None
    max_main_revenue_fen: int | None
    investee_sector: tuple[str, ...] | None
    investee_size: tuple[str, ...] | None
    second_amount: str | None
    second_cap_fen: int | None
    since_in_region: bool


@dataclass(frozen=True)
class Ladder:
    comparison: str  # "over" (超过) or "at_least" (达到 / 以上); the steps are the "steps" table


@dataclass(frozen=True)
class Growth:
    min_growth_ppm: int
    years: int
    min_intensity_ppm: int
    min_increase_fen: int
    # the three figures in words, as the rule file writes them (20%, 3%, 1,000,000)
    min_growth_text: str
    min_intensity_text: str
    min_increase_text: str


@dataclass(frozen=True)
class Clause:
    """A paying clause as its extraction reads it."""
    clause_id: str
    region: str
    kind: str
    base: ClauseBase | None
    recognition: bool
    recognition_under: str | None
    recognition_in_advance: bool
    threshold_fen: int | None
    ladder: Ladder | None
    growth: Growth | None
    suspended: bool               # params: no new line this year; installments already owed are paid
    missing: tuple[str, ...]      # administrator parameters it names that the params file does not give


@dataclass(frozen=True)
class Region:
    name: str
    title: str
    region_zh: str                         # its Chinese name (policy.yaml region_zh; the id where it gives none)
    window: tuple[dt.date, dt.date] | None  # None: its start is a missing administrator parameter
    clauses: tuple[Clause, ...]
    tables: dict[str, pl.DataFrame]        # compile_tables' tables, "clauses" only the region's
    params: pl.DataFrame                   # PARAM_SCHEMA, one row per clause of the region
    texts: pl.DataFrame                    # CLAUSE_TEXT_SCHEMA: each clause's article quoted, for the audit
    budgets: dict[int, dict[str, int]]     # year -> fund ceilings in fen, clause ids first (sorted), the region last
    carry_budget_shortfall: bool
    keep_highest: str | None
    clawback_on_relocation_years: int | None
    clawback_text: str | None
    fraud_text: str | None
    messages: dict[str, str]               # "effective_from" or "<clause_id>.<parameter>" -> why the run stops
    # "<clause_id>.<parameter>" -> the first date of a dated parameter the clause names: before it, none
    first_dated: dict[str, dt.date] = dataclasses.field(default_factory=dict)

    def in_force_from(self, clause_id: str) -> dt.date | None:
        """The first date on which every parameter the clause names has a value (None: every date)."""
        dates = [d for key, d in self.first_dated.items() if key.rsplit(".", 1)[0] == clause_id]
        return max(dates) if dates else None

    def missing_parameter(self, key: str, on: dt.date | None = None) -> ParamError:
        """The error that stops the run where a line (dated ON) needs the missing parameter KEY."""
        if key in self.messages:
            return ParamError(self.messages[key])
        clause_id, name = key.rsplit(".", 1)
        return ParamError(f"clause {clause_id}: administrator parameter {name} has no value in force on {on} "
                          f"(its first value is from {self.first_dated[key]}; give clauses.{key} a value from "
                          f"{on} or earlier in the params file)")


@dataclass(frozen=True)
class Compiled:
    tables: dict[str, pl.DataFrame]  # compile_tables' tables, every region
    regions: dict[str, Region]

    def clause(self, clause_id: str) -> Clause:
        return next(c for r in self.regions.values() for c in r.clauses if c.clause_id == clause_id)


def _base(r: Rule) -> ClauseBase | None:
    b = r.base
    if b is None:
        return None
    where_text = ",".join([*(f"{k}={'|'.join(map(str, v))}" for k, v in sorted(b.where.items())),
                           *(f"{k}~{lo}..{hi}" for k, (lo, hi) in sorted(b.between.items()))])
    return ClauseBase(
        ledger=b.ledger, amount=b.amount, where=dict(b.where),
        between_fen={col: (_fen(lo), _fen(hi)) for col, (lo, hi) in b.between.items()}, where_text=where_text,
        per=b.per, matter_ledger=b.matter_ledger, payee=b.payee, max_main_revenue_fen=_fen(b.max_main_revenue),
        investee_sector=None if b.investee_sector is None else tuple(b.investee_sector),
        investee_size=None if b.investee_size is None else tuple(b.investee_size),
        second_amount=b.second_amount, second_cap_fen=_fen(b.second_cap), since_in_region=b.since_in_region,
    )


def _clause(r: Rule, params: Params) -> Clause:
    given = params.clauses.get(r.clause_id, ClauseParams())
    g = r.growth
    return Clause(
        clause_id=r.clause_id, region=r.region, kind=r.kind, base=_base(r), recognition=r.recognition,
        recognition_under=r.recognition_under, recognition_in_advance=r.recognition_in_advance,
        threshold_fen=_fen(r.threshold),
        ladder=Ladder(r.ladder.comparison) if r.ladder else None,
        growth=None if g is None else Growth(
            rate_to_ppm(g.min_growth), g.years, rate_to_ppm(g.min_intensity), yuan_to_fen(g.min_increase),
            f"{g.min_growth:%}", f"{g.min_intensity:%}", f"{g.min_increase:,}"),
        suspended=params.suspended(r.clause_id),
        missing=tuple(p for p in r.params if getattr(given, p) is None),
    )


def _params_table(clauses: list[Clause], params: Params, named: dict[str, tuple[str, ...]]) -> pl.DataFrame:
    """PARAM_SCHEMA: per clause, a row for ALWAYS and one per date a dated value of it changes on."""
    rows = []
    for c in clauses:
        p = params.clauses.get(c.clause_id, ClauseParams())
        dates = sorted({ALWAYS, *(d for name in PARAMETERS for d in change_dates(getattr(p, name)))})
        for on in dates:
            row, missing = {"clause_id": c.clause_id, "p_from": on}, []
            for name, col in PARAMETERS.items():
                value, since = in_force(getattr(p, name), on)
                row[col] = _ppm(value) if name == "rate" else _fen(value)
                row[f"p_{name}_from"] = since
                if value is None and name in named[c.clause_id]:
                    missing.append(name)
            rows.append({**row, "p_missing": missing})
    return pl.DataFrame(rows, schema=PARAM_SCHEMA)


def _first_dated(rules: list[Rule], params: Params) -> dict[str, dt.date]:
    """'<clause_id>.<parameter>' -> the first date of each dated parameter a clause names."""
    out = {}
    for r in rules:
        p = params.clauses.get(r.clause_id, ClauseParams())
        for name in r.params:
            if dates := change_dates(getattr(p, name)):
                out[f"{r.clause_id}.{name}"] = dates[0]
    return out


def _messages(region: str, clauses: list[Clause]) -> dict[str, str]:
    out = {"effective_from": f"policy {region}: administrator parameter effective_from is missing "
                             f"(set policies.{region}.effective_from in the params file)"}
    for c in clauses:
        for name in c.missing:
            out[f"{c.clause_id}.{name}"] = (f"clause {c.clause_id}: administrator parameter {name} is missing "
                                            f"(set clauses.{c.clause_id}.{name} in the params file)")
    return out


def compile_catalogue(cat: Catalogue, params: Params) -> Compiled:
    """The catalogue and the parameters for the transforms: once per run (SPEC §5.9 values resolved)."""
    tables = compile_tables(cat)
    windows = policy_windows(cat, params)
    years = sorted({y for scopes in params.budgets.values() for y in scopes})
    regions = {}
    for name, pol in cat.policies.items():
        rules = cat.rules_of(name)
        clauses = [_clause(r, params) for r in rules]
        budgets = {y: b for y in years if (b := params.budgets_for(name, y))}
        regions[name] = Region(
            name=name, title=pol.title, region_zh=pol.region_zh or name, window=windows[name], clauses=tuple(clauses),
            tables={**tables, "clauses": tables["clauses"].filter(pl.col("region") == name)},
            params=_params_table(clauses, params, {r.clause_id: tuple(r.params) for r in rules}),
            texts=pl.DataFrame([(r.clause_id, r.title, r.article, r.text) for r in rules],
                               schema=CLAUSE_TEXT_SCHEMA, orient="row"),
            budgets=budgets, carry_budget_shortfall=params.carry_budget_shortfall,
            keep_highest=pol.provisions.keep_highest,
            clawback_on_relocation_years=pol.provisions.clawback_on_relocation_years,
            clawback_text=pol.provisions.clawback_text, fraud_text=pol.provisions.fraud_text,
            messages=_messages(name, clauses), first_dated=_first_dated(rules, params),
        )
    return Compiled(tables=tables, regions=regions)
