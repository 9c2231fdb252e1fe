"""The audit a finance officer reads, the phrase table, the Excel handoff: on the demo ledgers.

The demo is paid for 2021 and 2022 once per module (2022 then has a previous
year to compare with); tests that need the paged layout run their own.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import zipfile
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from disburse import audit, phrases
from disburse.excel import write_payments_xlsx
from disburse.job import run_year
from transforms import explain

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "fixtures" / "demo"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "out"
    # 2021 first, so its audit has no previous year; 2020 (which has rows) left out on purpose
    run_year(DEMO, out, 2021, params_file=DEMO / "params.yaml", allow_gaps=True)
    run_year(DEMO, out, 2022, params_file=DEMO / "params.yaml", allow_gaps=True)
    return out


# --- one phrase table -------------------------------------------------------------------

def test_every_reason_code_the_engine_can_emit_has_a_chinese_phrase() -> None:
    codes = explain.reason_codes()  # from compute's eligibility checks and period limits, and explain's flags
    assert {"outside_validity", "ineligible:sector", "cap:annual", "superseded_by", "installment",
            "period:first_year_only"} <= codes
    missing = sorted(code for code in codes if not CJK.search(phrases.phrase(code) or ""))
    assert not missing, f"reason codes without a Chinese phrase in disburse/phrases.py: {missing}"


def test_every_validation_fault_has_a_chinese_phrase() -> None:
    source = (ROOT / "transforms" / "validate.py").read_text(encoding="utf-8")
    codes = set(re.findall(r'"([a-z_]+): ', source))  # every reason validate.py writes starts "code: "
    assert {"bad_money", "missing_value", "duplicate_key", "unknown_applicant"} <= codes
    assert not sorted(c for c in codes if c not in phrases.REJECTIONS)


def test_valued_codes_put_their_value_in_the_phrase() -> None:
    assert phrases.reasons_text("cap:annual;superseded_by:lingang.4;installment:2/3") == \
        "年度上限；就高不重复：由 lingang.4 替代；分期拨付第 2/3 期"
    got = pl.DataFrame({"r": ["cap:annual;superseded_by:lingang.4;installment:2/3", "", None, "no_such_code"]}).select(
        phrases.reasons_expr("r"))["r"].to_list()
    assert got == ["年度上限；就高不重复：由 lingang.4 替代；分期拨付第 2/3 期", "", "", "no_such_code"]


def test_every_reason_on_the_demo_lines_has_a_phrase(demo: Path) -> None:
    lines = pl.concat([pl.read_parquet(f) for f in sorted(demo.glob("*/*/audit_lines.parquet"))])
    codes = set(lines["reasons"].drop_nulls().str.split(";").explode().to_list()) - {""}
    assert len(codes) > 10
    assert not sorted(c for c in codes if phrases.phrase(c) is None)
    words = lines.select(phrases.reasons_expr("reasons"))["reasons"].to_list()
    assert words == [phrases.reasons_text(r) for r in lines["reasons"].to_list()]  # the two renderings agree


# --- the region page ---------------------------------------------------------------------

def test_demo_audit_answers_why_this_amount_in_chinese(demo: Path) -> None:
    manifest = json.loads((demo / "2022" / "manifest.json").read_text(encoding="utf-8"))
    page = (demo / "2022" / "lingang" / "audit.html").read_text(encoding="utf-8")
    for heading in ("概要", "按条款汇总", "上限的作用", "就高不重复", "被拒绝的输入行", "追回", "与上年比较",
                    "每户应付金额分布", "逐户明细", "条款原文"):
        assert f"<h2>{heading}" in page, heading
    assert manifest["run_id"] in page and manifest["rules_fingerprint"] in page
    assert manifest["regions"]["lingang"]["total_payable"] in page.replace(",", "")
    assert "lingang.4</a></td><td>信息基础设施费用补贴" in page                       # clause id beside its title
    assert "<h1>产业扶持资金兑付审计：临港新片区（lingang），2022 年度</h1>" in page  # the region by its Chinese name
    assert "算力账单 第 " in page and "compute 第 " not in page                       # steps cite ledgers in Chinese
    assert "每年 30 万元以下的，给予 10% 的补贴" in page                               # the article quoted
    assert page.count("<svg") == 2 and "<script" not in page
    assert 'class="firm"' in page and "小计" in page                                  # per-applicant subtotals
    assert "上年（2021）应付" in page                                                # against the previous year
    first = (demo / "2021" / "lingang" / "audit.html").read_text(encoding="utf-8")
    assert "no previous year" in first
    # every line's steps are on the page, and no reason code is shown without its words
    lines = pl.read_parquet(demo / "2022" / "lingang" / "audit_lines.parquet")
    assert page.count("<tr") >= lines.height
    assert "ineligible:" not in page.split("<h2>逐户明细")[1]


def test_audit_files_are_self_contained(demo: Path) -> None:
    for page in demo.glob("*/*/audit.html"):
        text = page.read_text(encoding="utf-8")
        outside = re.findall(r'(?:src|href)\s*=\s*"(?!#)([^"]*)"|url\(|@import|https?://(?!www\.w3\.org/2000/svg)', text)
        assert not [o for o in outside if o], f"{page}: refers outside itself: {outside[:3]}"


def test_superseded_lines_name_what_superseded_them(demo: Path) -> None:
    lines = pl.concat([pl.read_parquet(f) for f in sorted(demo.glob("*/*/audit_lines.parquet"))])
    gone = lines.filter(pl.col("superseded_by").is_not_null()).row(0, named=True)
    page = (demo / str(gone["year"]) / gone["region"] / "audit.html").read_text(encoding="utf-8")
    section = page.split("<h2>就高不重复")[1].split("<h2>")[0]
    assert gone["clause_id"] in section and gone["superseded_by"] in section and gone["applicant_id"] in section


# --- at any scale: the paged layout --------------------------------------------------------

def test_past_the_threshold_the_detail_moves_to_small_paged_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(audit, "DETAIL_LIMIT", 10)
    monkeypatch.setattr(audit, "PAGE_LINES", 12)
    monkeypatch.setattr(audit, "PAGE_APPLICANTS", 4)
    monkeypatch.setattr(audit, "INDEX_ROWS", 5)
    out = tmp_path / "out"
    manifest, _ = run_year(DEMO, out, 2021, params_file=DEMO / "params.yaml", allow_gaps=True)  # 2021 alone
    region = out / "2021" / "lingang"
    lines = pl.read_parquet(region / "audit_lines.parquet")
    page = (region / "audit.html").read_text(encoding="utf-8")
    assert 'class="firm"' not in page and "<h2>按条款汇总" in page        # summary only
    pages = sorted((region / "audit").glob("applicants-*.html"))
    indexes = sorted((region / "audit").glob("index-*.html"))
    assert len(pages) >= 3 and len(indexes) >= 2
    assert all(f'href="audit/{p.name}"' in page for p in indexes)
    seen: dict[str, str] = {}
    shown_lines = 0
    for p in pages:
        text = p.read_text(encoding="utf-8")
        ids = re.findall(r'<tbody id="a-([^"-]+)(?:-\d+)?">', text)
        assert len(ids) <= 4
        seen |= dict.fromkeys(ids, p.name)
        shown_lines += text.count("<tr") - text.count('class="firm"') - 1  # less the header row
        for clause in set(re.findall(r'href="#c-([^"]+)"', text)):
            assert f'id="c-{clause}"' in text                                   # quoted on the same page
    assert set(seen) == set(lines["applicant_id"]) and shown_lines == lines.height
    listed = "".join(p.read_text(encoding="utf-8") for p in indexes)
    for applicant, name in seen.items():
        assert f'href="{name}#a-{applicant}"' in listed
    # one search page: the index inline, one inline script, nothing from elsewhere
    search = (region / "audit" / "search.html").read_text(encoding="utf-8")
    assert 'href="audit/search.html"' in page and all('href="search.html"' in p.read_text(encoding="utf-8") for p in pages)
    assert search.count("<script") == 1 and "<script>" in search and "src=" not in search and "http" not in search
    firms = lines.select("applicant_id", "applicant_name").unique()
    for applicant, name in firms.iter_rows():
        assert f'["{applicant}","{name}",{int(seen[applicant].split("-")[1].split(".")[0])}]' in search
    outputs = manifest["regions"]["lingang"]["outputs"]
    assert outputs["lingang/audit/search.html"]["rows"] == firms.height
    for p in [*pages, *indexes, region / "audit.html", region / "payments.xlsx", region / "audit" / "search.html"]:
        entry = outputs[f"lingang/{p.relative_to(region)}"]
        assert len(entry["sha256"]) == 64 and entry["rows"] >= 1


def test_an_applicant_with_more_lines_than_a_page_is_split_across_pages() -> None:
    n = 7
    lines = pl.DataFrame({
        "applicant_id": ["B"] * n + ["A", "C"], "applicant_name": ["乙"] * n + ["甲", "丙"],
        "clause_id": ["x.1"] * (n + 2), "clause_title": ["t"] * (n + 2), "article": ["一"] * (n + 2),
        "matter_id": [f"m{i}" for i in range(n + 2)], "year_of_matter": [2021] * (n + 2), "installment": [1] * (n + 2),
        "installments": [1] * (n + 2),
        "payable_fen": [100] * (n + 2), "steps": ["s"] * (n + 2), "reasons": [""] * (n + 2),
    })
    detail = audit.applicant_blocks(lines, part_lines=3)
    pages = audit.assign_pages(detail.blocks, page_lines=3, page_applicants=10)
    assert pages.select("applicant_id", "part", "n_lines", "lines", "payable_fen").rows() == [
        ("A", 0, 1, 1, 100), ("B", 0, 3, 7, 700), ("B", 1, 3, 7, 700), ("B", 2, 1, 7, 700), ("C", 0, 1, 1, 100)]
    per_page = pages.group_by("page").agg(pl.col("n_lines").sum())["n_lines"]
    assert per_page.max() <= 3 + 3 - 1  # a page closes once it holds page_lines lines: one block may straddle the mark
    html = detail.rows.group_by("block", maintain_order=True).agg(pl.col("html").str.join("\n"))["html"]
    assert html.len() == pages.height and all(h.startswith("<tbody") and h.endswith("</tbody>") for h in html)
    assert "乙（续）" in html[2] and 'id="a-B-1"' in html[2] and html[2].count("<tr") == 1 + 3


# --- in a browser ------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def open_in_chromium(page: Path, screenshot: Path) -> tuple[list[str], float]:
    """Console messages logged while Chromium loads PAGE (and seconds taken, browser start included)."""
    started = time.perf_counter()
    done = subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--hide-scrollbars",
         "--enable-logging=stderr", "--v=0", "--window-size=1280,1600", f"--screenshot={screenshot}", page.as_uri()],
        capture_output=True, text=True, timeout=300, cwd=screenshot.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    return console, time.perf_counter() - started


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it with apt-get)")
def test_demo_audit_opens_in_chromium_without_console_errors(demo: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text("<!doctype html><script>console.error('audit-test-error'); nosuch();</script>", encoding="utf-8")
    caught, _ = open_in_chromium(broken, tmp_path / "broken.png")
    assert any("audit-test-error" in c for c in caught), "the console check must see a console error"
    shot = tmp_path / "audit.png"
    console, seconds = open_in_chromium(demo / "2022" / "lingang" / "audit.html", shot)
    assert console == []
    assert shot.stat().st_size > 50_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"audit.html opened in {seconds:.1f} s (browser start included); screenshot {shot}")


def search_in_chromium(page: Path, queries: list[str]) -> list[str]:
    """PAGE (audit/search.html) opened in Chromium with a probe that types each query into the box; the
    probe's console lines: query, rows listed, the count shown, milliseconds the search took."""
    probe = "".join(
        f"""{{ const a = performance.now(); box.value = {json.dumps(q)}; box.dispatchEvent(new Event("input"));
        console.log("probe|" + {json.dumps(q)} + "|" + hits.rows.length + "|" + count.textContent + "|"
                    + (performance.now() - a).toFixed(1)); }}\n""" for q in queries)
    harness = page.with_name("_probe.html")
    harness.write_text(page.read_text(encoding="utf-8").replace("</body>", f"<script>{probe}</script></body>"),
                       encoding="utf-8")
    try:
        done = subprocess.run([CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
                               "--enable-logging=stderr", "--v=0", "--dump-dom", harness.as_uri()],
                              capture_output=True, text=True, timeout=300)
    finally:
        harness.unlink()
    errors = [line for line in done.stderr.splitlines() if "Uncaught" in line]
    assert not errors, errors
    return [line.split("probe|", 1)[1].split('", source')[0] for line in done.stderr.splitlines() if "probe|" in line]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it with apt-get)")
def test_the_search_page_finds_a_firm_by_name_or_id_offline(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(audit, "DETAIL_LIMIT", 10)
    out = tmp_path / "out"
    run_year(DEMO, out, 2021, params_file=DEMO / "params.yaml", allow_gaps=True)
    region = out / "2021" / "lingang"
    firms = pl.read_parquet(region / "audit_lines.parquet").select("applicant_id", "applicant_name").unique()
    applicant, name = firms.sort("applicant_id").row(0)
    part = name[2:5]  # a piece from inside the name
    expected = firms.filter(pl.col("applicant_name").str.contains(part, literal=True)).height
    found = search_in_chromium(region / "audit" / "search.html", [part, applicant[-6:].lower(), "无此企业名称"])
    assert found[0].split("|")[:3] == [part, str(expected), f"匹配 {expected} 户"]
    assert found[1].split("|")[1] == str(firms.filter(pl.col("applicant_id").str.contains(applicant[-6:])).height)
    assert found[2].split("|")[1:3] == ["0", "没有匹配的申报主体"]


# --- payments.xlsx --------------------------------------------------------------------------------

def _yuan(v) -> Decimal:
    return Decimal(str(v)).quantize(Decimal("0.01"))


def test_payments_xlsx_reconciles_with_the_csv_files_to_the_fen(demo: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    manifest = json.loads((demo / "2022" / "manifest.json").read_text(encoding="utf-8"))
    region = demo / "2022" / "lingang"
    wb = openpyxl.load_workbook(region / "payments.xlsx", read_only=True)
    assert wb.sheetnames == ["封面", "付款", "明细", "条款汇总"]
    cover = {r[0]: r[1] for r in wb["封面"].iter_rows(values_only=True) if r[0]}
    assert cover["年度"] == 2022 and cover["区域"] == "临港新片区（lingang）" and cover["运行编号（run id）"] == manifest["run_id"]
    assert cover["规则指纹"] == manifest["rules_fingerprint"] and cover["参数指纹"] == manifest["params_fingerprint"]

    csv = pl.read_csv(region / "payments.csv", infer_schema=False)
    rows = list(wb["付款"].iter_rows(min_row=2, max_row=csv.height + 1, values_only=True))
    assert [r[0] for r in rows] == csv["applicant_id"].to_list() and all(isinstance(r[0], str) for r in rows)
    assert all(isinstance(r[2], (int, float)) for r in rows)
    assert [_yuan(r[2]) for r in rows] == [Decimal(v) for v in csv["total_payable"]]
    assert _yuan(cover["应付合计（元）"]) == sum(Decimal(v) for v in csv["total_payable"]) == \
        Decimal(manifest["regions"]["lingang"]["total_payable"])
    assert set(csv["year"]) == {"2022"} and set(csv["run_id"]) == {manifest["run_id"]}

    lines = pl.read_csv(region / "disbursements.csv", infer_schema=False)
    got = list(wb["明细"].iter_rows(min_row=2, values_only=True))
    assert len(got) == lines.height
    assert sum(_yuan(r[9]) for r in got) == sum(Decimal(v) for v in lines["payable"])
    by_clause = {r[0]: _yuan(r[4]) for r in wb["条款汇总"].iter_rows(min_row=2, values_only=True)}
    assert sum(by_clause.values()) == sum(Decimal(v) for v in csv["total_payable"])
    assert wb["付款"]["C2"].number_format == "#,##0.00"
    # the total row, a blank row below the data, reconciles with payments.csv and the manifest
    *data, blank, total = list(wb["付款"].iter_rows(min_row=2, values_only=True))
    assert len(data) == csv.height
    assert blank == (None, None, None) and total[0] == f"合计（{csv.height} 户）"
    assert _yuan(total[2]) == sum(Decimal(v) for v in csv["total_payable"]) == Decimal(manifest["regions"]["lingang"]["total_payable"])
    assert [r[0] for r in data] == csv["applicant_id"].to_list()


def test_payments_xlsx_has_filters_frozen_headers_and_a_block_to_sign(demo: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.load_workbook(demo / "2022" / "lingang" / "payments.xlsx")
    for name in ("付款", "明细", "条款汇总"):
        ws = wb[name]
        data_rows = sum(1 for r in ws.iter_rows(min_row=2, values_only=True) if r[0] and not str(r[0]).startswith("合计"))
        assert ws.freeze_panes == "A2" and ws.auto_filter.ref == f"A1:{openpyxl.utils.get_column_letter(ws.max_column)}{data_rows + 1}"
    cover = list(wb["封面"].iter_rows(values_only=True))
    at = next(i for i, r in enumerate(cover) if r[0] == "签批")
    assert cover[at][:4] == ("签批", "签名", None, "日期")
    assert [r[:4] for r in cover[at + 1:at + 4]] == [(role, None, "日期", None) for role in ("经办", "复核", "审批")]
    labels = {r[0]: r[1] for r in cover if r[0]}
    assert labels["审批状态"].startswith("未审批") and labels["审批人"] is None and labels["审批时间（北京时间）"] is None
    assert wb["封面"].cell(at + 2, 2).border.bottom.style == "thin"  # a line to sign on


def test_an_id_of_eighteen_digits_stays_text_in_excel(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    payments = pl.DataFrame({"applicant_id": ["913101150000000017", "0913101150000000"], "applicant_name": ["甲 & <乙>", ""],
                             "total_payable_fen": [123456789012, 1]})
    lines = pl.DataFrame({
        "applicant_id": ["913101150000000017"], "applicant_name": ["甲"], "clause_id": ["lingang.4"], "clause_title": ["t"],
        "matter_id": ["000123"], "installment": [1], "installments": [1], "base_fen": [None], "eff_rate_ppm": [500_000],
        "gross_fen": [5], "payable_fen": [5], "reasons": ["cap:annual"],
    }, schema_overrides={"base_fen": pl.Int64})
    totals = pl.DataFrame({"clause_id": ["lingang.4"], "clause_title": ["t"], "article": ["二、4"], "paid_lines": [1],
                           "payable_fen": [5]})
    path = tmp_path / "p.xlsx"
    write_payments_xlsx(path, year=2022, region="lingang", run_id="r", rules_fp="a", params_fp="b",
                        payments=payments, lines=lines, totals=totals)
    wb = openpyxl.load_workbook(path)
    assert [c.value for c in wb["付款"]["A"][1:3]] == ["913101150000000017", "0913101150000000"]
    assert wb["付款"]["B2"].value == "甲 & <乙>" and wb["付款"]["C2"].value == 1234567890.12
    assert wb["明细"]["E2"].value == "000123" and wb["明细"]["G2"].value is None and wb["明细"]["K2"].value == "年度上限"
    assert wb["付款"]["B3"].value is None  # an empty name is an empty cell
    # each distinct text once among the shared strings, whichever sheets use it (the clause id: lines and totals)
    with zipfile.ZipFile(path) as book:
        shared = re.findall(r"<t[^>]*>([^<]*)</t>", book.read("xl/sharedStrings.xml").decode("utf-8"))
    assert len(shared) == len(set(shared)) and shared.count("lingang.4") == 1 and "甲 &amp; &lt;乙&gt;" in shared
    assert wb["明细"]["C2"].value == wb["条款汇总"]["A2"].value == "lingang.4"


def test_a_page_whose_own_text_holds_the_body_marker_is_rendered_whole(tmp_path: Path) -> None:
    """Detail pages splice polars' bytes in at a marker; a title carrying the marker must not cut the page there."""
    from markupsafe import Markup

    from disburse.audit import BODY, _write_page

    def render(body: Markup) -> str:
        return f"<title>{BODY} in a title</title><table>{body}</table>"

    _write_page(tmp_path / "p.html", "<tr><td>行</td></tr>".encode(), render)
    assert (tmp_path / "p.html").read_text(encoding="utf-8") == f"<title>{BODY} in a title</title><table><tr><td>行</td></tr></table>"
    _write_page(tmp_path / "q.html", "<tr><td>行</td></tr>".encode(), lambda body: f"<table>{body}</table>")
    assert (tmp_path / "q.html").read_text(encoding="utf-8") == "<table><tr><td>行</td></tr></table>"
