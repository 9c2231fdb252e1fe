import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from disburse import uscc
from disburse.ledgers import BOOL, DATE, INT, LEDGERS, MONEY, NUMBER, RATE, ROW, empty_raw
from transforms.validate import REJECTED_SCHEMA, UNKNOWN_APPLICANT, validate

IDS = [uscc.make(f"91310000MA1FL{i:04d}") for i in range(5)]
FLIPPED = IDS[1][:17] + ("0" if IDS[1][17] != "0" else "1")  # wrong check character
REGIONS = ["xuhui", "lingang"]
CLAUSES = ["xuhui.1", "lingang.2a"]
GOOD = {DATE: "2021-03-01", BOOL: "true", MONEY: "100.50", RATE: "0.5", INT: "3", NUMBER: "120.5"}


def good_row(ledger: str, i: int) -> dict[str, str]:
    """A valid row of LEDGER; rows with different I have different keys."""
    row = {}
    for c in LEDGERS[ledger].columns:
        if c.name == "applicant_id":
            row[c.name] = IDS[i] if ledger == "applicants" else IDS[0]
        elif c.name == "year":
            row[c.name] = str(2021 + i)
        elif c.name == LEDGERS[ledger].date_column:
            row[c.name] = f"{2021 + i}-03-01"  # the row's own date falls in its year
        elif c.enum:
            row[c.name] = c.enum[0]
        else:
            row[c.name] = {"region": "xuhui", "clause_id": "xuhui.1"}.get(c.name) or GOOD.get(c.type, f"{c.name}-{i}")
    return row


def frame(ledger: str, rows: list[dict]) -> pl.DataFrame:
    """What read_ledgers gives: text columns, nulls for empty cells, _row from 2."""
    df = pl.DataFrame(rows, schema={c: pl.String for c in LEDGERS[ledger].column_names})
    return df.with_row_index(ROW, offset=2).with_columns(pl.col(ROW).cast(pl.Int64)).select(ROW, *df.columns)


def run(matter_ledgers: dict[str, str] | None = None, **ledgers: list[dict]):
    raw = {n: empty_raw(l) for n, l in LEDGERS.items()}
    raw["applicants"] = frame("applicants", [good_row("applicants", 0)])
    raw.update({n: frame(n, rows) for n, rows in ledgers.items()})
    return raw, validate(raw, REGIONS, CLAUSES, matter_ledgers=matter_ledgers)


def with_bad(ledger: str, column: str, value: str | None) -> dict[str, list[dict]]:
    """LEDGER with a good row 2 and row 3 whose COLUMN is VALUE."""
    return {ledger: [good_row(ledger, 0), good_row(ledger, 1) | {column: value}]}


@pytest.mark.parametrize(
    "ledger, column, value, reason",
    [
        ("compute", "billed_on", None, "missing_value: billed_on is required"),
        ("applicants", "name", None, "missing_value"),
        ("compute", "amount", "12.345", "bad_money"),
        ("compute", "amount", "1,00", "ambiguous_money"),  # 1,000 is a thousands separator (accepted); 1,00 is not
        ("compute", "amount", "-5", "negative_amount"),
        ("rent", "area_m2", "big", "bad_number"),
        ("rent", "area_m2", "-3", "negative_number"),
        ("rd", "year", "20x1", "bad_int"),
        ("rd", "year", "1989", "bad_year"),
        ("revenue", "year", "2101", "bad_year"),
        ("recognitions", "quantity", "1.5", "bad_int"),
        ("recognitions", "quantity", "-1", "negative_number"),
        ("compute", "billed_on", "2021-02-30", "bad_date"),
        ("events", "held_on", "1/3/2022", "ambiguous_date"),  # 2022-3-1 is accepted; day-month order is not
        ("applicants", "above_scale", "yes", "bad_bool"),  # True, TRUE, 是 are accepted
        ("rent", "self_use", "yes", "bad_bool"),
        ("compute", "category", "gpu", "not_allowed: expected one of telecom, cloud"),
        ("projects", "higher_level", "county", "not_allowed"),
        ("recognitions", "approved_rate", "1.5", "bad_rate"),
        ("recognitions", "approved_rate", "0.1234567", "bad_rate"),
        ("applicants", "region", "mars", "unknown_region"),
        ("recognitions", "clause_id", "mars.1", "unknown_clause"),
        ("prior_payments", "clause_id", "mars.1", "unknown_clause"),
        ("applicants", "applicant_id", FLIPPED, "bad_credit_code"),
        ("applicants", "applicant_id", IDS[1][:16], "bad_credit_code"),
        ("financing", "applicant_id", IDS[3], "unknown_applicant"),
        # digits of other scripts are not digits of an amount, a year or a date (issue 8)
        ("compute", "amount", "１００", "bad_money"),
        ("compute", "amount", "١٠٠", "bad_money"),
        ("compute", "amount", "100.５", "bad_money"),
        ("rd", "year", "２０２２", "bad_int"),
        ("rent", "area_m2", "１２０", "bad_number"),
        ("recognitions", "quantity", "３", "bad_int"),
        ("recognitions", "approved_rate", "０.5", "bad_rate"),
        ("events", "held_on", "２０２２-03-01", "bad_date"),
        ("recognitions", "quantity", "1000000001", "out_of_range"),
        # a row's year is the year of its own date (issue 8)
        ("compute", "year", "2021", "year_mismatch: year 2021 is not the year of billed_on 2022-03-01"),
        ("financing", "year", "2023", "year_mismatch"),
        ("events", "year", "2021", "year_mismatch"),
        ("recognitions", "year", "2020", "year_mismatch"),
    ],
)
def test_bad_value_rejects_its_row(ledger, column, value, reason):
    raw, v = run(**with_bad(ledger, column, value))
    assert v.rejected.select("ledger", "row", "column", "value").rows() == [(ledger, 3, column, value)]
    assert v.rejected["reason"][0].startswith(reason)
    assert v.accepted[ledger][ROW].to_list() == [2]


def test_good_rows_typed():
    _, v = run(**{n: [good_row(n, 0)] for n in LEDGERS if n != "applicants"})
    assert v.rejected.is_empty()
    assert v.rejected.schema == pl.Schema(REJECTED_SCHEMA)
    for name, ledger in LEDGERS.items():
        assert v.accepted[name].columns == [ROW, *ledger.column_names]
        assert v.accepted[name].height == 1
    rent = v.accepted["rent"].row(0, named=True)
    assert (rent["rent_paid"], rent["area_m2"], rent["year"], rent["self_use"]) == (10050, 120.5, 2021, True)
    rec = v.accepted["recognitions"].row(0, named=True)
    assert (rec["approved_rate"], rec["recognized_on"], rec["quantity"]) == (500_000, dt.date(2021, 3, 1), 3)
    assert v.accepted["applicants"].schema["above_scale"] == pl.Boolean


def test_optional_value_may_be_empty():
    row = good_row("projects", 0) | {"total_investment": None, "higher_level": None, "accepted_on": None}
    _, v = run(projects=[row])
    assert v.rejected.is_empty()
    assert v.accepted["projects"].row(0, named=True)["total_investment"] is None


def test_every_row_is_accepted_or_rejected():
    rows = {n: [good_row(n, i) for i in range(4)] for n in LEDGERS}
    rows["applicants"][1]["region"] = "mars"          # applicant 1 rejected ...
    rows["compute"][1]["applicant_id"] = IDS[1]       # ... so this row names no accepted applicant
    rows["compute"][2] |= {"amount": "-1", "billed_on": "2021-13-01"}  # two faults, one row
    rows["rd"][3]["year"] = rows["rd"][2]["year"]     # duplicate key
    rows["events"][0]["kind"] = None
    _, v = run(**rows)
    for name in LEDGERS:
        bad = v.rejected.filter(pl.col("ledger") == name)["row"].n_unique()
        assert v.accepted[name].height + bad == 4, name
    assert v.rejected.filter(ledger="compute", row=4).height == 2


def test_duplicate_key_rejects_every_row_sharing_it():
    rows = [good_row("rd", 0), good_row("rd", 1), good_row("rd", 0)]
    _, v = run(rd=rows)
    assert v.rejected.select("row", "column", "value").rows() == [
        (2, "applicant_id|year", f"{IDS[0]}|2021"),
        (4, "applicant_id|year", f"{IDS[0]}|2021"),
    ]
    assert set(v.rejected["reason"]) == {"duplicate_key: applicant_id, year repeats on rows 2, 4"}
    assert v.accepted["rd"][ROW].to_list() == [3]


def test_incomplete_key_takes_no_part_in_duplicates():
    rows = [good_row("compute", 0) | {"row_id": None}, good_row("compute", 1) | {"row_id": None}]
    _, v = run(compute=rows)
    assert v.rejected["reason"].to_list() == ["missing_value: row_id is required"] * 2


def test_unknown_applicant_includes_rejected_applicants():
    applicants = [good_row("applicants", 0), good_row("applicants", 1) | {"sector": "mining"}]
    rd = [good_row("rd", 0), good_row("rd", 1) | {"applicant_id": IDS[1]}, good_row("rd", 2) | {"applicant_id": "X"}]
    _, v = run(applicants=applicants, rd=rd)
    got = v.rejected.filter(ledger="rd").select("row", "reason", "applicant_id").rows()
    assert got == [
        (3, "unknown_applicant: no accepted applicant with this id", IDS[1]),
        (4, "unknown_applicant: no accepted applicant with this id", "X"),
    ]


def test_rejected_line_carries_the_rows_applicant():
    _, v = run(rd=[good_row("rd", 0) | {"rd_expense": "x"}, good_row("rd", 1) | {"applicant_id": None}])
    assert v.rejected.select("row", "applicant_id").rows() == [(2, IDS[0]), (3, None)]


def test_project_with_two_applicants_is_rejected():
    applicants = [good_row("applicants", 0), good_row("applicants", 1)]
    projects = [good_row("projects", 0), good_row("projects", 1) | {"project_id": "project_id-0", "applicant_id": IDS[1]}]
    _, v = run(applicants=applicants, projects=projects)
    assert v.rejected.select("row", "column").rows() == [(2, "applicant_id"), (3, "applicant_id")]
    assert v.rejected["reason"][0].startswith("conflicting_applicant")
    assert v.accepted["projects"].is_empty()


# --- applicants by year (SPEC §3: optional year, facts from that year until the next row) ----------------

def firm(year: int | None, **values: str) -> dict[str, str | None]:
    """A row of applicant IDS[0] holding from YEAR (None: no year)."""
    return good_row("applicants", 0) | {"year": None if year is None else str(year)} | values


def test_an_applicants_rows_by_year_are_all_accepted_and_kept_in_its_region():
    applicants = [firm(2021, size="small"), firm(2023, size="medium", name="renamed"), good_row("applicants", 1)]
    rd = [good_row("rd", 0), good_row("rd", 2)]
    raw, v = run(applicants=applicants, rd=rd)
    assert v.rejected.is_empty()
    assert v.accepted["applicants"][ROW].to_list() == [2, 3, 4]
    assert v.by_region["xuhui"]["applicants"].filter(pl.col("applicant_id") == IDS[0])["size"].to_list() == ["small", "medium"]
    assert v.accepted["rd"].height == 2 and v.by_region["xuhui"]["rd"].height == 2  # the firm's rows named once each
    for name in LEDGERS:  # rows read = accepted + rejected
        assert raw[name].height == v.accepted[name].height + v.rejected.filter(ledger=name)["row"].n_unique()


@pytest.mark.parametrize("column, value", [
    ("region", "lingang"),
    ("established_on", "2018-05-01"),
    ("relocated_out_on", "2024-01-01"),
    ("fraud_found_on", None),  # a row without the date the others give disagrees too
])
def test_an_applicants_rows_that_disagree_on_region_or_dates_are_all_rejected(column, value):
    applicants = [firm(2021), firm(2022), firm(2023) | {column: value}, good_row("applicants", 1)]
    rd = [good_row("rd", 0), good_row("rd", 1) | {"applicant_id": IDS[1]}]
    raw, v = run(applicants=applicants, rd=rd)
    got = v.rejected.filter(ledger="applicants")
    assert got.select("row", "column").rows() == [(2, column), (3, column), (4, column)]
    assert set(got["reason"]) == {f"applicant_rows_disagree: this applicant's rows 2, 3, 4 give different {column}"}
    assert got["value"].to_list()[2] == value
    assert v.accepted["applicants"]["applicant_id"].to_list() == [IDS[1]]
    # the firm is unknown to the other ledgers, as a rejected applicant is
    assert v.rejected.filter(ledger="rd").select("row", "reason").rows() == [(2, UNKNOWN_APPLICANT)]
    assert v.accepted["rd"]["applicant_id"].to_list() == [IDS[1]]
    for name in LEDGERS:
        assert raw[name].height == v.accepted[name].height + v.rejected.filter(ledger=name)["row"].n_unique()


def test_a_repeated_applicant_and_year_is_a_duplicate_key_and_the_applicants_other_rows_go_with_it():
    applicants = [firm(2021), firm(2023, size="medium"), firm(2023, size="large"), good_row("applicants", 1)]
    _, v = run(applicants=applicants)
    assert v.rejected.select("row", "column", "value", "reason").rows() == [
        (2, "applicant_id", IDS[0], "applicant_incomplete: another row of this applicant was refused (rows 3, 4)"),
        (3, "applicant_id|year", f"{IDS[0]}|2023", "duplicate_key: applicant_id, year repeats on rows 3, 4"),
        (4, "applicant_id|year", f"{IDS[0]}|2023", "duplicate_key: applicant_id, year repeats on rows 3, 4"),
    ]
    assert v.accepted["applicants"]["applicant_id"].to_list() == [IDS[1]]


def test_one_bad_row_of_an_applicant_leaves_it_unknown():
    """A 2023 row refused would leave 2023 on the 2021 facts: the applicant is refused whole."""
    _, v = run(applicants=[firm(2021), firm(2023, size="huge")])
    assert v.rejected.select("row", "reason").rows() == [
        (2, "applicant_incomplete: another row of this applicant was refused (rows 3)"),
        (3, "not_allowed: expected one of large, medium, small, micro (or their Chinese names)"),
    ]
    assert v.accepted["applicants"].is_empty()


def test_without_years_an_applicant_has_one_row():
    """No year (the column absent or empty): keyed by applicant_id alone, as before; one row with no year
    beside dated ones is the applicant's first."""
    _, v = run(applicants=[firm(None), firm(None, size="medium")])
    assert v.rejected.select("row", "column", "value", "reason").rows() == [
        (2, "applicant_id", IDS[0], "duplicate_key: applicant_id repeats on rows 2, 3"),
        (3, "applicant_id", IDS[0], "duplicate_key: applicant_id repeats on rows 2, 3"),
    ]
    _, v = run(applicants=[firm(None), firm(2022, size="medium")])
    assert v.rejected.is_empty() and v.accepted["applicants"].height == 2


def test_the_row_in_force_for_a_year():
    """The latest row up to the year; before the first row, the first (a row with no year comes first)."""
    from transforms.facts import facts_for, in_force

    rows = pl.DataFrame({"applicant_id": ["A", "A", "A", "B", "B"], "year": [2021, 2023, 2025, None, 2022],
                         "size": ["small", "medium", "large", "micro", "small"]})
    lines = pl.DataFrame({"applicant_id": ["A"] * 6 + ["B"] * 3 + ["C"],
                          "y": [2019, 2021, 2022, 2023, 2024, 2026, 2019, 2021, 2022, 2022]})
    got = facts_for(lines, rows, "y", ["size"])
    assert got["size"].to_list() == ["small", "small", "small", "medium", "medium", "large", "micro", "micro", "small", None]
    assert got.columns == ["applicant_id", "y", "size"]
    assert in_force(rows, 2022).rows() == [("A", "small"), ("B", "small")]
    assert in_force(rows, 2020).rows() == [("A", "small"), ("B", "micro")]


def test_uscc_valid_expr_matches_is_valid():
    codes = [*IDS, FLIPPED, "short", "I" * 18, None]
    got = pl.select(uscc.valid_expr(pl.lit(pl.Series(codes)))).to_series().to_list()
    assert got == [None if c is None else uscc.is_valid(c) for c in codes]


def test_projects_year_need_not_be_the_acceptance_year():
    """A project has a row per year; its accepted_on is one date for all of them."""
    _, v = run(projects=[good_row("projects", 0), good_row("projects", 1) | {"accepted_on": "2021-03-01"}])
    assert v.rejected.is_empty()


def test_recognition_must_name_an_existing_row_for_a_clause_paying_on_rows():
    """lingang.2a pays on a projects row: its recognition names the project (issue 8: unknown_matter)."""
    projects = [good_row("projects", 0)]
    recognitions = [good_row("recognitions", 0) | {"clause_id": "lingang.2a", "matter_id": "project_id-0"},
                    good_row("recognitions", 1) | {"clause_id": "lingang.2a", "matter_id": "P-NOWHERE"},
                    good_row("recognitions", 2) | {"clause_id": "xuhui.1", "matter_id": "LAB-1"}]  # no ledger base
    _, v = run({"lingang.2a": "projects"}, projects=projects, recognitions=recognitions)
    assert v.rejected.select("ledger", "row", "column", "value").rows() == [("recognitions", 3, "matter_id", "P-NOWHERE")]
    assert v.rejected["reason"][0] == "unknown_matter: clause lingang.2a pays on a projects row and no projects row has this id"
    assert v.accepted["recognitions"][ROW].to_list() == [2, 4]


def test_rows_summing_beyond_the_bound_are_refused_not_wrapped():
    """Ten thousand bills of 9,999,999,999,999.99 sum past 2^63 fen (issue 8): the set is refused."""
    big = [good_row("compute", 0) | {"row_id": f"B{i}", "amount": "9999999999999.99"} for i in range(10_000)]
    small = [good_row("compute", 0) | {"row_id": "OTHER", "applicant_id": IDS[1], "amount": "9999999999999.99"}]
    applicants = [good_row("applicants", 0), good_row("applicants", 1)]
    _, v = run(applicants=applicants, compute=big + small)
    assert v.rejected.height == 10_000
    assert set(v.rejected["reason"]) == {"sum_out_of_range: this applicant's amount rows sum beyond "
                                         "100,000,000,000,000.00 yuan"}
    assert set(v.rejected["column"]) == {"amount"}
    assert v.accepted["compute"]["row_id"].to_list() == ["OTHER"]  # another applicant's row is its own set


def test_the_bound_is_per_applicant_even_when_the_column_total_passes_it():
    """Five applicants at 6/10 of the bound each: the column's total is beyond it, no applicant is."""
    applicants = [good_row("applicants", i) for i in range(5)]
    rows = [good_row("compute", 0) | {"row_id": f"B{i}{k}", "applicant_id": IDS[i], "amount": "6000000000000.00"}
            for i in range(5) for k in range(10)]  # 10 rows x 6 trillion: 60 trillion per applicant, 300 in all
    _, v = run(applicants=applicants, compute=rows)
    assert v.rejected.is_empty() and v.accepted["compute"].height == 50
    over = rows + [good_row("compute", 0) | {"row_id": f"X{k}", "applicant_id": IDS[4], "amount": "6000000000000.00"}
                   for k in range(7)]  # applicant 4: 102 trillion
    _, v = run(applicants=applicants, compute=over)
    assert set(v.rejected["applicant_id"]) == {IDS[4]} and v.rejected.height == 17


def test_malformed_rows_are_rejected_alone():
    """What the reader marks as a malformed record is one rejected line; its values are not checked."""
    from disburse.ledgers import MALFORMED

    rows = [good_row("rd", 0), good_row("rd", 1) | {"rd_expense": "x"}, good_row("rd", 2)]
    raw = frame("rd", rows).with_columns(
        pl.Series(MALFORMED, [None, "malformed_row: 4 fields where the header has 3", None], dtype=pl.String))
    base = {n: empty_raw(l) for n, l in LEDGERS.items()} | {"applicants": frame("applicants", [good_row("applicants", 0)])}
    v = validate(base | {"rd": raw}, REGIONS, CLAUSES)
    assert v.rejected.select("ledger", "row", "column", "reason", "applicant_id").rows() == [
        ("rd", 3, None, "malformed_row: 4 fields where the header has 3", IDS[0])]
    assert v.accepted["rd"][ROW].to_list() == [2, 4]


def test_one_pass_finds_exactly_what_the_pandera_schema_finds():
    """The value rules are evaluated in one polars pass; pandera's schema of the same rules is the record."""
    from transforms.validate import OWNER, _owners, _value_faults, schema
    import pandera.polars as pa

    bad = [("amount", "12.345"), ("amount", "-5"), ("amount", None), ("billed_on", "2021-02-30"),
           ("category", "gpu"), ("year", "１９"), ("applicant_id", IDS[3]), ("billed_on", None)]
    rows = [good_row("compute", 0)] + [good_row("compute", i) | {col: v} for i, (col, v) in enumerate(bad, 1)]
    rows[3] |= {"category": "gpu", "amount": "-1"}  # several faults on one row
    df = frame("compute", rows)
    known = {"region": REGIONS, "clause_id": CLAUSES, "applicant_id": pl.Series([IDS[0]])}
    with pytest.raises(pa.errors.SchemaErrors) as err:
        schema(LEDGERS["compute"], known).validate(df, lazy=True)
    fc = err.value.failure_cases
    want = sorted((df[ROW][i], c, v, "missing_value" if chk == "not_nullable" else chk)
                  for i, c, v, chk in fc.select("index", "column", "failure_case", "check").iter_rows())
    mine = _value_faults(df, LEDGERS["compute"], known)
    got = sorted((r, c, v, reason if not reason.startswith("missing_value") else "missing_value")
                 for r, c, v, reason in mine.iter_rows())
    assert got == want and len(got) > len(bad)
    # as validate() runs it: each row's applicant looked up once for every ledger (_owners), not by is_in
    owners = _owners({"compute": df}, pl.DataFrame({"applicant_id": [IDS[0]], "region": [REGIONS[0]]}), REGIONS)
    looked_up = _value_faults(df.with_columns(owners["compute"].alias(OWNER)), LEDGERS["compute"], known)
    assert looked_up.equals(mine)
    assert looked_up.filter(pl.col("reason").str.starts_with("unknown_applicant"))["value"].to_list() == [IDS[3]]


def test_typed_parquet_is_checked_as_its_text_would_be(tmp_path: Path) -> None:
    """A database export's typed Parquet (Decimal money and rates, Int64 years, Date, Boolean) is checked
    on its types, never printed and parsed back: same rows accepted, same faults, same values shown."""
    from disburse.ledgers import read_ledgers
    from decimal import Decimal as D

    rows = {n: [good_row(n, i) for i in range(3)] for n in LEDGERS}
    rows["applicants"] = [good_row("applicants", 0)]
    for n in LEDGERS:
        if n != "applicants":
            for r in rows[n]:
                r["applicant_id"] = IDS[0]
    rows["compute"][1]["amount"] = "12.345"        # three decimals
    rows["compute"][2]["amount"] = "-5"            # negative
    rows["rd"][1]["year"] = "1989"                 # before every year a ledger may hold
    rows["recognitions"][1]["approved_rate"] = "1.5"
    rows["recognitions"][2]["quantity"] = "-1"
    rows["rent"][1]["area_m2"] = "-3.5"  # a float shows as polars prints it (-3 would be -3.0)
    text_dir, typed_dir = tmp_path / "text", tmp_path / "typed"
    text_dir.mkdir(), typed_dir.mkdir()
    types = {MONEY: pl.Decimal(18, 3), RATE: pl.Decimal(18, 6), INT: pl.Int64, NUMBER: pl.Float64}
    for n, ledger in LEDGERS.items():
        df = pl.DataFrame(rows[n], schema={c: pl.String for c in ledger.column_names})
        df.write_csv(text_dir / f"{n}.csv")
        typed = df.with_columns(
            pl.col(c.name).str.to_date("%Y-%m-%d") if c.type == DATE else
            (pl.col(c.name) == "true") if c.type == BOOL else
            pl.col(c.name).cast(types[c.type]) if c.type in types else pl.col(c.name)
            for c in ledger.columns)
        typed.write_parquet(typed_dir / f"{n}.parquet")
    raw_text, raw_typed = read_ledgers(text_dir)[0], read_ledgers(typed_dir)[0]
    assert raw_typed["compute"].schema["amount"] == pl.Decimal(18, 3)  # kept typed
    a = validate(raw_text, REGIONS, CLAUSES)
    b = validate(raw_typed, REGIONS, CLAUSES)
    for n in LEDGERS:
        assert a.accepted[n].equals(b.accepted[n]), n
    assert sorted(a.rejected.rows()) == sorted(b.rejected.rows())
    assert {r for r in b.rejected["reason"]} >= {"negative_amount: money cannot be negative"}
    assert b.rejected.filter(pl.col("reason").str.starts_with("bad_money"))["value"].to_list() == ["12.345"]


@pytest.mark.parametrize("values, column, reason", [
    ({"installment": None}, "installment", "incomplete_installment"),
    ({"installments": None, "award": None}, "award", "incomplete_installment"),
    ({"installment": "0"}, "installment", "bad_installment: installment 0 is not from 1 to installments 3"),
    ({"installment": "4"}, "installment", "bad_installment"),
    ({"installment": "2", "installments": "2"}, "installments", "installments_mismatch: clause xuhui.1 pays in 3 installment(s)"),
    ({"award": "100.49"}, "award", "award_below_amount"),
], ids=["installment alone missing", "two missing", "installment 0", "past the last", "not the clause's count",
        "award below the amount"])
def test_a_prior_payment_in_installments_is_checked(values, column, reason):
    """SPEC §3: installment, installments and award together or not at all, 1 <= installment <= installments,
    installments the clause's own count, award at least the amount (here 100.50, under a clause paying in 3)."""
    row = good_row("prior_payments", 0) | {"installment": "2", "installments": "3", "award": "251.25"}
    raw = {n: empty_raw(l) for n, l in LEDGERS.items()}
    raw["applicants"] = frame("applicants", [good_row("applicants", 0)])
    raw["prior_payments"] = frame("prior_payments", [row, good_row("prior_payments", 1) | {**row, "year": "2022"} | values])
    v = validate(raw, REGIONS, CLAUSES, installment_counts={"xuhui.1": 3, "lingang.2a": 1})
    assert v.accepted["prior_payments"][ROW].to_list() == [2]
    faults = v.rejected.filter(pl.col("column") == column)
    assert faults["row"].to_list() == [3] and faults["reason"][0].startswith(reason), v.rejected


def test_a_prior_payment_made_at_once_pays_its_whole_award():
    """Under a clause paying at once, a row giving the columns is installment 1 of 1 of its amount; a row
    without them is accepted as before."""
    at_once = good_row("prior_payments", 0) | {"clause_id": "lingang.2a", "installment": "1", "installments": "1",
                                               "award": "100.50"}
    bigger = good_row("prior_payments", 1) | {**at_once, "year": "2022", "award": "200.00"}
    plain = good_row("prior_payments", 2) | {"installment": None, "installments": None, "award": None}
    raw = {n: empty_raw(l) for n, l in LEDGERS.items()}
    raw["applicants"] = frame("applicants", [good_row("applicants", 0)])
    raw["prior_payments"] = frame("prior_payments", [at_once, bigger, plain])
    v = validate(raw, REGIONS, CLAUSES, installment_counts={"xuhui.1": 3, "lingang.2a": 1})
    assert v.accepted["prior_payments"][ROW].to_list() == [2, 4]
    assert v.rejected.select("row", "column").rows() == [(3, "award")]
    assert v.rejected["reason"][0].startswith("award_not_amount")
