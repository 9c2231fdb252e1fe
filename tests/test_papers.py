"""The papers a bureau signs and publishes, on the demo: 公示名单 (with every run) and 兑付通知书 (on request).

Each paper reconciles to the fen with payments.csv; the files are in the manifest, owner-only, covered by
``disburse verify``; the pages are self-contained and in Chinese.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from typer.testing import CliRunner

from disburse.cli import app
from disburse.job import run_year
from disburse.money import yuan_in_capitals

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "fixtures" / "demo"
REGIONS = ["changning", "hangzhou", "jinan", "lingang", "xuhui"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("papers") / "out"
    for year in (2020, 2021, 2022):
        run_year(DEMO, out, year, params_file=DEMO / "params.yaml")
    return out


def payments(region_dir: Path) -> dict[str, Decimal]:
    df = pl.read_csv(region_dir / "payments.csv", infer_schema=False)
    return {a: Decimal(t) for a, t in df.select("applicant_id", "total_payable").iter_rows()}


def notice_sheet(path: Path) -> list[tuple]:
    return list(openpyxl.load_workbook(path).active.iter_rows(values_only=True))


def html_amounts(text: str) -> list[Decimal]:
    return [Decimal(v.replace(",", "")) for v in re.findall(r'rowspan="\d+" class="num">([\d,]+\.\d\d)</td>', text)]


def test_public_notice_is_written_with_every_region_and_reconciles_with_payments(demo: Path) -> None:
    manifest = json.loads((demo / "2022" / "manifest.json").read_text(encoding="utf-8"))
    for region in REGIONS:
        d = demo / "2022" / region
        paid = payments(d)
        outputs = manifest["regions"][region]["outputs"]
        for name in ("公示名单.xlsx", "公示名单.html"):
            assert (d / name).stat().st_mode & 0o077 == 0, name            # owner-only
            assert f"{region}/{name}" in outputs and len(outputs[f"{region}/{name}"]["sha256"]) == 64
        rows = notice_sheet(d / "公示名单.xlsx")
        assert "2022 年度" in rows[0][0] and manifest["run_id"] in rows[2][0]
        assert rows[3] == ("序号", "企业名称", "统一社会信用代码", "条款", "金额（元，每户合计）")
        data, total = rows[4:-1], rows[-1]
        assert len(data) == outputs[f"{region}/公示名单.xlsx"]["rows"]
        # per firm (the default): the firm's total on its first row, which is payments.csv's total_payable
        firms = {code: Decimal(str(v)).quantize(Decimal("0.01")) for _, _, code, _, v in data if v is not None}
        assert firms == paid
        assert {code for _, _, code, _, _ in data} == set(paid) and [r[0] for r in data] == sorted(r[0] for r in data)
        assert total[0] == "合计" and Decimal(str(total[4] or 0)).quantize(Decimal("0.01")) == sum(paid.values(), Decimal(0))
        html = (d / "公示名单.html").read_text(encoding="utf-8")
        assert sum(html_amounts(html), Decimal(0)) == sum(paid.values(), Decimal(0))
        assert html.count('<tbody class="firm">') == len(paid) and manifest["run_id"] in html
        assert "<script" not in html and "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    lingang = notice_sheet(demo / "2022" / "lingang" / "公示名单.xlsx")
    assert lingang[0][0] == "临港新片区 2022 年度产业扶持资金兑付名单（公示）"
    assert any("信息基础设施费用补贴（二、4）" == r[3] for r in lingang[4:-1])
    result = CliRunner().invoke(app, ["verify", str(demo / "2022")])
    assert result.exit_code == 0, result.output


def test_verify_names_a_changed_public_notice(demo: Path, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "out"
    shutil.copytree(demo, out)
    page = out / "2022" / "jinan" / "公示名单.html"
    page.write_text(page.read_text(encoding="utf-8").replace("合计", "总计"), encoding="utf-8")
    result = CliRunner().invoke(app, ["verify", str(out / "2022")])
    assert result.exit_code == 1 and "jinan/公示名单.html: changed since the run" in result.output


@pytest.mark.parametrize("amounts", ["per_line", "none"])
def test_public_notice_settings_show_amounts_per_line_or_none_and_mask_codes(tmp_path: Path, amounts: str) -> None:
    params = tmp_path / "params.yaml"
    params.write_text((DEMO / "params.yaml").read_text(encoding="utf-8")
                      + f"\npublic_notice: {{amounts: {amounts}, mask_credit_code: true}}\n", encoding="utf-8")
    out = tmp_path / "out"
    for year in (2020, 2021):
        run_year(DEMO, out, year, params_file=params, region="lingang")
    d = out / "2021" / "lingang"
    paid = payments(d)
    rows = notice_sheet(d / "公示名单.xlsx")
    data = rows[4:-1]
    masked = {code[:6] + "********" + code[-4:] for code in paid}
    assert {r[2] for r in data} == masked                                   # the middle eight characters hidden
    html = (d / "公示名单.html").read_text(encoding="utf-8")
    assert not any(code in html for code in paid) and "中间八位以 * 代替" in html
    if amounts == "per_line":
        assert rows[3][4] == "金额（元）"
        by_firm: dict[str, Decimal] = {}
        for r in data:  # every row has its amount: summed per firm, they are payments.csv's
            by_firm[r[2]] = by_firm.get(r[2], Decimal(0)) + Decimal(str(r[4])).quantize(Decimal("0.01"))
        assert sorted(by_firm.values()) == sorted(paid.values())
        assert len(html.split('<td class="num">')) - 1 >= len(data)
    else:
        assert len(rows[3]) == 4 or rows[3][4] is None                       # no amount column
        assert all(len([c for c in r if c is not None]) == 4 for r in data)
        assert f"金额 {sum(paid.values(), Decimal(0)):,.2f} 元" in rows[-1][3]  # the list's total stays


def test_a_bad_public_notice_setting_stops_the_run_in_one_line(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("public_notice: {amounts: per_clause}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "--year", "2020", "--ledgers", str(DEMO), "--params", str(params),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "public_notice.amounts" in result.output
    assert not (tmp_path / "out" / "2020").exists()


def test_notices_one_per_paid_firm_reconcile_with_payments(demo: Path, tmp_path: Path) -> None:
    to = tmp_path / "notices"
    result = CliRunner().invoke(app, ["notices", "--year", "2022", "--region", "lingang", "--out", str(demo),
                                      "--to", str(to)])
    assert result.exit_code == 0, result.output
    d = demo / "2022" / "lingang"
    paid = payments(d)
    assert sorted(p.name for p in to.iterdir()) == sorted([f"{a}.html" for a in paid] + ["index.html"])
    assert all(p.stat().st_mode & 0o077 == 0 for p in to.iterdir())
    lines = pl.read_parquet(d / "audit_lines.parquet").filter(pl.col("payable_fen") > 0)
    for applicant, total in paid.items():
        page = (to / f"{applicant}.html").read_text(encoding="utf-8")
        assert "兑付通知书" in page and "@page { size: A4" in page and "<script" not in page
        rows = re.findall(r'<td class="num">(\d+)/(\d+)</td><td class="num">([\d,]+\.\d\d)</td></tr>', page)
        assert len(rows) == lines.filter(pl.col("applicant_id") == applicant).height
        assert sum((Decimal(a.replace(",", "")) for _, _, a in rows), Decimal(0)) == total   # the lines add up
        fen = int(total * 100)
        assert f"人民币{yuan_in_capitals(fen)}" in page and f"{total:,.2f}" in page
        for cid in lines.filter(pl.col("applicant_id") == applicant)["clause_id"].unique():   # every article quoted
            title = lines.filter(pl.col("clause_id") == cid)["clause_title"][0]
            assert f"<dt>{title}（" in page
    # lingang.8.1 pays 40%, 30%, 30%: the firm paid its second share in 2022 is told of its third, in 2023
    second = lines.filter((pl.col("clause_id") == "lingang.8.1") & (pl.col("installment") == 2)).row(0, named=True)
    page = (to / f"{second['applicant_id']}.html").read_text(encoding="utf-8")
    assert "以后年度分期拨付" in page and '<td class="num">3/3</td><td class="num">2023 年</td>' in page
    third = second["award_fen"] * 3 // 10  # 30% of the award, exact here
    assert f"{third // 100:,}.{third % 100:02d}" in page.split("以后年度分期拨付")[1]
    index = (to / "index.html").read_text(encoding="utf-8")
    assert index.count('<a href="9') == len(paid) and "临港新片区（lingang）" in index
    assert f"{sum(paid.values(), Decimal(0)):,.2f}" in index


def test_notices_carry_a_firms_clawbacks(demo: Path, tmp_path: Path) -> None:
    """The demo recovers only from firms it no longer pays: a clawbacks.csv row for a paid firm, as a run
    writes one (a firm found to have committed fraud after its year's lines), shows on that firm's notice."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(demo, out)
    d = out / "2022" / "lingang"
    firm = sorted(payments(d))[0]
    claws = pl.read_csv(d / "clawbacks.csv", infer_schema=False)
    row = {"applicant_id": firm, "clause_id": "lingang.4", "matter_id": firm, "amount": "12345.67",
           "reason": "2022-09-15 查实弄虚作假：追回已获得的全部支持资金"}
    pl.concat([claws, pl.DataFrame([row])]).write_csv(d / "clawbacks.csv", include_bom=True)
    to = tmp_path / "notices"
    assert CliRunner().invoke(app, ["notices", "--year", "2022", "--region", "lingang", "--out", str(out),
                                    "--to", str(to)]).exit_code == 0
    page = (to / f"{firm}.html").read_text(encoding="utf-8")
    assert "应追回资金" in page and "12,345.67" in page and "查实弄虚作假" in page
    others = [p for p in to.iterdir() if p.name not in (f"{firm}.html", "index.html")]
    assert others and not any("应追回资金" in p.read_text(encoding="utf-8") for p in others)


def test_notices_refuse_files_the_state_does_not_record(demo: Path, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "out"
    shutil.copytree(demo, out)
    manifest = out / "2022" / "manifest.json"
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    doc["regions"]["lingang"]["run_id"] = "20200101T000000Z-00000000"
    manifest.write_text(json.dumps(doc), encoding="utf-8")
    result = CliRunner().invoke(app, ["notices", "--year", "2022", "--region", "lingang", "--out", str(out)])
    assert result.exit_code == 2 and "does not record" in result.output
    assert not (out / "notices").exists()
    result = CliRunner().invoke(app, ["notices", "--year", "2022", "--region", "atlantis", "--out", str(out)])
    assert result.exit_code == 2 and "unknown region" in result.output
