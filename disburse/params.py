"""Administrator parameters (SPEC §5.9): values the policy text leaves open.

    policies: {jinan: {effective_from: 2021-03-01}}
    clauses:  {changning.6.1c: {rate: 0.5, annual_cap: 800000}}
    clauses:  {changning.6.1c: {rate: [{from: 2021-01-01, value: 0.3}, {from: 2023-07-01, value: 0.25}]}}
    budgets:  {changning: {2025: 30000000}, changning.8.2: {2025: 5000000}}   # fund ceilings (yuan)
    carry_budget_shortfall: false
    public_notice: {amounts: per_firm, mask_credit_code: false}   # what 公示名单 shows

A budget names a region or a clause and, per year, the most it may pay
(``transforms.budget``: every line of this year is cut by one ratio when the
year's payable exceeds it). ``carry_budget_shortfall`` makes what a cut took
owed the next year, paid first out of that year's budget.

A clause's value (rate, annual_cap, item_cap, amount) is plain, in force on
every date, or dated: a list of ``{from, value}`` with strictly increasing
dates, each value bounded as a plain one. A dated value is in force from its
``from`` to the day before the next one's (the last has no end); before the
first ``from`` the parameter has no value (``in_force``), and a line dated there
that needs it stops the run, as a missing parameter does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError
from pydantic_core import PydanticCustomError

from disburse.money import yuan_to_fen
from disburse.rules import Catalogue, TextDateLoader


class ParamError(Exception):
    """Parameters are unreadable or a needed one is missing; one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicyParams(_Strict):
    effective_from: dt.date | None = None


Rate = Annotated[Decimal, Field(ge=0, le=1, decimal_places=6)]
Money = Annotated[Decimal, Field(ge=0, decimal_places=2)]


class DatedRate(_Strict):
    from_: dt.date = Field(alias="from")
    value: Rate


class DatedMoney(_Strict):
    from_: dt.date = Field(alias="from")
    value: Money


def _increasing(items: list) -> list:
    for before, after in zip(items, items[1:]):
        if after.from_ == before.from_:
            raise PydanticCustomError("dated_twice", "the date {date} is given twice", {"date": after.from_.isoformat()})
        if after.from_ < before.from_:
            raise PydanticCustomError("dated_order", "the dates must increase: {after} comes after {before}",
                                      {"after": after.from_.isoformat(), "before": before.from_.isoformat()})
    return items


# The tags of a value's two forms; not part of any key (``error_where`` leaves them out).
_PLAIN, _DATED = "<plain>", "<dated>"


def _form(value) -> str:
    return _DATED if isinstance(value, (list, tuple, dict)) else _PLAIN


def _param(plain, dated):
    """A plain value, or a list of dated values (``{from, value}``, dates strictly increasing)."""
    return Annotated[Annotated[plain, Tag(_PLAIN)]
                     | Annotated[list[dated], Field(min_length=1), AfterValidator(_increasing), Tag(_DATED)],
                     Discriminator(_form)]


RateParam = _param(Rate, DatedRate)
MoneyParam = _param(Money, DatedMoney)


def in_force(value: Decimal | list | None, on: dt.date) -> tuple[Decimal | None, dt.date | None]:
    """The value in force on ON and the date it has been in force from (None for a plain value);
    (None, None) where the value is not given or ON is before its first date."""
    if not isinstance(value, list):
        return value, None
    current = [v for v in value if v.from_ <= on]
    return (current[-1].value, current[-1].from_) if current else (None, None)


def change_dates(value: Decimal | list | None) -> list[dt.date]:
    """The dates a dated value changes on (none for a plain or missing one)."""
    return [v.from_ for v in value] if isinstance(value, list) else []


class ClauseParams(_Strict):
    rate: RateParam | None = None
    annual_cap: MoneyParam | None = None
    item_cap: MoneyParam | None = None
    amount: MoneyParam | None = None
    # a suspended clause pays no new line this year; installments already owed are still paid
    # (what `disburse simulate --overlay` writes for a clause switched off)
    suspended: bool = False


class PublicNotice(_Strict):
    """What 公示名单 (the public-notice list) shows. ``amounts``: per_firm (each firm's total once, on its
    first row; the default: a notice publishes what a firm receives, not how it is split), per_line (the
    amount of each firm and clause) or none (no amounts; the list's total stays). ``mask_credit_code``:
    the middle of the 统一社会信用代码 shown as * (913101********0017); off by default, a firm's code
    being public registration data that tells firms of the same name apart."""
    amounts: Literal["per_firm", "per_line", "none"] = "per_firm"
    mask_credit_code: bool = False


class Params(_Strict):
    policies: dict[str, PolicyParams] = Field(default_factory=dict)
    clauses: dict[str, ClauseParams] = Field(default_factory=dict)
    # fund ceilings (资金池 / 预算额度), yuan, by region or clause id and year
    budgets: dict[str, dict[int, Annotated[Decimal, Field(ge=0, decimal_places=2)]]] = Field(default_factory=dict)
    carry_budget_shortfall: bool = False
    public_notice: PublicNotice = Field(default_factory=PublicNotice)
    fingerprint: str = "none"

    def suspended(self, clause_id: str) -> bool:
        p = self.clauses.get(clause_id)
        return p is not None and p.suspended

    def budgets_for(self, region: str, year: int) -> dict[str, int]:
        """The ceilings of REGION's year in fen: clause ids first (sorted), the region last."""
        mine = {scope: yuan_to_fen(years[year]) for scope, years in self.budgets.items()
                if year in years and scope.split(".", 1)[0] == region}
        return dict(sorted(mine.items(), key=lambda kv: (kv[0] == region, kv[0])))


def error_where(exc: ValidationError) -> str:
    """The first error of a params document, as 'key.path: message' (a dated item: 'clauses.X.rate.1.value')."""
    e = exc.errors()[0]
    return f"{'.'.join(str(k) for k in e['loc'] if k not in (_PLAIN, _DATED))}: {e['msg']}"


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
        raise ParamError(f"{path}: {error_where(exc)}") from None
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
