"""The audit a finance officer reads (SPEC §4 ``audit.html``): one region's year, in Chinese, self-contained.

The region page holds the summary: headline totals and counts with the run
id, totals per clause with the article quoted, what each cap cut and how often
it bound, lines superseded under 就高不重复 and what superseded them, rejected
input rows by ledger and reason, clawbacks, the change against the previous
year, and two inline SVG charts. Every line's chain of steps follows, grouped
by applicant with a subtotal: on the region page itself while the region has
at most ``detail_limit`` lines; past that in ``audit/applicants-NNNN.html``
(at most PAGE_APPLICANTS applicants and about PAGE_LINES lines each; only an
applicant with more than PART_LINES lines is cut, and continues on the next
block) found through ``audit/index-NNNN.html`` (applicant id and name → page),
so every file stays small enough to open at once, however large the region.

Rows are rendered with polars string expressions (no Python loop over lines);
the loops here are over clauses, chart bars and page files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from disburse.money import fmt_fen, fmt_fen_expr, total_fen
from disburse.phrases import ledger_name, phrase, reasons_expr, rejection_expr
from disburse.tables import RegionResult

DETAIL_LIMIT = 1500   # lines: above it, the per-line detail moves to paged files (about 0.6 kB a line)
PAGE_LINES = 500      # lines per detail page
PAGE_APPLICANTS = 200  # applicants per detail page
PART_LINES = 250      # an applicant with more lines is cut into blocks of this many (a page: < PAGE_LINES + PART_LINES)
INDEX_ROWS = 1000     # applicants per index page
LIST_LIMIT = 200      # rows a summary table lists before it points to the files

_env = Environment(loader=PackageLoader("disburse", "templates"), autoescape=select_autoescape())


@dataclass
class RunInfo:
    """What identifies the run whose files these are."""
    run_id: str
    rules_fingerprint: str = ""
    params_fingerprint: str = ""
    gaps_allowed: tuple[int, ...] = ()  # earlier years never run, paid anyway with --allow-gaps
    date: str = ""                      # the day the run started, in China (UTC+8): 2024-01-15
    public_notice: object = None        # params.PublicNotice: what 公示名单 shows (None: the defaults)


_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
BODY = "\ue000body\ue000"  # where a page's body goes: rendered by polars as UTF-8, spliced in as bytes


def _html(col: str | pl.Expr) -> pl.Expr:
    """Text escaped for HTML, vectorised."""
    e = pl.col(col) if isinstance(col, str) else col
    # one pass over the text: an entity's own & is never escaped again
    return e.cast(pl.String).fill_null("").str.replace_many(list(_ENTITIES), list(_ENTITIES.values()))


def _fen(col: str) -> pl.Expr:
    return fmt_fen_expr(pl.col(col).fill_null(0))


# --- the summary --------------------------------------------------------------------

def clause_totals(lines: pl.DataFrame) -> pl.DataFrame:
    return (
        lines.group_by("clause_id", "clause_title", "article")
        .agg(pl.len().alias("lines"), (pl.col("payable_fen") > 0).sum().alias("paid_lines"),
             pl.col("gross_fen").cast(pl.Int128).sum().alias("gross_fen"),  # Int128: totals never wrap
             pl.col("payable_fen").cast(pl.Int128).sum().alias("payable_fen"))
        .sort("clause_id")
    )


def _has_code(code: str) -> pl.Expr:
    """The line's reasons hold CODE (alone, or with a value after a colon)."""
    return pl.col("reasons").fill_null("").str.contains(f"(^|;){re.escape(code)}(:[^;]*)?(;|$)")


def cap_effects(lines: pl.DataFrame) -> pl.DataFrame:
    """Per clause and cap: how many lines it bound and how much it cut (fen).

    An approved amount and what the matter received under competing clauses in earlier years are
    listed with the caps: they bound a line the same way."""
    cuts = {
        "approved_amount": pl.col("formula_fen") - pl.col("gross_fen"),
        "cap:item": pl.col("after_level_up_fen") - pl.col("after_item_fen"),
        "cap:annual": pl.col("kept_fen") - pl.col("after_annual_fen"),
        "cap:cumulative": pl.col("after_annual_fen") - pl.col("after_cumulative_fen"),
        "paid_before_under": pl.col("alone_fen") - pl.col("after_competing_fen"),
        "budget_prorated": pl.col("before_budget_fen") - pl.col("payable_fen"),
    }
    caps = {"approved_amount": None, "cap:item": "item_cap_applied_fen", "cap:annual": "annual_cap_fen",
            "cap:cumulative": "cumulative_cap_fen", "paid_before_under": None, "budget_prorated": None}
    parts = [
        lines.filter(_has_code(code)).group_by("clause_id", "clause_title").agg(
            pl.lit(code).alias("cap"),
            (pl.col(caps[code]).max() if caps[code] else pl.lit(None, pl.Int64)).alias("cap_fen"),
            pl.len().alias("lines"),
            cut.clip(lower_bound=0).sum().cast(pl.Int64).alias("cut_fen"),
        )
        for code, cut in cuts.items()
    ]
    out = pl.concat(parts) if parts else pl.DataFrame()
    return out.sort("clause_id", "cap") if out.height else out


def superseded(lines: pl.DataFrame, titles: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines set to zero under keep-the-highest: by (clause, clause that superseded it), and the lines themselves."""
    gone = lines.filter(pl.col("superseded_by").is_not_null())
    winners = titles.select(pl.col("clause_id").alias("superseded_by"), pl.col("clause_title").alias("winner_title"))
    pairs = (
        gone.group_by("clause_id", "clause_title", "superseded_by")
        .agg(pl.len().alias("lines"), pl.col("alone_fen").sum().alias("alone_fen"))
        .join(winners, on="superseded_by", how="left").sort("clause_id", "superseded_by")
    )
    listed = gone.sort("applicant_id", "clause_id", "matter_id").head(LIST_LIMIT).join(
        winners, on="superseded_by", how="left", maintain_order="left")
    return pairs, listed


def rejected_summary(rejected: pl.DataFrame) -> pl.DataFrame:
    """Rejected input rows per ledger and reason (a row with several faults counts under each)."""
    if rejected.is_empty():
        return pl.DataFrame(schema={"ledger": pl.String, "code": pl.String, "phrase": pl.String, "rows": pl.UInt32})
    return (
        rejected.with_columns(pl.col("reason").str.split_exact(":", 1).struct.field("field_0").alias("code"),
                              rejection_expr("reason").alias("phrase"))
        .group_by("ledger", "code", "phrase").agg(pl.col("row").n_unique().alias("rows"))
        .sort("ledger", "code")
    )


def applicant_totals(lines: pl.DataFrame) -> pl.DataFrame:
    return (
        lines.group_by("applicant_id")
        .agg(pl.col("applicant_name").first(), pl.col("payable_fen").sum().alias("payable_fen"), pl.len().alias("lines"))
        .sort("applicant_id")
    )


def previous_year(directory: Path) -> pl.DataFrame | None:
    """The previous year's payable lines of the region (applicant_id, clause_id, payable_fen), if it has outputs."""
    path = directory / "disbursements.parquet"
    if not path.is_file():
        return None
    return pl.read_parquet(path, columns=["applicant_id", "clause_id", "payable"]).select(
        "applicant_id", "clause_id", (pl.col("payable") * 100).cast(pl.Int64).alias("payable_fen"))


def year_change(lines: pl.DataFrame, previous: pl.DataFrame | None, titles: pl.DataFrame) -> dict | None:
    if previous is None:
        return None
    now = lines.group_by("clause_id").agg(pl.col("payable_fen").cast(pl.Int128).sum().alias("now_fen"))
    before = previous.group_by("clause_id").agg(pl.col("payable_fen").cast(pl.Int128).sum().alias("before_fen"))
    per_clause = (
        now.join(before, on="clause_id", how="full", coalesce=True)
        .with_columns(pl.col("now_fen", "before_fen").fill_null(0))
        .filter((pl.col("now_fen") != 0) | (pl.col("before_fen") != 0))
        .with_columns((pl.col("now_fen") - pl.col("before_fen")).alias("change_fen"))
        .join(titles.select("clause_id", "clause_title"), on="clause_id", how="left").sort("clause_id")
    )
    paid_now = set(lines.filter(pl.col("payable_fen") > 0)["applicant_id"].unique().to_list())
    paid_before = set(previous.filter(pl.col("payable_fen") > 0)["applicant_id"].unique().to_list())
    return {
        "clauses": per_clause.to_dicts(),
        "now_fen": total_fen(per_clause["now_fen"]), "before_fen": total_fen(per_clause["before_fen"]),
        "both": len(paid_now & paid_before), "new": len(paid_now - paid_before), "gone": len(paid_before - paid_now),
    }


# --- charts: inline SVG, drawn here --------------------------------------------------

def _svg_bars(labels: list[str], values: list[int], texts: list[str], *, width: int = 760, bar: int = 16) -> Markup:
    """Horizontal bars, one per label, scaled to the largest value."""
    label_w, value_w = 120, 150
    top = max(values) if values and max(values) > 0 else 1
    span = width - label_w - value_w
    height = bar * len(labels) + 8 * (len(labels) + 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i, (label, value, text) in enumerate(zip(labels, values, texts)):
        y = 8 + i * (bar + 8)
        w = max(1, round(span * value / top)) if value > 0 else 0
        parts.append(f'<text x="{label_w - 6}" y="{y + bar - 4}" text-anchor="end" font-size="12">{_esc(label)}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar}" fill="#3b6ea5"/>'
                     f'<text x="{label_w + w + 6}" y="{y + bar - 4}" font-size="12">{_esc(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


BINS_YUAN = [10_000, 50_000, 100_000, 500_000, 1_000_000, 5_000_000]


def distribution(per_applicant: pl.DataFrame) -> list[tuple[str, int]]:
    """Applicants by what they are paid this year, in bands of yuan (upper bound inclusive)."""
    paid = per_applicant.filter(pl.col("payable_fen") > 0)["payable_fen"]
    edges = [b * 100 for b in BINS_YUAN]
    names = ["≤1万"] + [f"{_wan(lo)}–{_wan(hi)}" for lo, hi in zip(BINS_YUAN, BINS_YUAN[1:])] + [f">{_wan(BINS_YUAN[-1])}"]
    counts, lower = [], 0
    for edge in [*edges, None]:
        counts.append(int(((paid > lower) & (paid <= edge)).sum()) if edge is not None else int((paid > lower).sum()))
        lower = edge
    zero = per_applicant.height - paid.len()
    return [("0（未获支付）", zero), *zip(names, counts)]


def _wan(yuan: int) -> str:
    return f"{yuan // 10_000}万"


# --- per-applicant detail --------------------------------------------------------------

def _by_value(df: pl.DataFrame, key: list[str], html: pl.Expr, name: str) -> pl.DataFrame:
    """HTML worked out once per distinct KEY value (clauses, reason codes repeat on many lines), joined back."""
    distinct = df.select(key).unique().with_columns(html.alias(name))
    return df.join(distinct, on=key, how="left", nulls_equal=True, maintain_order="left")


def _line_rows(lines: pl.DataFrame, prefix: pl.Expr = pl.lit(""), suffix: pl.Expr = pl.lit("")) -> pl.DataFrame:
    """LINES with ``_row``: each line's <tr>, after PREFIX and before SUFFIX (null: nothing)."""
    clause_cell = pl.format('<td><a href="#c-{}">{}</a> {}<br><small>{}</small></td>', _html("clause_id"), _html("clause_id"),
                            _html("clause_title"), _html("article"))
    lines = _by_value(lines, ["clause_id", "clause_title", "article"], clause_cell, "_clause")
    lines = _by_value(lines, ["reasons"], _html(reasons_expr("reasons")), "_why")
    return lines.with_columns(pl.format(
        '{}<tr{}>{}<td>{}</td><td class="num">{}/{}</td><td class="num">{}</td><td class="steps">{}</td><td>{}</td></tr>{}',
        prefix.fill_null(""),
        pl.when(pl.col("payable_fen") == 0).then(pl.lit(' class="zero"')).otherwise(pl.lit("")),
        pl.col("_clause"), _html("matter_id"), pl.col("installment"), pl.col("installments"), _fen("payable_fen"),
        _html("steps"), pl.col("_why"), suffix.fill_null(""),
    ).alias("_row")).drop("_clause", "_why")


@dataclass(frozen=True)
class Detail:
    """The per-line detail, grouped by applicant: one HTML <tbody> per block (a subtotal row, then its lines).

    ``blocks``, one row per block in order: applicant_id, applicant_name, part, n_lines (in this block),
    lines and payable_fen (the applicant's), clauses. ``rows``, one row per line in the blocks' order:
    block (its block's row in ``blocks``) and html, the line's <tr>; a block's first line carries its
    opening and subtotal row, its last the closing tag. A block's HTML is its rows' joined by newlines, and
    so is any run of whole blocks: each line's text is written once, never copied into a block first."""
    blocks: pl.DataFrame
    rows: pl.DataFrame


def applicant_blocks(lines: pl.DataFrame, part_lines: int | None = None) -> Detail:
    """Every line's HTML grouped by applicant (``Detail``). An applicant with more than part_lines lines is
    cut into several blocks (part 0, 1, …), so that no page grows past its size."""
    part_lines = part_lines or PART_LINES
    ordered = lines.sort("applicant_id", "clause_id", "matter_id", "year_of_matter", "installment").with_columns(
        pl.col("applicant_id").rle_id().alias("_firm"))  # sorted: an applicant's lines are one run
    firms = ordered.group_by("_firm", maintain_order=True).agg(pl.len().alias("lines"), pl.col("payable_fen").sum())
    first = (firms["lines"].cum_sum() - firms["lines"]).alias("_first")   # the applicant's first line
    ordered = ordered.with_columns(
        ((pl.int_range(pl.len()) - pl.lit(first).gather(pl.col("_firm"))) // part_lines).cast(pl.Int64).alias("part"))
    ordered = ordered.with_columns(pl.struct("_firm", "part").rle_id().cast(pl.Int64).alias("block"))
    blocks = ordered.group_by("block", maintain_order=True).agg(
        pl.col("_firm").first(), pl.col("applicant_id").first(), pl.col("applicant_name").first(), pl.col("part").first(),
        pl.len().alias("n_lines"), pl.col("clause_id").unique().alias("clauses"),
    ).with_columns(pl.lit(firms["lines"]).gather(pl.col("_firm")), pl.lit(firms["payable_fen"]).gather(pl.col("_firm")))
    anchor = pl.when(pl.col("part") == 0).then(_html("applicant_id")).otherwise(
        pl.format("{}-{}", _html("applicant_id"), pl.col("part")))
    more = pl.when(pl.col("part") == 0).then(pl.lit("")).otherwise(pl.lit("（续）"))
    opening = blocks.select(pl.format(
        '<tbody id="a-{}"><tr class="firm"><th colspan="6">{}{}　<span class="id">{}</span>　小计 <b>{}</b> 元（{} 行）</th></tr>\n',
        anchor, _html("applicant_name"), more, _html("applicant_id"), _fen("payable_fen"), pl.col("lines"),
    ))
    block = pl.col("block")
    rows = _line_rows(ordered, prefix=pl.when(block != block.shift(1, fill_value=-1)).then(pl.lit(opening.to_series()).gather(block)),
                      suffix=pl.when(block != block.shift(-1, fill_value=-1)).then(pl.lit("</tbody>")))
    return Detail(blocks.select("applicant_id", "applicant_name", "part", "n_lines", "lines", "payable_fen", "clauses"),
                  rows.select("block", pl.col("_row").alias("html")))


def assign_pages(blocks: pl.DataFrame, page_lines: int = PAGE_LINES, page_applicants: int = PAGE_APPLICANTS) -> pl.DataFrame:
    """Page number (1, 2, …) per applicant: a new page every page_lines lines or page_applicants applicants."""
    before = pl.col("n_lines").cum_sum() - pl.col("n_lines")
    raw = pl.max_horizontal(before // page_lines, pl.int_range(pl.len()) // page_applicants)
    return blocks.with_columns(raw.alias("_raw")).with_columns(
        pl.col("_raw").rank("dense").cast(pl.Int64).alias("page")).drop("_raw")


def quoted_articles(texts: pl.DataFrame) -> dict[str, str]:
    """Each clause's article quoted, as the HTML a detail page lists under its lines (rendered once per run)."""
    rows = texts.select("clause_id", pl.format(
        '<dt id="c-{}">{} {}（{}）</dt><dd>{}</dd>', _html("clause_id"), _html("clause_id"), _html("clause_title"),
        _html("article"), _html("text")).alias("html"))
    return dict(rows.iter_rows())


def _quotes(clause_ids: list[str], quoted: dict[str, str]) -> Markup:
    return Markup("\n".join(quoted[c] for c in sorted(set(clause_ids)) if c in quoted))


def page_name(k: int) -> str:
    return f"applicants-{k:04d}.html"


def index_name(k: int) -> str:
    return f"index-{k:04d}.html"


def _write_page(path: Path, body: bytes, render) -> None:
    """RENDER(body) written, with the body (UTF-8 bytes from polars) spliced in where the page has BODY:
    never decoded into a Python string and encoded again. A page whose own text holds the marker (a title,
    an article) is rendered whole instead."""
    page = render(Markup(BODY))
    if page.count(BODY) != 1:
        path.write_text(render(Markup(body.decode("utf-8"))), encoding="utf-8")
        return
    head, tail = page.split(BODY)
    with path.open("wb") as f:
        f.write(head.encode("utf-8"))
        f.write(body)
        f.write(tail.encode("utf-8"))


def write_detail_pages(detail: Detail, texts: pl.DataFrame, directory: Path, *, title: str) -> tuple[dict[str, int], list[dict]]:
    """The paged detail and its index under DIRECTORY/audit/; returns rows by file and the index pages."""
    sub = directory / "audit"
    sub.mkdir()
    pages = assign_pages(detail.blocks, PAGE_LINES, PAGE_APPLICANTS)  # one row per block, in the blocks' order
    n_pages = int(pages["page"].max() or 0)
    facts = pages.group_by("page", maintain_order=True).agg(
        pl.col("clauses").list.explode(keep_nulls=False, empty_as_null=False).unique(), pl.len().alias("applicants"),
        pl.col("n_lines").sum(), pl.col("applicant_id").first().alias("first"), pl.col("applicant_id").last().alias("last"))
    # a line's page is its block's, looked up by the block's row
    html = detail.rows.select(pl.lit(pages["page"]).gather(pl.col("block")), "html").group_by("page", maintain_order=True).agg(
        pl.col("html").str.join("\n").cast(pl.Binary))
    grouped = facts.join(html, on="page", how="left", maintain_order="left").select(
        "page", "html", "clauses", "applicants", "n_lines", "first", "last")
    counts: dict[str, int] = {}
    page_t = _env.get_template("audit_page.html.j2")
    quoted = quoted_articles(texts)
    for page, html, clauses, n_appl, n_lines, first, last in grouped.iter_rows():
        name = page_name(page)
        _write_page(sub / name, html, lambda body: page_t.render(
            title=title, heading=f"逐户明细 第 {page}/{n_pages} 页（{first} – {last}）", kind="detail",
            prev=page_name(page - 1) if page > 1 else None, next=page_name(page + 1) if page < n_pages else None,
            body=body, quotes=_quotes(clauses, quoted)))
        counts[f"audit/{name}"] = n_lines
    index = pages.filter(pl.col("part") == 0).with_columns((pl.int_range(pl.len()) // INDEX_ROWS + 1).alias("index_page"))
    index = index.with_columns(pl.format(
        '<tr><td><a href="{}#a-{}">{}</a></td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td></tr>',
        pl.format("applicants-{}.html", pl.col("page").cast(pl.String).str.zfill(4)), _html("applicant_id"),
        _html("applicant_id"), _html("applicant_name"), _fen("payable_fen"), pl.col("lines"),
        pl.format("applicants-{}.html", pl.col("page").cast(pl.String).str.zfill(4)),
    ).alias("row"))
    indexes = index.group_by("index_page", maintain_order=True).agg(
        pl.col("row").str.join("\n").cast(pl.Binary), pl.len().alias("applicants"),
        pl.col("applicant_id").first().alias("first"), pl.col("applicant_id").last().alias("last"))
    n_index = indexes.height
    listing = []
    for k, rows, n_appl, first, last in indexes.iter_rows():
        name = index_name(k)
        _write_page(sub / name, rows, lambda body: page_t.render(
            title=title, heading=f"申报主体索引 第 {k}/{n_index} 页（{first} – {last}）", kind="index",
            prev=index_name(k - 1) if k > 1 else None, next=index_name(k + 1) if k < n_index else None,
            body=body, quotes=Markup("")))
        counts[f"audit/{name}"] = n_appl
        listing.append({"file": f"audit/{name}", "first": first, "last": last, "applicants": n_appl})
    counts[SEARCH] = write_search_page(index.select("applicant_id", "applicant_name", "page"), sub / Path(SEARCH).name,
                                       title=title)
    return counts, listing


SEARCH = "audit/search.html"  # the paged audit's one page with a script: find a firm by name or id
SEARCH_SHOWN = 200            # matches listed at once


def _js(col: str) -> pl.Expr:
    """Text as the inside of a JavaScript string literal, safe inside a <script> element (no "<" at all)."""
    e = pl.col(col).cast(pl.String).fill_null("").str.replace_all(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "")
    return e.str.replace_many(["\\", '"', "<", "\n", "\r", "\u2028", "\u2029"],
                              ["\\\\", '\\"', "\\u003c", "\\n", "\\r", "\\u2028", "\\u2029"])


def write_search_page(firms: pl.DataFrame, path: Path, *, title: str) -> int:
    """audit/search.html: a box that finds an applicant by part of its name or id, offline: the index
    (id, name, detail page; FIRMS: applicant_id, applicant_name, page) is inline, and so is the small
    script that searches it. Returns the applicants indexed."""
    data = firms.select(pl.format('["{}","{}",{}]', _js("applicant_id"), _js("applicant_name"), pl.col("page"))
                        .str.join(",\n").cast(pl.Binary)).item() if firms.height else b""
    template = _env.get_template("audit_search.html.j2")
    _write_page(path, data, lambda body: template.render(title=title, body=body, applicants=firms.height,
                                                         shown=SEARCH_SHOWN, first_index=index_name(1)))
    return firms.height


# --- the region page ----------------------------------------------------------------------

def render_audit(result: RegionResult, year: int, run: RunInfo, *, rejected: pl.DataFrame | None = None,
                 previous: pl.DataFrame | None = None, detail: Markup | None = None, index_pages: list[dict] | None = None) -> str:
    lines = result.lines
    rejected = rejected if rejected is not None else pl.DataFrame(schema={"ledger": pl.String, "row": pl.Int64,
                                                                          "reason": pl.String})
    totals = clause_totals(lines).join(result.clauses.select("clause_id", "text"), on="clause_id", how="left",
                                       maintain_order="left")
    per_applicant = applicant_totals(lines)
    total_payable = total_fen(lines["payable_fen"])
    pairs, listed = superseded(lines, result.clauses)
    claws = result.clawbacks
    paid_clauses = totals.filter(pl.col("payable_fen") > 0)
    dist = distribution(per_applicant)
    headline = {
        "total_payable": total_payable, "total_clawback": total_fen(claws["amount_fen"]),
        "lines": lines.height, "paid_lines": int((lines["payable_fen"] > 0).sum()),
        "zero_lines": int((lines["payable_fen"] == 0).sum()),
        "superseded": int(lines["superseded_by"].is_not_null().sum()),
        "applicants": per_applicant.height, "paid_applicants": int((per_applicant["payable_fen"] > 0).sum()),
        "rejected_rows": rejected.select("ledger", "row").unique().height,
        "clawbacks": claws.height, "clawback_applicants": claws["applicant_id"].n_unique(),
    }
    return _env.get_template("audit.html.j2").render(
        region=result.label, year=year, run=run, policy_title=result.policy_title,
        keep_highest_text=result.keep_highest_text, fmt=fmt_fen, h=headline,
        totals=totals.to_dicts(), caps=cap_effects(lines).to_dicts(),
        pairs=pairs.to_dicts(), superseded_lines=listed.to_dicts(), list_limit=LIST_LIMIT,
        rejected=rejected_summary(rejected).to_dicts(), ledger_name=ledger_name,
        clawbacks=claws.head(LIST_LIMIT).to_dicts(),
        change=year_change(lines, previous, result.clauses),
        chart_clauses=_svg_bars(paid_clauses["clause_id"].to_list(), paid_clauses["payable_fen"].to_list(),
                                [fmt_fen(v) for v in paid_clauses["payable_fen"].to_list()]),
        chart_distribution=_svg_bars([d[0] for d in dist], [d[1] for d in dist], [f"{d[1]} 户" for d in dist]),
        detail=detail, index_pages=index_pages, phrase=phrase, budgets=result.budgets.to_dicts(),
    )


def write_audit(result: RegionResult, year: int, directory: Path, run: RunInfo, *, rejected: pl.DataFrame,
                previous: pl.DataFrame | None = None, detail_limit: int | None = None) -> dict[str, int]:
    """audit.html, and past detail_limit lines (default DETAIL_LIMIT) the paged detail under audit/; rows by file name."""
    detail_limit = DETAIL_LIMIT if detail_limit is None else detail_limit
    title = f"{result.label} {year} 年度兑付审计"
    detail = applicant_blocks(result.lines, PART_LINES)
    counts: dict[str, int] = {}
    if result.lines.height <= detail_limit:
        page = render_audit(result, year, run, rejected=rejected, previous=previous,
                            detail=Markup("\n".join(detail.rows["html"].to_list())))
    else:
        counts, listing = write_detail_pages(detail, result.clauses, directory, title=title)
        page = render_audit(result, year, run, rejected=rejected, previous=previous, index_pages=listing)
    (directory / "audit.html").write_text(page, encoding="utf-8")
    return {"audit.html": result.lines.height, **counts}



# --- approval: stamped on the summary once finance signs off ----------------------------------

APPROVAL_MARKS = ("<!--approval-->", "<!--/approval-->")  # around the summary's approval row (audit.html.j2)


def stamp_approval(source: Path, target: Path, cells: list[tuple[str, str]]) -> None:
    """Copy SOURCE (a region's audit.html) to TARGET with its summary's approval row replaced by CELLS
    (label, text), one row each; nothing else changes. A page without the row (written before it had
    one) cannot be stamped: ValueError."""
    page = source.read_text(encoding="utf-8")
    start, end = APPROVAL_MARKS
    if page.count(start) != 1 or page.count(end) != 1 or page.index(start) > page.index(end):
        raise ValueError(f"{source}: no approval row in its summary")
    rows = "".join(f'<tr class="approval"><td>{_esc(label)}</td><td colspan="3"><b>{_esc(text)}</b></td></tr>'
                   for label, text in cells)
    head, rest = page.split(start)
    _, tail = rest.split(end)
    target.write_text(f"{head}{start}{rows}{end}{tail}", encoding="utf-8")
