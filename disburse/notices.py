"""兑付通知书: one printable notice per firm paid in a region's year, written on request (``disburse notices``).

Read from the year's written outputs (``OUT/Y/REGION/``: audit_lines.parquet, payments.csv,
clawbacks.csv, the manifest) and the state's record of the run: a notice says only what the run in place
pays. Each notice gives the firm's payable lines (clause title and article, matter, installment, amount),
each clause's article quoted, the total in figures and in Chinese capitals (``money.yuan_in_capitals``),
the installments still to come of an award paid in shares (the clause's shares of the award, due in the
years after, as the engine would pay them while the firm stays eligible) and what is to be recovered from
it. ``index.html`` lists every notice. A notice's lines add up to the firm's ``total_payable`` in
payments.csv; where they do not the files are not one run's and nothing is written.

Files are named by credit code (``<统一社会信用代码>.html``), A4 print stylesheet, self-contained, readable by
their owner only, and replace the directory's previous notices in one step.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import polars as pl
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from disburse.audit import _html
from disburse.money import apply_rate, fmt_fen, fmt_fen_expr, total_fen, yuan_in_capitals
from disburse.rules import Catalogue, compile_tables
from disburse.state import StateError
from disburse.tables import region_label

_env = Environment(loader=PackageLoader("disburse", "templates"), autoescape=select_autoescape())


class NoticeError(StateError):
    """The notices cannot be written (no run, files of another run, rules changed); one line."""


def _fen(col: str) -> pl.Expr:
    return (pl.col(col).cast(pl.Decimal(38, 2)) * 100).cast(pl.Int64)


def read_run(out_dir: Path, year: int, region: str, state_file: Path) -> dict:
    """The region's files of YEAR and what the state records of them; checked to be one run."""
    from disburse import state

    year_dir = out_dir / str(year)
    region_dir = year_dir / region
    manifest_path = year_dir / "manifest.json"
    if not manifest_path.is_file():
        raise NoticeError(f"{year_dir}: no run of {year} found (no manifest.json)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    doc = manifest.get("regions", {}).get(region)
    if doc is None:
        raise NoticeError(f"unknown region {region}: no files for it in {year_dir}")
    for name in ("audit_lines.parquet", "payments.csv", "clawbacks.csv"):
        if not (region_dir / name).is_file():
            raise NoticeError(f"{region_dir / name}: missing; run the year again")
    con = state.connect(state_file, read_only=True)
    try:
        record = state.run_records(con, year).get(region)
        approved = state.approved_regions(con, year).get(region)
    finally:
        con.close()
    if record is None or record["run_id"] != doc["run_id"]:
        raise NoticeError(f"{region_dir}: its files are of run {doc['run_id']}, which {state_file} does not record "
                          f"for {year} {region}; a notice says only what the recorded run pays")
    return {"manifest": manifest, "doc": doc, "approved": approved, "dir": region_dir}


def remaining_installments(lines: pl.DataFrame, shares: pl.DataFrame, year: int) -> pl.DataFrame:
    """The later installments of awards paid in shares whose installment K of N is paid this year: one row
    per installment K+1..N, due in year + (k - K), of the award's share (rounded as the engine rounds)."""
    paid = lines.filter((pl.col("payable_fen") > 0) & (pl.col("installments") > pl.col("installment")))
    return (
        paid.select("applicant_id", "clause_id", "clause_title", "article", "matter_id", "award_fen", "installments",
                    pl.col("installment").alias("_now"))
        .join(shares, on="clause_id", how="inner")
        .filter(pl.col("installment") > pl.col("_now"))
        .with_columns(
            (pl.lit(year) + pl.col("installment") - pl.col("_now")).alias("due_year"),
            (apply_rate(pl.col("award_fen"), pl.col("cum_ppm"))
             - apply_rate(pl.col("award_fen"), pl.col("prev_cum_ppm"))).alias("amount_fen"),
        )
        .sort("applicant_id", "clause_id", "matter_id", "installment")
    )


def write_notices(out_dir: Path, year: int, region: str, catalogue: Catalogue, *, state_file: Path,
                  to: Path) -> dict:
    """Every paid firm's notice and index.html into TO (replacing what was there); returns a summary."""
    run = read_run(out_dir, year, region, state_file)
    manifest, region_dir = run["manifest"], run["dir"]
    if manifest.get("rules_fingerprint") != catalogue.fingerprint:
        raise NoticeError(f"the rules changed since run {run['doc']['run_id']} (fingerprint "
                          f"{manifest.get('rules_fingerprint', '')[:12]} there, {catalogue.fingerprint[:12]} now): "
                          f"pass --rules with the rules of that run")
    policy = catalogue.policies[region]
    lines = pl.read_parquet(region_dir / "audit_lines.parquet")
    payments = pl.read_csv(region_dir / "payments.csv", infer_schema=False).select(
        "applicant_id", "applicant_name", _fen("total_payable").alias("total_fen"))
    claws = pl.read_csv(region_dir / "clawbacks.csv", infer_schema=False).select(
        "applicant_id", "clause_id", "matter_id", _fen("amount").alias("amount_fen"), "reason")
    paid = lines.filter(pl.col("payable_fen") > 0).sort("applicant_id", "clause_id", "matter_id", "year_of_matter",
                                                         "installment")
    sums = paid.group_by("applicant_id").agg(pl.col("payable_fen").cast(pl.Int128).sum().cast(pl.Int64).alias("lines_fen"))
    check = payments.join(sums, on="applicant_id", how="full", coalesce=True)
    wrong = check.filter(pl.col("total_fen").is_null() | pl.col("lines_fen").is_null()
                         | (pl.col("total_fen") != pl.col("lines_fen")))
    if wrong.height:
        raise NoticeError(f"{region_dir}: payments.csv and audit_lines.parquet disagree for {wrong.height} "
                          f"applicant(s) (first {wrong['applicant_id'][0]}): not one run's files")
    rules = {r.clause_id: r for r in catalogue.rules_of(region)}
    texts = pl.DataFrame([(cid, r.title, r.article, r.text) for cid, r in rules.items()],
                         schema={"clause_id": pl.String, "t_title": pl.String, "t_article": pl.String,
                                 "text": pl.String}, orient="row")
    later = remaining_installments(lines, compile_tables(catalogue)["shares"], year)
    label = region_label(region, policy.region_zh)
    place = policy.region_zh or region

    # each line's, installment's and clawback's <tr>, vectorised; then joined per firm
    line_rows = paid.with_columns(pl.format(
        '<tr><td>{}<br><small>{}</small></td><td class="id">{}</td><td class="num">{}/{}</td><td class="num">{}</td></tr>',
        _html("clause_title"), _html("article"), _html("matter_id"), pl.col("installment"), pl.col("installments"),
        fmt_fen_expr(pl.col("payable_fen"))).alias("_tr"))
    later_rows = later.with_columns(pl.format(
        '<tr><td>{}<br><small>{}</small></td><td class="id">{}</td><td class="num">{}/{}</td><td class="num">{} 年</td>'
        '<td class="num">{}</td></tr>',
        _html("clause_title"), _html("article"), _html("matter_id"), pl.col("installment"), pl.col("installments"),
        pl.col("due_year"), fmt_fen_expr(pl.col("amount_fen"))).alias("_tr"))
    titles = paid.select("clause_id", "clause_title", "article").unique("clause_id")
    claw_rows = claws.join(titles, on="clause_id", how="left").with_columns(pl.format(
        '<tr><td>{}<br><small class="id">{}</small></td><td class="id">{}</td><td class="num">{}</td><td>{}</td></tr>',
        _html(pl.col("clause_title").fill_null(pl.col("clause_id"))), _html("clause_id"), _html("matter_id"),
        fmt_fen_expr(pl.col("amount_fen")), _html("reason")).alias("_tr"))
    quoted = paid.select("applicant_id", "clause_id").unique().join(texts, on="clause_id", how="left").sort(
        "applicant_id", "clause_id").with_columns(pl.format(
            '<dt>{}（{}）</dt><dd>{}</dd>', _html(pl.col("t_title")), _html(pl.col("t_article")),
            _html(pl.col("text"))).alias("_tr"))

    def per_firm(df: pl.DataFrame, name: str) -> pl.DataFrame:
        return df.group_by("applicant_id", maintain_order=True).agg(pl.col("_tr").str.join("\n").alias(name))

    firms = (
        payments.join(per_firm(line_rows, "lines_html"), on="applicant_id", how="left")
        .join(per_firm(later_rows, "later_html"), on="applicant_id", how="left")
        .join(later.group_by("applicant_id").agg(pl.col("amount_fen").sum().alias("later_fen")), on="applicant_id", how="left")
        .join(per_firm(claw_rows, "claws_html"), on="applicant_id", how="left")
        .join(claws.group_by("applicant_id").agg(pl.col("amount_fen").sum().alias("claw_fen")), on="applicant_id", how="left")
        .join(per_firm(quoted, "quotes_html"), on="applicant_id", how="left")
        .join(paid.group_by("applicant_id").agg(pl.len().alias("n_lines")), on="applicant_id", how="left")
        .sort("applicant_id")
    )
    started = manifest.get("started_at")
    # the day the run started in China (UTC+8), as 公示名单 gives it
    date = (dt.datetime.fromisoformat(started) + dt.timedelta(hours=8)).date().isoformat() if started else ""
    common = {"year": year, "place": place, "label": label, "policy_title": policy.title, "run_id": run["doc"]["run_id"],
              "date": date, "approved": run["approved"]}
    from disburse.outputs import private_dir

    private_dir(to.parent)
    staging = to.with_name(f".{to.name}.part-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True, mode=0o700)
    page = _env.get_template("notice.html.j2")
    index_rows = []
    try:
        for f in firms.iter_rows(named=True):  # one file per firm
            name = f"{f['applicant_id']}.html"
            (staging / name).write_text(page.render(
                **common, firm=f, fmt=fmt_fen, capitals=yuan_in_capitals(f["total_fen"]),
                lines=Markup(f["lines_html"] or ""), later=Markup(f["later_html"] or ""),
                claws=Markup(f["claws_html"] or ""), quotes=Markup(f["quotes_html"] or "")), encoding="utf-8")
            index_rows.append({**f, "file": name})
        total = total_fen(firms["total_fen"])
        (staging / "index.html").write_text(_env.get_template("notice_index.html.j2").render(
            **common, firms=index_rows, fmt=fmt_fen, total=total, capitals=yuan_in_capitals(total)), encoding="utf-8")
        for p in staging.iterdir():
            p.chmod(0o600)
        old = to.with_name(f".{to.name}.old-{os.getpid()}")
        if to.exists():
            os.replace(to, old)
        os.replace(staging, to)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {"dir": to, "notices": firms.height, "total_fen": total, "region": label,
            "later": later.height, "clawbacks": int(firms["claw_fen"].is_not_null().sum())}

