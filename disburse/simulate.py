"""What-if runs for the policy office: the year under changed rules, parameters or budgets.

``disburse simulate`` runs the same stages as ``disburse run`` (ingest, check,
what was paid before, compute per region) once for the catalogue and
parameters as approved (the baseline) and once per overlay, against a
temporary copy of the state: nothing is recorded, no approved file is
touched, no finance file is written. It then compares the lines.

An overlay is a small YAML file:

    name: lingang.4 cap 1.5 million             # optional; default: the file's name
    clauses:
      lingang.4: {annual_cap: 1500000}          # a value of the clause's rule file
      changning.6.1c: {rate: 0.6}               # an administrator parameter of the clause
      changning.6.2: {rate: [{from: 2021-01-01, value: 0.01}, {from: 2023-07-01, value: 0.02}]}  # dated, as in params
      jinan.8: off                              # switched off: no new line this year
    budgets: {changning: {2025: 30000000}}      # fund ceilings, as in the params file
    carry_budget_shortfall: true                # as in the params file

A key a clause lists under ``params:`` in its rule file (and ``suspended``)
changes the parameters; any other key changes the rule file's document, where
a mapping is merged key by key into a mapping and anything else replaces the
value (a parameter, plain or dated, replaces the parameter whole). The changed documents are loaded by the rules loader itself, from a
temporary copy of the catalogue, and the parameters by the params model: an
overlay is refused exactly where a rule file or a params file would be, in one
line naming the overlay file and the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from disburse import job, state
from disburse.compiled import compile_catalogue
from disburse.money import fmt_fen, yuan_text, yuan_to_fen
from disburse.params import ParamError, Params, check_names, error_where
from disburse.rules import Catalogue, RuleError, TextDateLoader, load_catalogue
from disburse.tables import RegionResult
from transforms.facts import in_force


class OverlayError(ParamError):
    """An overlay cannot be applied; one line naming the file and the key."""


class _Overlay(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str | None = Field(default=None, min_length=1, max_length=60)
    clauses: dict[str, dict[str, Any] | Literal[False]] = Field(default_factory=dict)
    budgets: dict[str, dict[int, Annotated[Decimal, Field(ge=0, decimal_places=2)]]] = Field(default_factory=dict)
    carry_budget_shortfall: bool | None = None


@dataclasses.dataclass
class Scenario:
    name: str
    source: str  # the overlay file, or "as approved"
    inputs: job.Inputs
    changes: list[str]  # what the overlay changes, in words


def _merge(into: Any, change: Any) -> Any:
    if isinstance(into, dict) and isinstance(change, dict):
        return {**into, **{k: _merge(into.get(k), v) for k, v in change.items()}}
    return change


def _read_overlay(path: Path) -> _Overlay:
    if not path.is_file():
        raise OverlayError(f"{path}: overlay file not found")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=TextDateLoader) or {}
        return _Overlay.model_validate(data)
    except yaml.YAMLError as exc:
        raise OverlayError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except ValidationError as exc:
        raise OverlayError(f"{path}: {error_where(exc)}") from None


def _value_text(value: Any) -> str:
    """A changed value in words; a dated one as '0.3 from 2021-01-01, 0.25 from 2023-07-01'."""
    if isinstance(value, list) and all(isinstance(v, dict) and set(v) == {"from", "value"} for v in value):
        return ", ".join(f"{v['value']} from {v['from']}" for v in value)
    return str(value)


def apply_overlay(path: Path, base: job.Inputs, rules_dir: Path, workdir: Path) -> Scenario:
    """The scenario an overlay describes: the catalogue and parameters changed, then loaded as the job loads them."""
    overlay = _read_overlay(path)
    cat, params = base.catalogue, base.params
    rule_changes: dict[str, dict] = {}
    param_doc = params.model_dump(exclude={"fingerprint"}, exclude_defaults=True, by_alias=True)
    param_doc.setdefault("clauses", {})
    changes = []
    for cid, change in overlay.clauses.items():
        if cid not in cat.rules:
            raise OverlayError(f"{path}: clauses.{cid}: no such clause in the rules")
        if change is False:
            change = {"suspended": True}
        for key, value in change.items():
            if key == "suspended" or key in cat.rules[cid].params:
                param_doc["clauses"].setdefault(cid, {})[key] = value
            else:
                rule_changes.setdefault(cid, {})[key] = value
            changes.append(f"{cid}：停用（switched off）" if key == "suspended" and value is True else f"{cid}.{key} = {_value_text(value)}")
    for scope, years in overlay.budgets.items():
        param_doc.setdefault("budgets", {}).setdefault(scope, {}).update(years)
        changes += [f"资金额度 {scope} {y} 年：{fmt_fen(yuan_to_fen(v))} 元" for y, v in sorted(years.items())]
    if overlay.carry_budget_shortfall is not None:
        param_doc["carry_budget_shortfall"] = overlay.carry_budget_shortfall
        changes.append(f"核减差额结转下年（carry_budget_shortfall）= {'是' if overlay.carry_budget_shortfall else '否'}")
    if rule_changes:
        cat = _changed_catalogue(path, rules_dir, cat, rule_changes, workdir)
    digest = hashlib.sha256(params.fingerprint.encode() + path.read_bytes()).hexdigest()
    try:
        new_params = Params.model_validate({**param_doc, "fingerprint": digest})
    except ValidationError as exc:
        raise OverlayError(f"{path}: {error_where(exc)}") from None
    check_names(new_params, cat, str(path))
    inputs = dataclasses.replace(base, catalogue=cat, compiled=compile_catalogue(cat, new_params), params=new_params)
    return Scenario(overlay.name or path.stem, str(path), inputs, changes)


def _changed_catalogue(path: Path, rules_dir: Path, cat: Catalogue, changes: dict[str, dict], workdir: Path) -> Catalogue:
    """The catalogue with the changed rule documents, loaded by the rules loader from a copy."""
    copy = Path(tempfile.mkdtemp(prefix="rules-", dir=workdir))
    shutil.rmtree(copy)
    shutil.copytree(rules_dir, copy)
    for cid, change in changes.items():
        file = copy / cat.rules[cid].region / f"{cid}.yaml"
        doc = yaml.load(file.read_text(encoding="utf-8"), Loader=TextDateLoader)
        file.write_text(yaml.safe_dump(_merge(doc, change), allow_unicode=True, sort_keys=False), encoding="utf-8")
    try:
        return load_catalogue(copy)
    except RuleError as exc:
        message = str(exc)
        for cid in changes:
            prefix = f"{copy / cat.rules[cid].region / f'{cid}.yaml'}: "
            if message.startswith(prefix):
                raise OverlayError(f"{path}: clauses.{cid}.{message.removeprefix(prefix)}") from None
        raise OverlayError(f"{path}: {message.replace(str(copy), 'rules')}") from None


def _state_copy(state_file: Path | None, workdir: Path) -> Path:
    """A copy of the state to read from (a missing file: an empty state)."""
    copy = workdir / "state.duckdb"
    if state_file is not None and state_file.exists():
        shutil.copy2(state_file, copy)
        wal = state_file.with_name(state_file.name + ".wal")
        if wal.exists():
            shutil.copy2(wal, copy.with_name(copy.name + ".wal"))
    return copy


def rows_in_year(checked: job.Validated, year: int, regions: list[str]) -> dict[str, int]:
    """Per region, the accepted ledger rows of YEAR (applicants and prior payments aside): none in any, nothing to
    simulate."""
    where = checked.accepted["applicants"].select("applicant_id", "region").unique()
    counts = dict.fromkeys(regions, 0)
    for name, df in checked.accepted.items():
        if name in ("applicants", "prior_payments") or "year" not in df.columns:
            continue
        per = (df.filter(pl.col("year") == year).select("applicant_id").join(where, on="applicant_id")
               .group_by("region").len())
        for region, n in per.iter_rows():
            if region in counts:
                counts[region] += n
    return counts


def notes(year: int, gaps: dict[str, list[int]], rows: dict[str, int]) -> list[str]:
    """What the officer must know before reading the figures, one line each, in Chinese."""
    lines = []
    if gaps:
        listed = "；".join(f"{r} {'、'.join(map(str, ys))}" for r, ys in sorted(gaps.items()))
        lines.append(f"注意：以下年度从未运行，台账中却有数据（{listed}）：模拟按这些年度未付款计算，"
                     f"累计上限和分期可能与依次运行后不同")
    if not any(rows.values()):
        lines.append(f"注意：台账中没有 {year} 年的数据行（{'、'.join(rows)}）：本年没有可模拟的申报，"
                     f"结果为零或只含以前年度的分期")
    return lines


def run_scenarios(ledgers_dir: Path, year: int, *, rules_dir: Path | None = None, params_file: Path | None = None,
                  state_file: Path | None = None, overlays: list[Path] = (), region: str | None = None,
                  warn: Callable[[str], None] | None = None,
                  ) -> tuple[pl.DataFrame, list[Scenario], dict[str, list[RegionResult]]]:
    """Compute the year for the baseline and every overlay; returns the applicants, the scenarios and their results.
    WARN, if given, receives the lines of ``notes``: earlier years never run, regions with no rows in YEAR."""
    rules_dir = rules_dir or job.DEFAULT_RULES
    with tempfile.TemporaryDirectory(prefix="disburse-simulate-") as tmp:
        work = Path(tmp)
        base = job.ingest(ledgers_dir, rules_dir, params_file)
        regions = job.choose_regions(base.catalogue, region)
        scenarios = [Scenario("baseline", "as approved", base, [])]
        for path in overlays:
            scenarios.append(apply_overlay(path, base, rules_dir, work))
        names = [s.name for s in scenarios]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise OverlayError(f"scenario name {dup} is given twice (set name: in the overlays)")
        checked = job.check(base)
        con = state.connect(_state_copy(state_file, work))
        try:
            paid = job.paid_before(con, base, checked, year)
            gaps = job.find_gaps(con, base, checked, year, regions)
        finally:
            con.close()
        for line in notes(year, gaps, rows_in_year(checked, year, regions)):
            if warn is not None:
                warn(line)
        results = {s.name: [job.compute(s.inputs, checked, paid, year, r) for r in regions] for s in scenarios}
    # one row per applicant: its name, size and sector in the year simulated (transforms.facts)
    applicants = in_force(checked.accepted["applicants"], year).select(
        "applicant_id", pl.col("name").alias("applicant_name"), "region", "size", "sector")
    return applicants, scenarios, results


# --- the comparison --------------------------------------------------------------------------

GROUPS = {"region": [], "clause": ["clause_id"], "size": ["size"], "sector": ["sector"]}


def per_firm(applicants: pl.DataFrame, results: dict[str, list[RegionResult]]) -> pl.DataFrame:
    """One row per applicant and clause paid in any scenario: its payable (fen) in each scenario."""
    keys = ["applicant_id", "region", "clause_id"]
    frame = None
    for name, res in results.items():
        lines = pl.concat([r.lines.select(*keys, "payable_fen") for r in res])
        f = lines.group_by(keys).agg(pl.col("payable_fen").sum().cast(pl.Int64).alias(name))
        frame = f if frame is None else frame.join(f, on=keys, how="full", coalesce=True)
    frame = frame.with_columns(pl.col(list(results)).fill_null(0)).filter(pl.any_horizontal(pl.col(list(results)) != 0))
    return frame.join(applicants, on=["applicant_id", "region"], how="left")


def impact(firms: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """One row per group (all, region, clause, size, sector within a region) in fen: the baseline,
    each scenario's total, difference, and the firms gaining and losing."""
    base, others = names[0], names[1:]
    parts = []
    for group, cols in [("all", None), *GROUPS.items()]:
        by = [] if cols is None else ["region", *cols]
        firm_sums = firms.group_by([*by, "applicant_id"]).agg(pl.col(names).sum())
        aggs = [pl.col(base).sum().alias(base)]
        for s in others:
            aggs += [pl.col(s).sum().alias(s), (pl.col(s) - pl.col(base)).sum().alias(f"{s} difference"),
                     (pl.col(s) > pl.col(base)).sum().cast(pl.Int64).alias(f"{s} firms gaining"),
                     (pl.col(s) < pl.col(base)).sum().cast(pl.Int64).alias(f"{s} firms losing")]
        g = firm_sums.group_by(by).agg(aggs) if by else firm_sums.select(aggs)
        key = pl.lit("") if cols is None or not cols else pl.col(cols[0])
        parts.append(g.with_columns(pl.lit(group).alias("group"),
                                    (pl.col("region") if by else pl.lit("")).alias("region"),
                                    key.cast(pl.String).alias("key"))
                     .select("group", "region", "key", *[c for c in g.columns if c not in ("group", "region", "key", *by)]))
    return pl.concat(parts, how="diagonal_relaxed").sort(
        pl.col("group").replace_strict({"all": 0, "region": 1, "clause": 2, "size": 3, "sector": 4}, return_dtype=pl.Int64),
        "region", "key")


def largest_changes(firms: pl.DataFrame, names: list[str], n: int = 10) -> dict[str, pl.DataFrame]:
    """Per scenario, the N firms whose total changed most (by size of the change, then applicant id)."""
    base = names[0]
    totals = firms.group_by("applicant_id", "applicant_name", "region", "size", "sector").agg(pl.col(names).sum())
    out = {}
    for s in names[1:]:
        d = totals.with_columns((pl.col(s) - pl.col(base)).alias("difference")).filter(pl.col("difference") != 0)
        out[s] = d.sort(pl.col("difference").abs(), "applicant_id", descending=[True, False]).head(n) \
            .select("applicant_id", "applicant_name", "region", "size", "sector", base, s, "difference")
    return out


def _yuan(df: pl.DataFrame) -> pl.DataFrame:
    """Every amount (fen) as yuan text with two decimals, a difference with its sign."""
    money = [c for c, t in df.schema.items() if t in (pl.Int64, pl.Int128) and "firms" not in c and c != "lines_cut"]
    return df.with_columns(
        pl.when(pl.col(c) < 0).then(pl.format("-{}", yuan_text(-pl.col(c)))).otherwise(yuan_text(c)).alias(c) for c in money)


def write_impact(out_dir: Path, year: int, applicants: pl.DataFrame, scenarios: list[Scenario],
                 results: dict[str, list[RegionResult]]) -> dict[str, Path]:
    """impact.csv (groups and the ten largest changes), impact_firms.csv (every firm), impact.html."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    from disburse.outputs import write_csv

    env = Environment(loader=PackageLoader("disburse", "templates"), autoescape=select_autoescape())

    names = [s.name for s in scenarios]
    firms = per_firm(applicants, results)
    table = impact(firms, names)
    largest = largest_changes(firms, names)
    rows = [table]
    for s, df in largest.items():
        rows.append(df.select(pl.lit(f"largest change: {s}").alias("group"), "region", pl.col("applicant_id").alias("key"),
                              *[pl.col(c) for c in names if c in df.columns],
                              pl.col("difference").alias(f"{s} difference")))
    csv = pl.concat(rows, how="diagonal_relaxed")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"impact.csv": out_dir / "impact.csv", "impact_firms.csv": out_dir / "impact_firms.csv",
             "impact.html": out_dir / "impact.html"}
    write_csv(_yuan(csv), paths["impact.csv"])
    every = (firms.group_by("applicant_id", "applicant_name", "region", "size", "sector").agg(pl.col(names).sum())
             .with_columns((pl.col(s) - pl.col(names[0])).alias(f"{s} difference") for s in names[1:])
             .sort("region", "applicant_id"))
    write_csv(_yuan(every), paths["impact_firms.csv"])
    budgets = pl.concat([r.budgets.with_columns(pl.lit(name).alias("scenario"), pl.lit(r.region).alias("region"))
                         for name, res in results.items() for r in res if not r.budgets.is_empty()], how="diagonal_relaxed") \
        if any(not r.budgets.is_empty() for res in results.values() for r in res) else pl.DataFrame()
    from disburse.ledgers import SECTORS_ZH, SIZES_ZH

    labels = {r.region: r.label for res in results.values() for r in res}
    enum_zh = {"size": SIZES_ZH, "sector": SECTORS_ZH}

    def key_name(group: str, key: str | None) -> str:
        """A group's key as a person reads it: 人工智能（ai）; a clause id as it is."""
        zh = enum_zh.get(group, {}).get(key or "")
        return f"{zh}（{key}）" if zh else (key or "")

    html = env.get_template("impact.html.j2").render(
        year=year, scenarios=scenarios, names=names,
        fmt=fmt_fen, region_name=lambda r: labels.get(r, r), key_name=key_name,
        groups=[(g, table.filter(pl.col("group") == g).to_dicts()) for g in ("all", "region", "clause", "size", "sector")],
        largest={s: df.to_dicts() for s, df in largest.items()},
        budgets=budgets.to_dicts(),
    )
    paths["impact.html"].write_text(html, encoding="utf-8")
    return paths


def simulate(ledgers_dir: Path, out_dir: Path, year: int, **kwargs) -> tuple[dict[str, Path], list[Scenario], dict]:
    from disburse.outputs import private_files

    applicants, scenarios, results = run_scenarios(ledgers_dir, year, **kwargs)
    with private_files():  # firms' names and amounts: the owner's only, like a run's outputs
        return write_impact(out_dir, year, applicants, scenarios, results), scenarios, results

