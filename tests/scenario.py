"""Scenario tests as data: a YAML file of ledgers and expected lines, run through the real job.

    name: what the case shows, naming the article
    params: {clauses: {changning.6.1c: {rate: 0.5}}}          # optional
    applicants: [{id: A1, region: lingang, size: small}]       # other columns take defaults; an applicant's
                                                               # facts by year: several entries of one id,
                                                               # each with its `year` (SPEC §3)
    ledgers: {compute: [{row_id: B1, applicant_id: A1, ...}]}
    runs:                                                      # run in order, sharing one state
      - year: 2021
        region: lingang                                        # optional (--region)
        lines:                                                 # each must exist; listed keys are compared
          - {applicant_id: A1, clause_id: lingang.4, payable: "280000.00", reasons: [cap:annual]}
        payments: {A1: "280000.00"}                            # the whole payments table, all regions run
        clawbacks: [{applicant_id: A1, clause_id: lingang.4, amount: "280000.00"}]
        error: "administrator parameter rate"                  # the run must fail with this in its message
        allow_gaps: true                                       # optional: run although earlier years with
                                                               # ledger rows were never run (--allow-gaps);
                                                               # at the top level: for every run
      - year: 2021                                             # what-if (disburse simulate): nothing recorded
        simulate:
          overlay: {clauses: {lingang.4: {annual_cap: 1500000}}}
          changed:                                             # exactly these lines change, every other pays the same
            - {applicant_id: A1, clause_id: lingang.4, baseline: "1000000.00", simulated: "1130000.00"}
          error: "clauses.lingang.4.annual_cap"                # or: the overlay is refused with this
      - year: 2022                                             # 免申即享 (disburse eligible): the whole list, all regions
        eligible: [{applicant_id: A1, clause_id: changning.6.1b, matter_id: R1, amount: "600000.00", net: "100000.00"}]
      - year: 2022
        add: {recognitions: [...]}                             # rows added to the ledgers from this run on
                                                               # (applicants: [{id: A1, year: 2023, ...}] too)
    rules:                                                     # optional: a region of the scenario's own
      policy: {valid_from: 2021-01-01, valid_to: 2023-12-31}  # merged over TEST_POLICY (region testland unless
                                                               # the policy names another)
      clauses: [{clause_id: testland.a, kind: rate, ...}]     # text, title and article may be left out

Short applicant ids (A1) become valid 统一社会信用代码 wherever they appear as
an applicant_id or matter_id, in the ledgers and in the expectations alike.
"""

from __future__ import annotations

import hashlib
import shutil
from decimal import Decimal
from pathlib import Path

import polars as pl
import yaml

from disburse import uscc
from disburse.job import DEFAULT_RULES as PROJECT_RULES
from disburse.job import JOB_ERRORS, run_year
from disburse.ledgers import LEDGERS
from disburse.money import fen_to_decimal

APPLICANT_DEFAULTS = {
    "name": None, "region": None, "established_on": "2019-01-01", "registered_in_region_on": "2019-01-01",
    "size": "small", "above_scale": "true", "sector": "ai", "credit_ok": "true",
    "relocated_out_on": "", "fraud_found_on": "",
}


TEST_POLICY = {
    "region": "testland", "source": "scenario", "title": "测试政策",
    "valid_from": "2021-01-01", "valid_to": "2023-12-31",
    "provisions": {"keep_highest": "就高不重复", "clawback_on_relocation_years": 5},
}


def credit_code(alias: str) -> str:
    if len(alias) == 18:
        return alias
    digits = int(hashlib.sha256(alias.encode()).hexdigest(), 16) % 10**9
    return uscc.make(f"91310000{digits:09d}")


def _text(v) -> str:
    """A YAML value as ledger text: booleans lower-case, dates ISO, empty for nothing."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class Scenario:
    def __init__(self, path: Path):
        self.path = path
        self.doc = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        self.aliases = {a["id"]: credit_code(a["id"]) for a in self.doc.get("applicants", [])}

    def alias(self, value):
        return self.aliases.get(value, value) if isinstance(value, str) else value

    def write_ledgers(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        rows = []
        for a in self.doc["applicants"]:
            row = {"applicant_id": self.aliases[a["id"]], **APPLICANT_DEFAULTS, "name": a["id"]}
            row.update({k: v for k, v in a.items() if k != "id"})
            rows.append({k: _text(v) for k, v in row.items()})
        self._write(directory, "applicants", rows)
        for name, ledger_rows in (self.doc.get("ledgers") or {}).items():
            out = []
            for r in ledger_rows:
                r = {k: self.alias(v) if k in ("applicant_id", "matter_id") else v for k, v in r.items()}
                out.append({c: _text(r.get(c)) for c in LEDGERS[name].column_names if c in r or LEDGERS[name].col(c).required})
            self._write(directory, name, out)

    @staticmethod
    def _write(directory: Path, name: str, rows: list[dict]) -> None:
        cols = list(dict.fromkeys(k for r in rows for k in r))
        pl.DataFrame([{c: r.get(c, "") for c in cols} for r in rows], schema={c: pl.String for c in cols}) \
            .write_csv(directory / f"{name}.csv")

    def params_file(self, directory: Path) -> Path | None:
        if "params" not in self.doc:
            return None
        path = directory / "params.yaml"
        path.write_text(yaml.safe_dump(self.doc["params"], allow_unicode=True), encoding="utf-8")
        return path

    def rules_dir(self, directory: Path) -> Path | None:
        """The project's rules plus the scenario's own region, if it has one."""
        if "rules" not in self.doc:
            return None
        shutil.copytree(PROJECT_RULES, directory)
        own = self.doc["rules"]
        policy = {**TEST_POLICY, **own.get("policy", {})}
        region_dir = directory / policy["region"]
        region_dir.mkdir()
        (region_dir / "policy.yaml").write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
        for clause in own["clauses"]:
            body = {"title": clause["clause_id"], "article": "test", "text": "测试条款", **clause}
            (region_dir / f"{clause['clause_id']}.yaml").write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
        return directory

    def run(self, tmp: Path) -> None:
        ledgers, out = tmp / "ledgers", tmp / "out"
        self.write_ledgers(ledgers)
        params = self.params_file(tmp)
        rules = self.rules_dir(tmp / "rules")
        for run in self.doc["runs"]:
            year = run["year"]
            where = f"{self.path.name} year {year}"
            gaps = bool(run.get("allow_gaps", self.doc.get("allow_gaps", False)))
            if "add" in run:
                for name, rows in run["add"].items():
                    if name == "applicants":
                        self.doc["applicants"].extend(rows)
                        self.aliases.update({a["id"]: credit_code(a["id"]) for a in rows})
                        continue
                    self.doc.setdefault("ledgers", {}).setdefault(name, []).extend(rows)
                self.write_ledgers(ledgers)
            if "simulate" in run:
                self.check_simulation(run["simulate"], ledgers, out, year, params, rules, tmp, where)
                continue
            if "eligible" in run:
                self.check_eligible(run["eligible"], ledgers, out, year, params, rules, tmp, where)
                continue
            if "error" in run:
                try:
                    run_year(ledgers, out, year, region=run.get("region"), params_file=params, rules_dir=rules,
                             allow_gaps=gaps)
                except JOB_ERRORS as exc:
                    assert run["error"] in str(exc), f"{where}: error {exc!s} lacks {run['error']!r}"
                    continue
                raise AssertionError(f"{where}: expected the run to fail with {run['error']!r}")
            _, results = run_year(ledgers, out, year, region=run.get("region"), params_file=params, rules_dir=rules,
                             allow_gaps=gaps)
            lines = pl.concat([r.lines for r in results])
            for exp in run.get("lines", []):
                self.check_line(lines, exp, where)
            if "payments" in run:
                got = {r["applicant_id"]: str(fen_to_decimal(r['total_payable_fen']))
                       for res in results for r in res.payments.to_dicts()}
                want = {self.alias(k): f"{Decimal(str(v)):.2f}" for k, v in (run["payments"] or {}).items()}
                assert got == want, f"{where}: payments {got} != {want}"
            if "clawbacks" in run:
                got = sorted((r["applicant_id"], r["clause_id"], r["matter_id"], str(fen_to_decimal(r['amount_fen'])))
                             for res in results for r in res.clawbacks.to_dicts())
                want = sorted((self.alias(c["applicant_id"]), c["clause_id"], self.alias(c.get("matter_id", c["applicant_id"])),
                               f"{Decimal(str(c['amount'])):.2f}") for c in run["clawbacks"] or [])
                assert got == want, f"{where}: clawbacks {got} != {want}"

    def check_simulation(self, sim: dict, ledgers: Path, out: Path, year: int, params, rules, tmp: Path, where: str) -> None:
        """The overlay changes exactly the lines listed, by the amounts listed; the state is left as it was."""
        from disburse.simulate import run_scenarios

        overlay = tmp / f"overlay-{year}.yaml"
        overlay.write_text(yaml.safe_dump(sim["overlay"], allow_unicode=True), encoding="utf-8")
        state_file = out / "state.duckdb"
        before = state_file.read_bytes() if state_file.exists() else None
        if "error" in sim:  # the overlay must be refused, naming its file and key
            try:
                run_scenarios(ledgers, year, rules_dir=rules, params_file=params, state_file=state_file, overlays=[overlay])
            except JOB_ERRORS as exc:
                assert str(exc).startswith(f"{overlay}: ") and sim["error"] in str(exc), f"{where}: error {exc!s} lacks {sim['error']!r}"
                return
            raise AssertionError(f"{where}: expected the overlay to be refused with {sim['error']!r}")
        _, scenarios, results = run_scenarios(ledgers, year, rules_dir=rules, params_file=params, state_file=state_file,
                                              overlays=[overlay])
        assert (state_file.read_bytes() if state_file.exists() else None) == before, f"{where}: simulate changed the state"
        keys = ["applicant_id", "clause_id", "matter_id", "installment"]
        base, other = (pl.concat([r.lines for r in results[s.name]]).select(*keys, "payable_fen") for s in scenarios)
        both = base.join(other, on=keys, how="full", coalesce=True, suffix="_sim").with_columns(
            pl.col("payable_fen", "payable_fen_sim").fill_null(0))
        changed = both.filter(pl.col("payable_fen") != pl.col("payable_fen_sim"))
        got = sorted((r["applicant_id"], r["clause_id"], r["matter_id"], r["installment"],
                      str(fen_to_decimal(r["payable_fen"])), str(fen_to_decimal(r["payable_fen_sim"])))
                     for r in changed.to_dicts())
        want = sorted((self.alias(c["applicant_id"]), c["clause_id"], self.alias(c.get("matter_id", c["applicant_id"])),
                       c.get("installment", 1), f"{Decimal(str(c['baseline'])):.2f}", f"{Decimal(str(c['simulated'])):.2f}")
                      for c in sim.get("changed") or [])
        assert got == want, f"{where}: lines changed by the overlay {got} != {want}"

    def check_eligible(self, expected: list, ledgers: Path, out: Path, year: int, params, rules, tmp: Path, where: str) -> None:
        """The push list of every region is exactly the rows listed."""
        from disburse.eligible import eligible

        written = eligible(ledgers, tmp / f"eligible-{year}", year, rules_dir=rules, params_file=params,
                           state_file=out / "state.duckdb")
        got = sorted((r["applicant_id"], r["clause_id"], r["matter_id"], str(fen_to_decimal(r["amount_if_recognised"])),
                      str(fen_to_decimal(r["net_difference"])))
                     for _, df in written.values() for r in df.to_dicts())
        want = sorted((self.alias(e["applicant_id"]), e["clause_id"], self.alias(e.get("matter_id", e["applicant_id"])),
                       f"{Decimal(str(e['amount'])):.2f}", f"{Decimal(str(e['net'])):.2f}") for e in expected or [])
        assert got == want, f"{where}: eligible {got} != {want}"

    def check_line(self, lines: pl.DataFrame, exp: dict, where: str) -> None:
        key = {
            "applicant_id": self.alias(exp["applicant_id"]),
            "clause_id": exp["clause_id"],
            "matter_id": self.alias(exp.get("matter_id", exp["applicant_id"])),
            "installment": exp.get("installment", 1),
        }
        # a line of this year's matter, unless the expectation names an earlier year (a line paid late)
        of_year = (pl.col("year_of_matter") == exp["year_of_matter"]) if "year_of_matter" in exp else (
            pl.col("year_of_matter") == pl.col("year"))
        found = lines.filter(*(pl.col(k) == v for k, v in key.items()), of_year)
        assert found.height == 1, f"{where}: expected one line {key}, found {found.height}"
        line = found.row(0, named=True)
        label = f"{where} {exp['clause_id']} {exp.get('matter_id', exp['applicant_id'])} {line['year_of_matter']}"
        for field, col in (("payable", "payable_fen"), ("gross", "gross_fen"), ("base", "base_fen")):
            if field in exp:
                got = str(fen_to_decimal(line[col] or 0))
                assert got == f"{Decimal(str(exp[field])):.2f}", f"{label}: {field} {got} != {exp[field]}\n  {line['steps']}"
        codes = line["reasons"].split(";") if line["reasons"] else []
        for code in exp.get("reasons", []):
            assert code in codes, f"{label}: reason {code} not in {codes}\n  {line['steps']}"
        for text in exp.get("steps_include", []):
            assert text in line["steps"], f"{label}: steps lack {text!r}: {line['steps']}"
