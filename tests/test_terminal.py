"""What the commands print, read on an ordinary terminal: --help's types, and tables at 80 columns.

- a flag takes no value, so --help shows no type beside it (typer shows `<bool>` by default);
  every --year is `<int>`, and a bad one is refused in one line;
- at 80 columns `rules list` and `diff` keep ids and articles whole, `diff` names the firms, and
  amounts carry thousands separators.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from disburse.cli import app
from disburse.job import DEFAULT_RULES
from disburse.rules import load_catalogue

NARROW = {"COLUMNS": "80"}
YEAR_COMMANDS = ["run", "approve", "explain", "simulate", "eligible", "notices"]


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env=env or {"COLUMNS": "200"})


def help_rows(*command: str) -> dict[str, str]:
    """Each option's row of COMMAND --help, by its long name."""
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    rows = {}
    for line in result.output.splitlines():
        words = line.strip("│ *").split()
        if words and words[0].startswith("--"):
            rows[words[0]] = line
    return rows


@pytest.mark.parametrize("command", [[], *([c] for c in [*YEAR_COMMANDS, "serve", "synth", "diff", "validate",
                                                         "verify", "template"]), ["rules", "list"], ["rules", "coverage"],
                                     ["ledgers", "reference"]])
def test_help_shows_no_type_beside_a_flag(command: list[str]) -> None:
    rows = help_rows(*command)
    assert "--help" in rows
    assert not [row for row in rows.values() if "<bool>" in row], rows


def test_the_flags_are_listed_bare() -> None:
    for command, flag in [(["run"], "--allow-gaps"), (["serve"], "--allow-gaps"), (["synth"], "--bad-rows"),
                          (["rules", "coverage"], "--clauses"), ([], "--version")]:
        row = help_rows(*command)[flag]
        assert row.split(flag, 1)[1].split()[0] not in ("<bool>", "<str>", "<int>"), row


@pytest.mark.parametrize("command", YEAR_COMMANDS)
def test_every_year_is_an_int(command: str) -> None:
    assert "<int>" in help_rows(command)["--year"]


@pytest.mark.parametrize("command", ["run", "approve", "explain"])
def test_a_bad_year_is_one_line(command: str, tmp_path: Path) -> None:
    others = {"run": ["--ledgers", str(tmp_path), "--out", str(tmp_path / "out")],
              "approve": ["--region", "lingang", "--out", str(tmp_path / "out")],
              "explain": ["--applicant", "X", "--out", str(tmp_path / "out")]}[command]
    result = invoke(command, "--year", "20x", *others)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == ["disburse: --year 20x: not a year (expected four digits, e.g. 2022)"]
    assert not (tmp_path / "out").exists()


def fits(output: str, width: int = 80) -> None:
    wide = [line for line in output.splitlines() if cell_len(line) > width]
    assert not wide, "\n".join(wide)


def test_rules_list_at_80_columns_keeps_every_id_and_article_whole() -> None:
    result = invoke("rules", "list", env=NARROW)
    assert result.exit_code == 0, result.output
    fits(result.output)
    assert "…" not in result.output
    cat = load_catalogue(DEFAULT_RULES)
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.startswith("│ ")
            and line.split("│")[1].strip()}
    assert set(rows) == set(cat.rules)  # each clause id whole, on a line of its own
    for cid, rule in cat.rules.items():
        assert rule.article in rows[cid], rows[cid]
    assert "a wider terminal, or --format csv" in result.output  # says where the caps and validity are


def test_rules_list_on_a_wide_terminal_shows_every_column_with_separated_caps() -> None:
    result = invoke("rules", "list", "--region", "lingang", env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "clause_id" in line)
    for column in ("annual_cap", "cumulative_cap", "valid_from", "recognition"):
        assert column in header
    assert "20,000,000.00" in result.output  # lingang.1's item cap, 2000万
    assert "…" not in result.output


def disbursements(directory: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"applicant_id": [r[0] for r in rows], "applicant_name": [r[1] for r in rows],
                  "clause_id": [r[2] for r in rows], "payable": [Decimal(r[3]) for r in rows]},
                 schema={"applicant_id": pl.String, "applicant_name": pl.String, "clause_id": pl.String,
                         "payable": pl.Decimal(18, 2)}).write_parquet(directory / "disbursements.parquet")
    return directory


def test_diff_at_80_columns_shows_whole_ids_names_and_separated_amounts(tmp_path: Path) -> None:
    a, b = "91310115MD0000109K", "91310115MD0000120R"
    name_a, name_b = "上海海川人工智能科技有限公司", "上海滴水湖大学"
    before = disbursements(tmp_path / "before", [(a, name_a, "changning.6.1a", "1000000.00"),
                                                 (b, name_b, "lingang.9.2", "15000000.00")])
    after = disbursements(tmp_path / "after", [(a, name_a, "changning.6.1a", "1250000.50"),
                                               (b, name_b, "lingang.9.2", "99999999.99")])
    result = invoke("diff", str(before), str(after), env=NARROW)
    assert result.exit_code == 0, result.output
    fits(result.output)
    lines = result.output.splitlines()
    assert "…" not in result.output
    # the ids and clause ids whole, each on its row's first line with the three amounts
    row_b = next(line for line in lines if b in line)
    assert "lingang.9.2" in row_b and "15,000,000.00" in row_b and "99,999,999.99" in row_b
    assert "+84,999,999.99" in row_b
    row_a = next(line for line in lines if a in line)
    assert "changning.6.1a" in row_a and "+250,000.50" in row_a
    # the names, wrapped under the id where the column is narrow
    text = "".join(line.split()[0] if line.split() else "" for line in lines)
    assert name_a in text and name_b in text
    assert "Total before 16,000,000.00, after 101,250,000.49, difference +85,250,000.49" in result.output
