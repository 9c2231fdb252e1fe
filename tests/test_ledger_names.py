"""Every ledger, column and enumeration value has exactly one Chinese name, and no name means two things.

A header, a file or sheet name, or a typed value is read by its English or its
Chinese name (disburse.ledgers); these tests keep the names table complete and
one-to-one, so that no header or value can be read two ways.
"""

from __future__ import annotations

import re
from pathlib import Path

from disburse.ledgers import (
    AMBIGUOUS_ZH, COLUMN_ZH, COLUMN_ZH_BY_LEDGER, ENUM_ZH, LEDGER_ZH, LEDGERS, column_zh,
)
from disburse.rules import load_catalogue, region_names

CJK = re.compile(r"[\u4e00-\u9fff]")
ROOT = Path(__file__).parent.parent
# Columns a ledger may carry in some versions of the contract: they have their names already.
MAY_GAIN = {"applicants": ("year",), "prior_payments": ("installment", "installments", "award")}


def test_every_ledger_has_one_chinese_name_unlike_any_other_name() -> None:
    assert set(LEDGER_ZH) == set(LEDGERS)
    zh = [LEDGERS[n].zh for n in LEDGERS]
    assert all(CJK.search(z) for z in zh)
    assert len(set(zh)) == len(zh), "two ledgers share a Chinese name"
    assert not set(zh) & set(LEDGERS), "a ledger's Chinese name is another's English name"


def test_every_column_has_one_chinese_name_unique_within_its_ledger() -> None:
    for name, ledger in LEDGERS.items():
        cols = [*ledger.column_names, *(c for c in MAY_GAIN.get(name, ()) if c not in ledger.column_names)]
        zh = [column_zh(name, c) for c in cols]
        assert all(CJK.search(z) for z in zh), name
        assert [c.zh for c in ledger.columns] == zh[: len(ledger.columns)]
        assert len(set(zh)) == len(zh), f"{name}: two columns share a Chinese name"
        # a Chinese name is never another column's English name (a header could then mean two columns)
        assert not set(zh) & set(cols), name
    used = {c for ledger in LEDGERS.values() for c in ledger.column_names} | {c for cs in MAY_GAIN.values() for c in cs}
    assert set(COLUMN_ZH) == used, "a column without a Chinese name, or a name for no column"
    assert {lc for lc in COLUMN_ZH_BY_LEDGER} <= {(n, c) for n, l in LEDGERS.items() for c in l.column_names}


def test_every_enumeration_value_has_one_chinese_name() -> None:
    enums = {c.enum for ledger in LEDGERS.values() for c in ledger.columns if c.enum}
    assert enums == set(ENUM_ZH)
    for values, zh in ENUM_ZH.items():
        assert tuple(zh) == values
        assert all(CJK.search(z) for z in zh.values()), values
        assert len(set(zh.values())) == len(zh), f"two values of {values} share a Chinese name"
        assert not set(zh.values()) & set(values)
    for column, words in AMBIGUOUS_ZH.items():
        values = next(c.enum for ledger in LEDGERS.values() for c in ledger.columns if c.name == column)
        for word, meant in words.items():
            assert len(meant) > 1 and set(meant) <= set(values) and word not in ENUM_ZH[values].values()


def test_every_region_has_one_chinese_name() -> None:
    catalogue = load_catalogue(ROOT / "rules")
    names = region_names(catalogue)
    assert set(names) == set(catalogue.regions)
    assert len(set(names.values())) == len(names)
    assert not set(names.values()) & set(catalogue.regions)
