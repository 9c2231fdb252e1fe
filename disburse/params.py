"""Administrator parameters (SPEC §5.9): values the policy text leaves open.

    policies: {jinan: {effective_from: 2021-03-01}}
    clauses:  {changning.6.1c: {rate: 0.5, annual_cap: 800000}}
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

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


class Params(_Strict):
    policies: dict[str, PolicyParams] = Field(default_factory=dict)
    clauses: dict[str, ClauseParams] = Field(default_factory=dict)
    fingerprint: str = "none"


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
    for cid in params.clauses:
        if cid not in cat.rules:
            raise ParamError(f"{path}: clauses.{cid}: no such clause in the rules")
    return params


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
