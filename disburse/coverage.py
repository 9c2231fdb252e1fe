"""What the catalogue covers: every clause listed, encoded, tested; every article accounted for."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import yaml

from disburse.params import policy_windows, Params
from disburse.rules import Catalogue, natural_key


def tested_clauses(scenarios_dir: Path) -> dict[str, list[str]]:
    """clause id -> the scenario files that expect a line or clawback of it."""
    found: dict[str, list[str]] = {}
    for path in sorted(scenarios_dir.rglob("*.yaml")):
        if path.name.endswith(".pending.yaml"):
            continue
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for run in doc.get("runs", []):
            for exp in [*(run.get("lines") or []), *(run.get("clawbacks") or [])]:
                found.setdefault(exp["clause_id"], [])
                if path.name not in found[exp["clause_id"]]:
                    found[exp["clause_id"]].append(path.name)
    return found


def recognition_text(r) -> str:
    """What recognition (经认定) a clause needs, in words; empty when none."""
    if r.recognition_under:
        text = f"under {r.recognition_under}, that year or before"
    elif r.recognition:
        text = "under this clause"
    else:
        return ""
    if r.recognition_in_advance:
        text += ", filed on or before the event"
    if r.approved_rate_range:
        low, high = r.approved_rate_range
        text += f", approved rate {low:.0%}–{high:.0%}"
    return text


def clause_table(cat: Catalogue, region: str | None = None) -> pl.DataFrame:
    """One row per encoded clause: id, region, title, kind, then caps and validity."""
    windows = policy_windows(cat, Params())
    rows = []
    for cid in sorted(cat.rules, key=natural_key):
        r = cat.rules[cid]
        if region and r.region != region:
            continue
        window = windows[r.region]
        rows.append({
            "clause_id": cid, "region": r.region, "title": r.title, "kind": r.kind,
            "article": r.article,
            "item_cap": _yuan(r.item_cap), "annual_cap": _yuan(r.annual_cap),
            "cumulative_cap": _yuan(r.cumulative_cap), "one_off": r.one_off,
            "valid_from": str(window[0]) if window else "administrator parameter",
            "valid_to": str(window[1]) if window else f"{cat.policies[r.region].valid_years} years from it",
            "recognition": recognition_text(r), "params": ",".join(r.params),
        })
    return pl.DataFrame(rows, schema={k: pl.String for k in (
        "clause_id", "region", "title", "kind", "article", "item_cap", "annual_cap", "cumulative_cap")}
        | {"one_off": pl.Boolean, "valid_from": pl.String, "valid_to": pl.String, "recognition": pl.String,
           "params": pl.String})


def _yuan(v) -> str | None:
    return None if v is None else f"{v:.2f}"


def coverage(cat: Catalogue, scenarios_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(per policy: articles, paying clauses, encoded, tested; per clause: encoded, tested, where)."""
    tested = tested_clauses(scenarios_dir)
    per_clause, per_policy = [], []
    for region in cat.regions:
        pol = cat.policies[region]
        listed = pol.paying_clauses or [c for c in cat.rules if cat.rules[c].region == region]
        extra = [c for c in cat.rules if cat.rules[c].region == region and c not in listed]
        for cid in sorted([*listed, *extra], key=natural_key):
            per_clause.append({"region": region, "clause_id": cid, "listed": cid in listed,
                               "encoded": cid in cat.rules, "tested": cid in tested,
                               "scenarios": ", ".join(tested.get(cid, []))})
        mine = [c for c in per_clause if c["region"] == region]
        per_policy.append({
            "region": region, "policy": pol.title,
            "articles": len(listed) + len(pol.non_monetary), "paying_clauses": len(listed),
            "non_monetary": len(pol.non_monetary),
            "encoded": sum(c["encoded"] and c["listed"] for c in mine),
            "tested": sum(c["tested"] and c["listed"] for c in mine),
        })
    return pl.DataFrame(per_policy), pl.DataFrame(per_clause)


def markdown(policies: pl.DataFrame) -> str:
    """The per-policy table as Markdown (docs/policy.md carries it; docs/rules/index.md too)."""
    cols = ["region", "articles", "paying_clauses", "non_monetary", "encoded", "tested"]
    head = "| " + " | ".join(cols) + " |\n| " + " | ".join("---" for _ in cols) + " |\n"
    body = "".join("| " + " | ".join(str(r[c]) for c in cols) + " |\n" for r in policies.iter_rows(named=True))
    total = {c: policies[c].sum() for c in cols[1:]}
    return head + body + "| all | " + " | ".join(str(total[c]) for c in cols[1:]) + " |\n"
