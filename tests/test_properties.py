"""Money properties checked against a Decimal reference, and the grain of the outputs."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from disburse.money import apply_rate, fmt_fen, fmt_fen_expr, parse_money
from disburse.job import run_year

CENT = Decimal("0.01")
fen_values = st.integers(min_value=0, max_value=10**13)
ppm_values = st.integers(min_value=0, max_value=1_000_000)


@given(fen=st.lists(fen_values, min_size=1, max_size=50), ppm=ppm_values)
@example(fen=[9_999_947_840_649, 10**13], ppm=922_343)  # fen × ppm beyond 2^63: once wrapped to a negative amount
def test_rate_rounds_half_up_exactly(fen: list[int], ppm: int) -> None:
    got = pl.DataFrame({"f": fen}).select(apply_rate(pl.col("f"), pl.lit(ppm)))["f"].to_list()
    rate = Decimal(ppm) / 1_000_000
    want = [int(((Decimal(f) / 100) * rate).quantize(CENT, rounding=ROUND_HALF_UP) * 100) for f in fen]
    assert got == want


@given(fen=st.lists(fen_values, min_size=1, max_size=50))
def test_money_text_round_trips(fen: list[int]) -> None:
    text = [f"{f // 100}.{f % 100:02d}" for f in fen]
    parsed = pl.DataFrame({"t": text}).select(parse_money("t"))["t"].to_list()
    assert parsed == fen
    shown = pl.DataFrame({"f": fen}).select(fmt_fen_expr(pl.col("f")))["f"].to_list()
    assert shown == [fmt_fen(f) for f in fen]


@settings(max_examples=15, deadline=None)  # each example is a whole run; the tiers' edges are examples below
@given(bills=st.lists(st.integers(min_value=1, max_value=2_000_000_00), min_size=1, max_size=6))
@example(bills=[300_000_00])             # exactly the first tier: 30,000.00
@example(bills=[300_000_01])             # a fen above it: the fen at 50%, 30,000.01 (0.005 rounds half up)
@example(bills=[1_000_000_00, 1_000_000_00])  # 2,000,000: 30,000 + 850,000 = 880,000
@example(bills=[2_000_000_00, 1_000_000])     # 2,010,000: 885,000
@example(bills=[2_000_000_00, 2_000_000_00])  # 4,000,000: 1,880,000 -> the 1,000,000 cap
def test_lingang_4_matches_the_article(tmp_path_factory, bills: list[int]) -> None:
    """二、4: 10% of the first 300,000 of a year's fees, 50% above, at most 1,000,000."""
    from tests.scenario import Scenario

    tmp = tmp_path_factory.mktemp("l4")
    doc = {
        "applicants": [{"id": "P1", "region": "lingang"}],
        "ledgers": {"compute": [
            {"row_id": f"B{i}", "applicant_id": "P1", "year": 2022, "billed_on": "2022-05-01", "category": "telecom",
             "related_party": False, "amount": f"{b // 100}.{b % 100:02d}"} for i, b in enumerate(bills)]},
        "runs": [],
    }
    path = tmp / "case.yaml"
    import yaml

    path.write_text(yaml.safe_dump(doc))
    Scenario(path).write_ledgers(tmp / "ledgers")
    _, results = run_year(tmp / "ledgers", tmp / "out", 2022, region="lingang")
    total = sum(Decimal(b) / 100 for b in bills)
    first = min(total, Decimal(300_000))
    want = min((first * Decimal("0.1") + (total - first) * Decimal("0.5")).quantize(CENT, rounding=ROUND_HALF_UP),
               Decimal(1_000_000))
    got = Decimal(results[0].payments["total_payable_fen"].sum()) / 100
    assert got == want


def test_outputs_have_their_stated_grain_and_reconcile(tmp_path: Path) -> None:
    demo = Path(__file__).parent.parent / "fixtures" / "demo"
    out = tmp_path / "out"
    for year in (2020, 2021, 2022, 2023):  # in order: the demo has 2020 rows
        manifest, results = run_year(demo, out, year, params_file=demo / "params.yaml")
        for res in results:
            key = ["applicant_id", "clause_id", "matter_id", "installment"]
            assert res.lines.select(key).is_unique().all(), f"{res.region}: audit grain"
            assert res.lines.select(pl.all_horizontal(pl.col(key).is_not_null())).to_series().all()
            paid = res.disbursements["payable_fen"].sum()
            assert res.payments["total_payable_fen"].sum() == paid
            assert res.payments["applicant_id"].is_unique().all()
            csv = pl.read_csv(out / str(year) / res.region / "payments.csv", infer_schema=False)
            assert sum(Decimal(v) for v in csv["total_payable"]) == Decimal(paid) / 100
        for name, d in manifest["inputs"].items():
            assert d["rows"] == d["accepted"] + d["rejected"], name


MAX_ROW_FEN = 10**15 - 1  # 9,999,999,999,999.99 yuan: the largest amount a ledger row may hold
row_fen = st.one_of(st.integers(min_value=0, max_value=MAX_ROW_FEN), st.just(MAX_ROW_FEN))


@settings(max_examples=40, deadline=None)
@given(bills=st.lists(row_fen, min_size=1, max_size=30))
@example(bills=[MAX_ROW_FEN] * 10)        # just inside the bound: summed exactly
@example(bills=[MAX_ROW_FEN] * 11)        # beyond it: refused
@example(bills=[MAX_ROW_FEN] * 30)        # 2^63 fen is 9,223 such rows; far fewer are refused already
def test_a_years_bills_sum_exactly_or_are_refused(bills: list[int]) -> None:
    """lingang.4 sums a year's bills into one base: the base is their exact sum, or every bill
    is rejected with sum_out_of_range (never a wrapped sum)."""
    from disburse.ledgers import LEDGERS, ROW, empty_raw
    from disburse.money import MAX_SUM_FEN
    from transforms.candidates import Context, extract
    from transforms.validate import validate
    from tests.test_validate import IDS, frame, good_row

    rows = [good_row("compute", 0) | {"row_id": f"B{i}", "category": "telecom", "related_party": "false",
                                      "amount": f"{b // 100}.{b % 100:02d}"} for i, b in enumerate(bills)]
    raw = {n: empty_raw(led) for n, led in LEDGERS.items()}
    raw["applicants"] = frame("applicants", [good_row("applicants", 0) | {"region": "lingang"}])
    raw["compute"] = frame("compute", rows)
    cat = _catalogue()
    v = validate(raw, cat.regions, cat.rules.keys())
    total = sum(bills)
    if total > MAX_SUM_FEN:
        assert v.accepted["compute"].is_empty()
        assert v.rejected["reason"].str.starts_with("sum_out_of_range").all() and v.rejected.height == len(bills)
        return
    assert v.rejected.is_empty()
    compiled = _compiled()
    ctx = Context(v.accepted, v.accepted["applicants"].drop(ROW), 2021,
                  (dt.date(2019, 1, 1), dt.date(2025, 12, 31)), compiled.tables["levels"], compiled.tables["steps"])
    line = extract(compiled.clause("lingang.4"), ctx)
    assert line["applicant_id"].to_list() == [IDS[0]]
    assert line["base_fen"].to_list() == [total]


_cache: dict = {}


def _catalogue():
    from disburse.job import DEFAULT_RULES
    from disburse.rules import load_catalogue

    if "cat" not in _cache:
        _cache["cat"] = load_catalogue(DEFAULT_RULES)
    return _cache["cat"]


def _compiled():
    from disburse.compiled import compile_catalogue
    from disburse.params import Params

    if "compiled" not in _cache:
        _cache["compiled"] = compile_catalogue(_catalogue(), Params())
    return _cache["compiled"]


@given(fen=st.lists(st.integers(min_value=0, max_value=2**63 - 1), min_size=1, max_size=40))
@example(fen=[3 * 10**17] * 40)  # forty lines at a bound's worth each: past 2^63 in all
def test_totals_of_lines_never_wrap(fen: list[int]) -> None:
    """A region's totals (manifest, audit page, state) and its per-clause totals are exact."""
    from disburse.money import total_fen
    from disburse.outputs import clause_totals

    lines = pl.DataFrame({"clause_id": "x.1", "clause_title": "t", "article": "a", "gross_fen": fen, "payable_fen": fen})
    assert total_fen(lines["payable_fen"]) == sum(fen)
    totals = clause_totals(lines).row(0, named=True)
    assert (totals["gross_fen"], totals["payable_fen"]) == (sum(fen), sum(fen))


cell = st.one_of(st.none(), st.text(alphabet=st.sampled_from(list('a1 ,"\n\r中文.-\u2028')), max_size=8))


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(cell, cell, cell), min_size=1, max_size=12))
def test_row_by_row_reading_agrees_with_polars_on_well_formed_files(rows) -> None:
    """The fallback for files with a malformed record reads every well-formed record as polars does."""
    import io

    from disburse.ledgers import LEDGERS, MALFORMED, _split_records

    text = pl.DataFrame(rows, schema=["a", "b", "c"], orient="row").write_csv()
    want = pl.read_csv(io.StringIO(text), infer_schema=False)
    got = _split_records(Path("t.csv"), text, LEDGERS["rd"])
    assert got[MALFORMED].is_null().all()
    tidy = lambda df: df.select(pl.col("a", "b", "c").str.strip_chars().replace("", None)).rows()  # noqa: E731
    assert tidy(got) == tidy(want)
