"""The rule schema accepts no key the engine never reads.

`disburse.rules.KINDS` declares, per kind, the keys its extraction and formula
read (EVERY_KIND: the keys every kind reads); the loader refuses any other.
These tests keep that table honest:

- every key of the schema is declared somewhere, and the table names no key the
  schema lacks;
- every key of the schema (rules and policies, nested ones too) is read by the
  engine (``disburse/``, ``transforms/``, ``flows/``) outside the schema's own
  classes, but the few words for a person (WORDS_ONLY);
- for every kind, the extraction of its lines (or, for second_cap, the compiled
  clause table) reads each base key and each extraction key (ladder, growth,
  threshold, recognition) the kind declares: a kind that declares `base.where`
  but never filters on it fails here;
- every column the catalogue compiles into the clause table is read by a transform;
- the transforms read the catalogue compiled once per run (``disburse.compiled``), never the rules'
  models, the params or their error, and never turn yuan into fen themselves.
"""

from __future__ import annotations

import ast
import re
import dataclasses
import datetime as dt
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from disburse import rules as R
from disburse.compiled import compile_catalogue
from disburse.ledgers import LEDGERS
from disburse.params import Params
from transforms.candidates import Context, extract
from transforms.validate import validate

ROOT = Path(__file__).parent.parent
ENGINE = [p for d in ("disburse", "transforms", "flows") for p in sorted((ROOT / d).glob("*.py"))]


def schema_keys(model: type[BaseModel], prefix: str = "") -> list[tuple[type[BaseModel], str]]:
    """(model, dotted key) for every field of the model and of the models nested in it."""
    out = []
    for name, field in model.model_fields.items():
        out.append((model, prefix + name))
        inner = {a for t in (field.annotation, *typing.get_args(field.annotation)) for a in (t, *typing.get_args(t))}
        for sub in inner:
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                out += schema_keys(sub, f"{prefix}{name}.")
    return out


def engine_reads() -> tuple[set[str], set[str]]:
    """Attribute names and string constants used by the engine, outside the schema's classes."""
    attrs, strings = set(), set()
    for path in ENGINE:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        schema = {id(n) for c in ast.walk(tree) if isinstance(c, ast.ClassDef) and issubclass(getattr(R, c.name, object), BaseModel)
                  for n in ast.walk(c)} if path.name == "rules.py" else set()
        for node in ast.walk(tree):
            if id(node) in schema:
                continue
            if isinstance(node, ast.Attribute):
                attrs.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                strings.add(node.value)
    return attrs, strings


def _atoms(keys) -> set[str]:
    return {k for key in keys for k in key.split("|") if not k.startswith("params.")}


def test_every_rule_key_is_declared_for_some_kind() -> None:
    schema = {"clause_id", *R.Rule.model_fields, *(f"base.{k}" for k in R.Base.model_fields)}
    declared = set(R.EVERY_KIND) | {k for spec in R.KINDS.values() for k in spec.reads | _atoms(spec.requires)}
    assert schema - declared == set(), "keys the schema accepts but no kind declares it reads (rules.KINDS)"
    assert declared - schema == set(), "keys rules.KINDS declares but the schema lacks"
    assert _atoms(R.DEPENDS) | set(R.DEPENDS) <= schema
    for kind, spec in R.KINDS.items():
        assert _atoms(spec.requires) <= spec.reads | R.EVERY_KIND, f"{kind} requires a key it does not read"


def test_every_schema_key_is_read_by_the_engine() -> None:
    attrs, strings = engine_reads()
    unread = []
    for model, key in [*schema_keys(R.Rule), *schema_keys(R.Policy)]:
        leaf = key.rsplit(".", 1)[-1]
        if model is R.Eligibility:  # compiled generically, field by field, into the elig_<name> columns
            read = f"elig_{leaf}" in strings
        else:
            read = leaf in attrs
        if not read and key not in R.WORDS_ONLY:
            unread.append(f"{model.__name__}.{key}")
    assert unread == []


def test_every_compiled_clause_column_is_read_by_a_transform() -> None:
    others = "".join(p.read_text(encoding="utf-8") for p in ENGINE if p.name != "rules.py")
    assert [c for c in R.CLAUSE_SCHEMA if f'"{c}"' not in others] == []


class Recorder:
    """A rule, or the clause compiled from it (or a part of either), that notes every key read from it.
    A compiled field names its key with the unit it was converted to (threshold_fen: threshold)."""

    def __init__(self, obj, prefix: str, seen: set[str]):
        self._obj, self._prefix, self._seen = obj, prefix, seen

    def __getattr__(self, name: str):
        value = getattr(self._obj, name)
        fields = (type(self._obj).model_fields if isinstance(self._obj, BaseModel)
                  else {f.name for f in dataclasses.fields(self._obj)})
        if name in fields:
            key = self._prefix + name.removesuffix("_fen").removesuffix("_ppm")
            self._seen.add(key)
            if isinstance(value, BaseModel) or dataclasses.is_dataclass(value):
                return Recorder(value, f"{key}.", self._seen)
        return value


EXTRACTION_KEYS = {"ladder", "growth", "threshold", "recognition", *R.JOINED}
# For each kind, a rule giving every base key the kind reads (values from the ledger contract).
FULL_BASE = {
    "ledger": "financing", "amount": "amount", "where": {"kind": ["loan"]}, "between": {"amount": [0, 10_000_000]},
    "per": "row", "payee": "investor_id", "max_main_revenue": 20_000_000, "investee_sector": ["ai"],
    "investee_size": ["small"], "second_amount": "guarantee_fee", "second_cap": 50_000,
}
KIND_VALUES = {
    "rate": {"rate": 0.5}, "progressive": {"tiers": [{"rate": 0.1}]}, "fixed": {"amount": 100},
    "level": {"levels": {"national": 100}}, "per_unit": {"unit_amount": 100}, "matching": {"rate": 1},
    "ladder": {"ladder": {"comparison": "over", "steps": [{"threshold": 1, "award": 1}]}},
    "first_reach": {"threshold": 100, "rate": 0.1},
    "growth": {"growth": {"min_growth": 0.2, "years": 2, "min_intensity": 0.1, "min_increase": 1}, "rate": 0.1},
    "approved": {}, "in_kind": {"in_kind": {"unit": "PFLOPS", "max_quantity": 1, "duration": "one year"}},
}


def sample_rules(kind: str) -> list[R.Rule]:
    """Rules of the kind that together give every base and extraction key it reads."""
    spec = R.KINDS[kind]
    rules = []
    for ledger in spec.ledgers:
        if ledger == "recognitions":
            base = {"ledger": ledger, "matter_ledger": "projects"}
            base |= {"amount": "approved_amount"} if "base.amount" in spec.reads else {}
        else:
            base = {k: v for k, v in FULL_BASE.items() if f"base.{k}" in spec.reads or k == "ledger"}
            base["ledger"] = ledger
            money = R.money_columns(ledger)
            if "amount" in base or "base.amount" in spec.reads:
                base["amount"] = money[0]
            if "between" in base:
                base["between"] = {money[0]: [0, 10_000_000]}
            col = next((c for c in LEDGERS[ledger].columns if c.enum), None)
            if "where" in base and col is None:
                base.pop("where")
            elif "where" in base:
                base["where"] = {col.name: [col.enum[0]]}
            if ledger != "financing":
                for k in ("payee", "second_amount", "second_cap"):
                    base.pop(k, None)
        body = {"clause_id": f"testland.{kind}", "title": "t", "article": "t", "text": "t", "kind": kind,
                "base": base, **KIND_VALUES[kind]}
        if "recognition" in spec.reads:
            body["recognition"] = True
        rules.append(R.Rule.model_validate(body))
    return rules


POLICY = R.Policy(region="testland", source="t", title="t", valid_from=dt.date(2021, 1, 1),
                  valid_to=dt.date(2023, 12, 31), provisions=R.PolicyProvisions())


def empty_context(rule: R.Rule) -> Context:
    accepted = validate({}, ["testland"], [rule.clause_id]).accepted
    tables = R.compile_tables(R.Catalogue(policies={"testland": POLICY}, rules={rule.clause_id: rule}, fingerprint=""))
    return Context(accepted, accepted["applicants"], 2022, (dt.date(2021, 1, 1), dt.date(2023, 12, 31)),
                   tables["levels"], tables["steps"])


@pytest.mark.parametrize("kind", sorted(R.KINDS))
def test_each_kind_reads_the_base_it_declares(kind: str) -> None:
    spec = R.KINDS[kind]
    wanted = {k for k in spec.reads if k.startswith("base.") or k in EXTRACTION_KEYS}
    seen: set[str] = set()
    for rule in sample_rules(kind):
        clause = compile_catalogue(R.Catalogue(policies={"testland": POLICY}, rules={rule.clause_id: rule},
                                               fingerprint=""), Params()).clause(rule.clause_id)
        extract(Recorder(clause, "", seen), empty_context(rule))
        # a few base keys are compiled into the clause table instead (second_cap: second_cap_fen)
        R.compile_tables(R.Catalogue.model_construct(policies={"testland": POLICY}, rules={rule.clause_id: Recorder(rule, "", seen)}))
    assert wanted - seen == set(), f"kind {kind} declares keys its extraction never reads"


def test_the_rules_readme_carries_the_kinds_table() -> None:
    assert R.kinds_markdown() in (ROOT / "rules" / "README.md").read_text(encoding="utf-8")


def test_the_layers_below_the_transforms_never_import_them() -> None:
    """The state, the files and the audit store and write what the transforms compute; the tables they
    share live below both (``disburse.tables``), so none of them imports ``transforms``."""
    root = Path(__file__).parent.parent / "disburse"
    for name in ("state.py", "outputs.py", "audit.py", "excel.py", "tables.py", "ledgers.py", "money.py", "rules.py"):
        tree = ast.parse((root / name).read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | {
            a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not {m for m in imported if m == "transforms" or m.startswith("transforms.")}, name


def compiled_catalogue_faults(transforms: Path) -> list[str]:
    """What in the transforms under TRANSFORMS reads the catalogue or the parameters other than compiled:
    an import of the rules' models or of the params (their error included), or yuan turned into fen by
    ``* 100``. ``validate`` parses the ledgers' own text (yuan in, fen out) and is left out of the last."""
    modules, names = {"disburse.rules", "disburse.params"}, {"Rule", "Catalogue", "Params", "ParamError"}
    faults = []
    for path in sorted(transforms.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.name}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ImportFrom):
                faults += [f"{where} imports {node.module}"] * (node.module in modules)
                faults += [f"{where} imports {a.name}" for a in node.names if a.name in names]
            elif isinstance(node, ast.Import):
                faults += [f"{where} imports {a.name}" for a in node.names if a.name in modules]
            elif (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) and path.name != "validate.py"
                  and any(isinstance(o, ast.Constant) and o.value == 100 for o in (node.left, node.right))):
                faults.append(f"{where} multiplies by 100")
    return faults


def test_the_transforms_read_only_the_compiled_catalogue() -> None:
    """The transforms receive the catalogue compiled once per run (``disburse.compiled``): amounts in fen,
    rates in ppm, the administrator's parameters resolved and the missing ones found."""
    assert compiled_catalogue_faults(ROOT / "transforms") == []


def test_the_ledger_reference_says_what_every_category_means() -> None:
    """SPEC §3 leaves the projects' categories and the events' kinds to the project, documented: each is in
    the ledger reference's table (docs/ledgers.md), and each row names, outside its parentheses, exactly the clauses whose base reads it
    (taken from rules/)."""
    from disburse.ledgers import EVENT_KINDS, PROJECT_CATEGORIES

    readers: dict[str, set[str]] = {v: set() for v in (*PROJECT_CATEGORIES, *EVENT_KINDS)}
    for path in sorted((ROOT / "rules").glob("*/*.yaml")):
        rule = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(rule, dict) or "clause_id" not in rule:
            continue  # policy.yaml
        base = rule.get("base") or {}
        column = {"projects": "category", "events": "kind"}.get(base.get("ledger"))
        for value in (base.get("where") or {}).get(column, []):
            readers[value].add(rule["clause_id"])
    text = (ROOT / "docs" / "ledgers.md").read_text(encoding="utf-8")
    section = text.split("## What the categories mean", 1)[1].split("\n## ", 1)[0]
    named: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `") or "read by" in line:
            continue  # not a row, or the header
        cells = line.split("|")
        values = re.findall(r"`([a-z_]+)`", cells[1])
        assert len(values) == 1, line  # one value a row: a row of two could name a reader under the wrong one
        outside = re.sub(r"\([^)]*\)", "", cells[-2])
        assert set(re.findall(r"[a-z]+\.\d+(?:\.\d+)?[a-z]?", outside)) == set().union(*(readers[v] for v in values)), line
        named |= set(values)
    assert named == set(readers)


CLAUSE_ID = r"[a-z]+\.\d+(?:\.\d+)?[a-z]?"


def _clause_rules() -> list[dict]:
    rules = []
    for path in sorted((ROOT / "rules").glob("*/*.yaml")):
        rule = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(rule, dict) and "clause_id" in rule:
            rules.append(rule)
    return rules


def _approved_scope_readable(rule: dict) -> bool:
    """The loader reads approved_scope on this rule: its kind reads it, beside recognition: true, on a ledger base."""
    base = rule.get("base") or {}
    return ("approved_scope" in R.KINDS[rule["kind"]].reads and rule.get("recognition") is True
            and bool(base) and base.get("ledger") != "recognitions")


def test_every_rule_that_can_carry_an_approved_amount_says_what_it_bounds() -> None:
    """A rule whose approved amount could bound its lines gives approved_scope itself (never left to the default)."""
    silent = [r["clause_id"] for r in _clause_rules() if _approved_scope_readable(r) and "approved_scope" not in r]
    assert not silent, f"approved_scope left to the default: {silent}"


def test_the_readme_names_every_clause_whose_approved_amount_is_the_matters_total() -> None:
    """The decision "An approved amount across years" lists exactly the rules with approved_scope: matter, then
    (after "Elsewhere") exactly those with approved_scope: line."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    bullet = text.split("- **An approved amount across years**", 1)[1].split("\n- **", 1)[0]
    matter, elsewhere = bullet.split("Elsewhere", 1)
    line = elsewhere.split("A recognition's approved amount and rate are one decision", 1)[0]
    rules = _clause_rules()
    assert set(re.findall(CLAUSE_ID, matter)) == {r["clause_id"] for r in rules if r.get("approved_scope") == "matter"}
    assert set(re.findall(CLAUSE_ID, line)) == {r["clause_id"] for r in rules if r.get("approved_scope") == "line"}


def test_the_ledger_reference_in_docs_is_the_one_generated() -> None:
    """docs/ledgers.md is what `disburse ledgers reference` prints: regenerate it after a change to the ledgers,
    their descriptions (disburse/reference.py) or the rules (`disburse ledgers reference --out docs/ledgers.md`)."""
    from disburse.reference import markdown

    assert (ROOT / "docs" / "ledgers.md").read_text(encoding="utf-8") == markdown(R.load_catalogue(ROOT / "rules"))
