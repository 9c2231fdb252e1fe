"""Administrator parameters (SPEC §5.9): values the policy text leaves open.

    policies: {jinan: {effective_from: 2021-03-01}}
    clauses:  {changning.6.1c: {rate: 0.5, annual_cap: 800000}}
    budgets:  {changning: {2025: 30000000}, changning.8.2: {2025: 5000000}}   # fund ceilings (yuan)
    carry_budget_shortfall: false

A budget names a region or a clause and, per year, the most it may pay
(``transforms.budget``: every line of this year is cut by one ratio when the
year's payable exceeds it). ``carry_budget_shortfall`` makes what a cut took
owed the next year, paid first out of that year's budget.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from disburse.money import yuan_to_fen
from disburse.rules import Catalogue, TextDateLoader


class ParamError(Exception):
    """Parameters are unreadable or a needed one is missing; one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicyParams(_Strict):
    effective_from: dt.date | None = None


class ClauseParams(_Strict):
    rate: Decimal | None = Field(default=None, ge=0, le=1, decimal_places=6)
    annual_cap: Decimal | None = Field(default=None, ge=0, decimal_places=2)
    item_cap: Decimal | None = Field(default=None, ge=0, decimal_places=2)
    amount: Decimal | None = Field(default=None, ge=0, decimal_places=2)
    # a suspended clause pays no new line this year; installments already owed are still paid
    # (what `disburse simulate --overlay` writes for a clause switched off)
    suspended: bool = False


class Params(_Strict):
    policies: dict[str, PolicyParams] = Field(default_factory=dict)
    clauses: dict[str, ClauseParams] = Field(default_factory=dict)
    # fund ceilings (资金池 / 预算额度), yuan, by region or clause id and year
    budgets: dict[str, dict[int, Annotated[Decimal, Field(ge=0, decimal_places=2)]]] = Field(default_factory=dict)
    carry_budget_shortfall: bool = False
    fingerprint: str = "none"

    def suspended(self, clause_id: str) -> bool:
        p = self.clauses.get(clause_id)
        return p is not None and p.suspended

    def budgets_for(self, region: str, year: int) -> dict[str, int]:
        """The ceilings of REGION's year in fen: clause ids first (sorted), the region last."""
        mine = {scope: yuan_to_fen(years[year]) for scope, years in self.budgets.items()
                if year in years and scope.split(".", 1)[0] == region}
        return dict(sorted(mine.items(), key=lambda kv: (kv[0] == region, kv[0])))


def load_params(path: Path | None, cat: Catalogue) -> Params:
    if path is None:
        return Params()
    if not path.is_file():
        raise ParamError(f"{path}: params file not found")
    raw = path.read_bytes()
    try:
        data = yaml.load(raw, Loader=TextDateLoader) or {}
        params = Params.model_validate({**data, "fingerprint": hashlib.sha256(raw).hexdigest()})
    except yaml.YAMLError as exc:
        raise ParamError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except ValidationError as exc:
        e = exc.errors()[0]
        raise ParamError(f"{path}: {'.'.join(map(str, e['loc']))}: {e['msg']}") from None
    for region in params.policies:
        if region not in cat.policies:
            raise ParamError(f"{path}: policies.{region}: no such region in the rules")
    check_names(params, cat, str(path))
    return params


def check_names(params: Params, cat: Catalogue, where: str) -> None:
    """Every clause and budget the parameters name exists in the catalogue."""
    for cid in params.clauses:
        if cid not in cat.rules:
            raise ParamError(f"{where}: clauses.{cid}: no such clause in the rules")
    for scope, years in params.budgets.items():
        if scope not in cat.policies and scope not in cat.rules:
            raise ParamError(f"{where}: budgets.{scope}: no such region or clause in the rules")


def policy_windows(cat: Catalogue, params: Params) -> dict[str, tuple[dt.date, dt.date] | None]:
    """Each region's validity window; None where its start is a missing parameter."""
    out: dict[str, tuple[dt.date, dt.date] | None] = {}
    for region, pol in cat.policies.items():
        if pol.valid_from is not None:
            out[region] = (pol.valid_from, pol.valid_to)
            continue
        start = params.policies.get(region, PolicyParams()).effective_from
        if start is None:
            out[region] = None
            continue
        try:
            end = start.replace(year=start.year + pol.valid_years) - dt.timedelta(days=1)
        except ValueError:  # 29 February
            end = dt.date(start.year + pol.valid_years, 2, 28)
        out[region] = (start, end)
    return out
