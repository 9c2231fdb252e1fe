"""The conditions of the rule schema that read other rows: recognition under another clause,
recognition in advance, an approved rate range, new in the region, capital since registration."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from disburse.cli import app
from disburse.ledgers import LEDGERS, empty_raw
from disburse.rules import RuleError, load_catalogue
from tests.test_validate import IDS, frame, good_row
from transforms.validate import validate

PROJECT_RULES = Path(__file__).parent.parent / "rules"
OPERATION = """\
clause_id: lingang.99
title: 测试
article: 二、99
text: "测试"
kind: rate
base: {ledger: projects, amount: operating_cost, per: row}
rate: 0.1
"""


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    shutil.copytree(PROJECT_RULES, tmp_path / "rules")
    return tmp_path / "rules"


@pytest.mark.parametrize(
    "extra, key",
    [
        ("recognition_under: lingang.98\n", "recognition_under: no clause lingang.98 in the rules"),
        ("recognition_under: jinan.9a\n", "recognition_under: must name another clause of the same region"),
        ("recognition_under: lingang.2a\nrecognition: true\n", "recognition_under: a clause is recognised"),
        ("recognition_in_advance: true\n", "recognition_in_advance: needs recognition"),
        ("approved_rate_range: [0.3, 0.1]\nrecognition: true\n", "approved_rate_range: [low, high]"),
    ],
    ids=["unknown clause", "another region", "both recognitions", "in advance of nothing", "range upside down"],
)
def test_a_bad_recognition_condition_is_refused_naming_file_and_key(rules: Path, extra: str, key: str) -> None:
    path = rules / "lingang" / "lingang.99.yaml"
    path.write_text(OPERATION + extra, encoding="utf-8")
    with pytest.raises(RuleError) as err:
        load_catalogue(rules)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and key in message and "\n" not in message, message


def test_rules_list_shows_each_clauses_recognition_requirement() -> None:
    result = CliRunner().invoke(app, ["rules", "list", "--format", "csv"])
    assert result.exit_code == 0
    rows = {line.split(",", 1)[0]: line for line in result.stdout.splitlines()}
    for operation, construction in [("lingang.2b", "lingang.2a"), ("lingang.3.1b", "lingang.3.1a"),
                                    ("lingang.3.2b", "lingang.3.2a"), ("lingang.6.1b", "lingang.6.1a"),
                                    ("lingang.6.1c", "lingang.6.1a")]:
        assert f"under {construction}, that year or before" in rows[operation]
    assert "under this clause" in rows["hangzhou.7"] and "under this clause" in rows["hangzhou.9"]
    assert "filed on or before the event" in rows["lingang.6.3a"]
    assert "approved rate 10%–30%" in rows["lingang.5.1"]
    table = CliRunner().invoke(app, ["rules", "list", "--region", "lingang"], env={"COLUMNS": "400"})
    assert "under lingang.2a" in table.stdout


def test_an_approved_rate_outside_the_clauses_range_rejects_the_recognition_row() -> None:
    from decimal import Decimal

    raw = {n: empty_raw(l) for n, l in LEDGERS.items()}
    raw["applicants"] = frame("applicants", [good_row("applicants", 0) | {"region": "lingang"}])
    rec = good_row("recognitions", 0) | {"clause_id": "lingang.5.1", "applicant_id": IDS[0]}
    raw["recognitions"] = frame("recognitions", [
        rec | {"matter_id": "P1", "approved_rate": "0.35"},
        rec | {"matter_id": "P2", "approved_rate": "0.3"},
        rec | {"matter_id": "P3", "approved_rate": "0.1"},
        rec | {"matter_id": "P4", "approved_rate": "0.099999"},
        rec | {"matter_id": "P5", "approved_rate": None},
    ])
    checked = validate(raw, ["lingang"], ["lingang.5.1"], {"lingang.5.1": (Decimal("0.1"), Decimal("0.3"))})
    rejected = checked.rejected.filter(checked.rejected["ledger"] == "recognitions")
    assert rejected.select("row", "column", "value").rows() == [(2, "approved_rate", "0.35"), (5, "approved_rate", "0.099999")]
    assert set(rejected["reason"]) == {"rate_outside_range: lingang.5.1 approves a rate from 10%–30% only"}
    assert sorted(checked.accepted["recognitions"]["matter_id"]) == ["P2", "P3", "P5"]
