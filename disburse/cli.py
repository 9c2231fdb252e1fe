"""Command line: ``disburse run | verify | approve | diff | validate | explain | notices | rules | serve | template | ledgers``.

A run that cannot proceed prints one line on stderr and exits 2; nothing is
written and the state is unchanged.
"""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Optional

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from disburse import offline, phrases
from disburse.ledgers import LEDGERS as LEDGER_TABLE
from disburse.job import JOB_ERRORS, check, choose_regions, ingest, ledger_counts, parse_year, preflight
from disburse.ledgers import LEDGERS
from disburse.money import fmt_fen, total_fen, yuan_to_fen
from disburse.phrases import phrase
from disburse.tables import region_label

offline.apply()

def _flags_take_no_value() -> None:
    """typer (0.29) shows a value type beside every flag in --help (`--allow-gaps <bool>`, `--help <bool>`),
    as if the flag took a value; a flag takes none, so its type column stays empty (tests/test_terminal.py)."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self, ctx):  # noqa: ANN001 - typer's own signature
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich


_flags_take_no_value()
app = typer.Typer(add_completion=False, no_args_is_help=True, help="Exact, explainable yearly subsidy payments.")
out = Console()
err = Console(stderr=True, soft_wrap=True)

LedgersOpt = Annotated[Path, typer.Option("--ledgers", help="Directory of ledger files (CSV, Parquet, .xlsx/.xls/.ods).")]
RulesOpt = Annotated[Optional[Path], typer.Option("--rules", help="Rules catalogue (default: the project's rules/).")]
ParamsOpt = Annotated[Optional[Path], typer.Option("--params", help="YAML of administrator-set values.")]
OnlyRegionOpt = Annotated[Optional[str], typer.Option("--region", help="Only this region.")]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"disburse {version('disburse')}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Exact, explainable yearly subsidy payments."""


def fail(message: str, code: int = 2) -> None:
    err.print(f"disburse: {message}", markup=False, highlight=False)
    raise typer.Exit(code)


def _year(text: str) -> int:
    """--year of every command: four digits, else one line on stderr and exit 2 (not typer's usage box)."""
    try:
        return parse_year(text)
    except JOB_ERRORS as exc:
        fail(str(exc))


def year_option(help: str) -> typer.models.OptionInfo:  # noqa: A002 - typer's word
    return typer.Option("--year", parser=_year, help=help)



@app.command()
def run(
    year: Annotated[int, year_option("The year to pay.")],
    ledgers: LedgersOpt,
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory; files go to OUT/YEAR/REGION/.")],
    region: Annotated[Optional[str], typer.Option("--region", help="Recompute only this region.")] = None,
    rules: RulesOpt = None,
    params: ParamsOpt = None,
    state_file: Annotated[Optional[Path], typer.Option("--state", help="State file (default OUT/state.duckdb).")] = None,
    allow_gaps: Annotated[bool, typer.Option("--allow-gaps", help="Pay even though earlier years with ledger rows "
                                             "were never run (the manifest and audit say so).")] = False,
    dask: Annotated[Optional[str], typer.Option("--dask", envvar="DISBURSE_DASK_ADDRESS", show_envvar=True,
                                                help="Compute the regions on the Dask cluster of this scheduler, "
                                                     "e.g. tcp://scheduler:8786 (needs the dask extra and "
                                                     "PREFECT_API_URL: docs/it.md \"On a Dask cluster\").")] = None,
) -> None:
    """Validate the ledgers, compute every clause, write finance's files and remember what was paid."""
    import atexit

    from disburse.outputs import private_files
    from disburse.server import ServerError, TiedServer, take_early

    # Prefect's temporary server starts first, on the other core, while the run checks its inputs and
    # imports Prefect (disburse/server.py): the command's entry point has started it already
    # (disburse.entry), else it starts here. With --dask the user's server is used (start_early starts
    # none). It is stopped at exit, after Prefect's own exit handlers (registered later, run earlier) have
    # sent their last events.
    server = take_early()
    if server is None and TiedServer.wanted() and not dask:
        server = TiedServer().start()
        atexit.register(server.stop)
    try:
        ready = preflight(ledgers, rules, params, region, year=year, out_dir=out_dir, state_file=state_file)
    except JOB_ERRORS as exc:
        fail(str(exc))
    if dask:
        try:
            problem = _dask_problem(dask)
        except BaseException:
            ready.release()
            raise
        if problem:
            ready.release()
            fail(problem)
    for warning in ready.warnings:
        err.print(f"disburse: {warning}", markup=False, highlight=False)
    try:
        with private_files():
            from flows.annual import annual_run, on_dask
            from prefect.settings import PREFECT_API_URL, temporary_settings

            own_server = False
            if server is not None:
                if PREFECT_API_URL.value():  # a server named in Prefect's profile or .env: that one is used
                    server.stop()
                else:
                    server.ready()
                    own_server = True
            from flows.progress import on_terminal

            flow = on_dask(dask) if dask else annual_run
            # Flow-run heartbeats tell a lasting server that a run died; the temporary server dies with the
            # run, so they tell it nothing, and their thread (it sleeps in whole seconds) held every run up
            # to a second more at its end. With a server of the user's they stay as Prefect sets them.
            beats = temporary_settings(updates={"flows.heartbeat_frequency": None}) if own_server else nullcontext()
            with on_terminal(err, region), beats:  # a status line only on a terminal: in a script stderr stays one line
                summary = flow(year=year, ledgers=ledgers, out=out_dir, region=region, rules=rules, params=params,
                               state_file=state_file, run_id=ready.run_id, allow_gaps=allow_gaps)
    except (*JOB_ERRORS, ServerError) as exc:
        exc.__traceback__ = None  # its frames hold what the run opened; drop them before exit
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - a fault of ours: still one line, nothing recorded
        if os.environ.get("DISBURSE_DEBUG"):
            raise
        from disburse.job import internal

        exc.__traceback__ = None
        fail(f"internal error, nothing was recorded: {internal(exc)} (DISBURSE_DEBUG=1 shows the traceback)", code=1)
    finally:
        ready.release()
    print_summary(summary["manifest"], summary["seconds"], out_dir / str(year))


def _loopback(url: str) -> bool:
    """Whether URL (tcp://host:port, http://host:port/path, host:port) names this machine's loopback."""
    import ipaddress

    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _dask_problem(address: str) -> str | None:
    """Why --dask ADDRESS cannot work (None: it can), found before the run starts: no prefect-dask, no Prefect
    server that the workers reach and that outlives the run, or no scheduler answering at ADDRESS."""
    import importlib.util

    if importlib.util.find_spec("prefect_dask") is None:
        return f"--dask {address}: prefect-dask is not installed (pip install 'disburse[dask]')"
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    if not api:  # a worker process keeps reporting to the first API it was sent: a temporary one dies with its run
        return (f"--dask {address}: needs a Prefect server that outlives the run, reachable from the workers: "
                f"start `prefect server start` and set PREFECT_API_URL (docs/it.md \"On a Dask cluster\")")
    if _loopback(api) and not _loopback(address):
        return (f"--dask {address}: PREFECT_API_URL {api} is this machine's loopback, which workers on other "
                f"machines cannot reach: start the server on an address they reach")
    import httpx

    try:
        httpx.get(f"{api.rstrip('/')}/health", timeout=30).raise_for_status()
    except httpx.HTTPError as exc:
        return f"--dask {address}: no Prefect server answered at PREFECT_API_URL {api} ({type(exc).__name__})"
    import asyncio

    import distributed.comm

    async def reach() -> None:
        comm = await distributed.comm.connect(address)  # waits distributed.comm.timeouts.connect (default 30 s)
        await comm.close()

    try:
        asyncio.run(reach())
    except ValueError:
        return f"--dask {address}: not a Dask scheduler address (e.g. tcp://scheduler:8786)"
    except OSError as exc:
        return f"--dask {address}: no Dask scheduler answered there ({type(exc).__name__})"
    return None


@app.command()
def verify(
    year_dir: Annotated[Path, typer.Argument(help="A year's output directory, OUT/YEAR.")],
    state_file: Annotated[Optional[Path], typer.Option("--state", help="State file (default OUT/state.duckdb).")] = None,
) -> None:
    """Check every file of a year against its manifest and the state's record: names every file or line changed since."""
    from disburse.outputs import read_manifest
    from disburse.verify import input_notes, verify_year

    try:
        problems, checked = verify_year(year_dir, state_file or year_dir.parent / "state.duckdb")
    except JOB_ERRORS as exc:
        fail(str(exc))
    for problem in problems:
        out.print(problem, markup=False, highlight=False, soft_wrap=True)
    for note in input_notes(read_manifest(year_dir / "manifest.json")):  # the ledgers read: a note, not a fault
        out.print(f"注意：{note}", markup=False, highlight=False, soft_wrap=True)
    if problems:
        fail(f"{year_dir}: {len(problems)} problem(s): changed since the run that wrote them", code=1)
    out.print(f"{year_dir}: {checked} files and every line match the manifest and the state", markup=False,
              highlight=False, soft_wrap=True)


@app.command()
def approve(
    year: Annotated[int, year_option("The year finance signs off.")],
    region: Annotated[str, typer.Option("--region", help="The region finance signs off.")],
    out_dir: Annotated[Path, typer.Option("--out", help="The output directory of the run.")],
    by: Annotated[Optional[str], typer.Option("--by", help="Who signs off (default: the login name).")] = None,
    state_file: Annotated[Optional[Path], typer.Option("--state", help="State file (default OUT/state.duckdb).")] = None,
) -> None:
    """Record finance's sign-off of the run in place for YEAR REGION (or, once approved, of its pending adjustments),
    and stamp it on payments.xlsx and audit.html (adjustments.xlsx)."""
    import getpass

    from disburse import signoff
    from disburse.job import DEFAULT_RULES, new_run_id
    from disburse.rules import load_catalogue, region_names

    path = state_file or out_dir / "state.duckdb"
    try:
        cat = load_catalogue(DEFAULT_RULES)
    except JOB_ERRORS as exc:
        fail(str(exc))
    if region not in cat.regions and not path.is_file():
        fail(f"--region {region}：未知区域（已知：{'、'.join(cat.regions)}）")
    if not path.is_file():
        fail(f"{path}：没有状态文件，请先运行该年度")
    who = by or getpass.getuser()
    try:
        approval, notes = signoff.approve(out_dir, path, year=year, region=region, by=who, known=cat.regions,
                                          hold=f"approve-{new_run_id()}")
    except JOB_ERRORS as exc:
        fail(str(exc))
    name = region_names(cat).get(region)
    out.print(signoff.message(approval, f"{name}（{region}）" if name else region, notes), markup=False,
              highlight=False, soft_wrap=True)


@app.command()
def diff(
    before: Annotated[Path, typer.Argument(help="Directory with the earlier disbursements.parquet, e.g. OUT/Y/REGION/runs/RUN_ID; "
                                           "alone, an approved region rerun since (OUT/Y/REGION): approved against recomputed.")],
    after: Annotated[Optional[Path], typer.Argument(help="Directory with the later one, e.g. OUT/Y/REGION (with an "
                                                    "adjustments.csv: its recomputation).")] = None,
    csv: Annotated[Optional[Path], typer.Option("--csv", help="Write every row here (CSV, yuan to the fen).")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows shown in the terminal (largest differences first).")] = 50,
    as_written: Annotated[bool, typer.Option("--as-written", help="Read AFTER's files as written, leaving out the "
                                             "recomputation in its adjustments.csv.")] = False,
) -> None:
    """Per applicant and clause: payable before, after and the difference (after minus before)."""
    from rich import box

    from disburse.diff import DiffError, adjustments, csv_frame, diff as compare, names

    try:
        d = compare(before, after, recomputed=not as_written)
        pending = adjustments(after if after is not None else before)
    except DiffError as exc:
        fail(str(exc))
    if pending is not None and (after is None or not as_written):
        rerun = pending["run_id"][0] if pending.height else "—"
        side = "after" if after is not None else "before = 已审批的金额, after"
        out.print(f"{after if after is not None else before}：已审批的文件未改动，重算（运行 {rerun}）见 adjustments.csv；"
                  f"{side} = 重算的金额（{pending.height} 项调整）", markup=False, highlight=False, soft_wrap=True)
    changed = d.filter(pl.col("difference_fen") != 0)
    shown = changed.head(limit).join(names(*(p for p in (before, after) if p is not None)), on="applicant_id",
                                     how="left", maintain_order="left")
    # The id is never cut (its column is at least as wide) and the name follows it, wrapped under it on a
    # narrow terminal; no side borders, so an 80-column terminal holds id, clause and three amounts.
    t = Table(title=f"{changed.height} of {d.height} (applicant, clause) pairs differ; yuan; difference = after - before",
              box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    t.add_column("applicant", min_width=max([len(a) for a in shown["applicant_id"]], default=0), overflow="fold")
    t.add_column("clause", no_wrap=True)
    for col in ("before", "after", "difference"):
        t.add_column(col, justify="right", no_wrap=True)
    for row in shown.iter_rows(named=True):
        t.add_row(" ".join(x for x in (row["applicant_id"], row["applicant_name"]) if x), row["clause_id"],
                  fmt_fen(row["before_fen"]), fmt_fen(row["after_fen"]),
                  ("+" if row["difference_fen"] > 0 else "") + fmt_fen(row["difference_fen"]))
    out.print(t)
    if changed.height > limit:
        out.print(f"... {changed.height - limit} more (--csv FILE writes every row)")
    total = total_fen(d["difference_fen"])
    out.print(f"Total before {fmt_fen(total_fen(d['before_fen']))}, after {fmt_fen(total_fen(d['after_fen']))}, "
              f"difference {'+' if total > 0 else ''}{fmt_fen(total)}", markup=False, highlight=False)
    if csv:
        csv_frame(d).write_csv(csv, include_bom=True)


def print_summary(manifest: dict, seconds: dict[str, float], year_dir: Path) -> None:
    """The run's summary for a person: headings in Chinese with the codes beside, regions by their Chinese names."""
    t = Table(title=f"台账（各年度）— 运行编号 {manifest['run_id']}")
    for col in ("台账（ledger）", "行数（rows）", "接收（accepted）", "拒收（rejected）"):
        t.add_column(col, justify="left" if col.startswith("台账") else "right", no_wrap=col.startswith("台账"))
    for name, d in manifest["inputs"].items():
        t.add_row(phrases.ledger_name(name), f"{d['rows']:,}", f"{d['accepted']:,}", f"{d['rejected']:,}")
    out.print(t)
    r = Table(title=f"{manifest['year']} 年度")
    for col in ("区域（region）", "明细行", "应付行", "应付合计（元）", "应追回（元）"):
        r.add_column(col, justify="left" if col.startswith("区域") else "right", no_wrap=col.startswith("区域"))
    for region in manifest["regions_in_this_run"]:
        d = manifest["regions"][region]
        r.add_row(region_label(region, d.get("name_zh")), f"{d['lines']:,}", f"{d['payable_lines']:,}",
                  fmt_fen(yuan_to_fen(d["total_payable"])), fmt_fen(yuan_to_fen(d["total_clawback"])))
    out.print(r)
    for line in adjustment_lines(manifest):
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    for region, old in manifest.get("replaced_runs", {}).items():  # a rerun: where the replaced run's files are
        kept = year_dir / region / "runs" / old
        out.print(f"{region}：已替换运行 {old}，" + (f"原文件保存在 {kept}" if kept.is_dir() else "原文件已不在"),
                  markup=False, highlight=False, soft_wrap=True)
    out.print("用时（秒）：" + "，".join(f"{k} {v:.2f}" for k, v in seconds.items()))
    out.print(f"文件：{year_dir}/<region>/ 与 {year_dir}/manifest.json")


def _region_labels(rules: Path | None) -> dict[str, str]:
    """Region id -> 临港新片区（lingang）, from the catalogue's policy.yaml files."""
    from disburse.rules import region_names

    return {r: region_label(r, zh) for r, zh in region_names(_catalogue(rules)).items()}


def _yuan_fen(text: str | None) -> int:
    from decimal import Decimal

    return int(Decimal(text or "0") * 100)


def adjustment_lines(manifest: dict) -> list[str]:
    """One line per approved region this run recomputed: its files stay as approved; the adjustments it
    proposes, how many and how much to pay and to recover, and that they wait for approval."""
    lines = []
    for region, d in sorted(manifest.get("adjustments", {}).items()):
        if d.get("run_id", manifest["run_id"]) != manifest["run_id"]:
            continue  # proposed by an earlier run
        head = f"{region}：{manifest['year']} 年度已审批（运行 {d['approved_run_id']}），文件未改动；"
        if not d["rows"]:
            lines.append(head + "本次重算与已审批的金额一致，没有调整")
            continue
        lines.append(head + f"本次重算有 {d['rows']} 项调整：补付 {d.get('pay_rows', 0)} 项 "
                     f"{fmt_fen(_yuan_fen(d.get('pay')))} 元，追回 {d.get('recover_rows', 0)} 项 "
                     f"{fmt_fen(_yuan_fen(d.get('recover')))} 元 — 待审批（{region}/adjustments.csv、adjustments.xlsx；"
                     f"disburse approve --year {manifest['year']} --region {region}）")
    return lines


def zh_column(ledger: str, column: str) -> str:
    """A column's Chinese name as a person reads it ('applicant_id|year': each part)."""
    cols = LEDGER_TABLE[ledger].column_zh() if ledger in LEDGER_TABLE else {}
    return "、".join(cols.get(c, c) for c in column.split("|"))


@app.command()
def validate(ledgers: LedgersOpt, rules: RulesOpt = None, params: ParamsOpt = None,
             rejected: Annotated[Optional[Path], typer.Option("--rejected", help="Write every rejected line here (CSV).")] = None) -> None:
    """Check the ledgers only: counts per ledger, and the rejected lines."""
    try:
        inputs = ingest(ledgers, rules, params)
    except JOB_ERRORS as exc:
        fail(str(exc))
    checked = check(inputs)
    counts = ledger_counts(checked)
    _print_frame(pl.DataFrame([{"台账（ledger）": phrases.ledger_name(name), "行数（rows）": c["rows"],
                                "接收（accepted）": c["accepted"], "拒收（rejected）": c["rejected"]}
                               for name, c in counts.items()]), "校验（validation）")
    for row in checked.rejected.head(50).iter_rows(named=True):
        where = " ".join(str(x) for x in (row["file"], row["sheet"] and f"工作表 {row['sheet']}") if x)
        column = f"{zh_column(row['ledger'], row['column'])}（{row['column']}）" if row["column"] else "整行"
        value = f" = {row['value']!r}" if row["value"] is not None else ""
        out.print(f"{phrases.ledger_name(row['ledger'])} {where} 第 {row['row']} 行 {column}{value}：{row['说明']}"
                  f"  [{row['reason'].split(':')[0]}]", markup=False)
    if checked.rejected.height > 50:
        out.print(f"... {checked.rejected.height - 50} more")
    stopping = checked.rejected.filter(pl.col("ledger").is_in([n for n, led in LEDGERS.items() if led.stops_the_run])
                                       & ~pl.col("reason").str.starts_with("total_row"))
    for (ledger,), rows in stopping.group_by("ledger", maintain_order=True):
        out.print(f"{phrases.ledger_name(ledger)}有 {rows['row'].n_unique()} 行无法读取，更正前 disburse run 将停止："
                  f"已付款项不能舍弃（第 {'、'.join(map(str, rows['row'].unique(maintain_order=True).head(10)))} 行）",
                  markup=False)
    if checked.rejected.filter(pl.col("ledger") == "applicants").height:
        out.print("申报主体（applicants）的行被拒收时，若状态文件或历史兑付中已有对该主体的付款，disburse run 将停止"
                  "（其应付分期与应追回的资金不能遗漏）", markup=False)
    if rejected:
        checked.rejected.write_csv(rejected, include_bom=True)


@app.command()
def explain(
    year: Annotated[int, year_option("The year of the run.")],
    out_dir: Annotated[Path, typer.Option("--out", help="The output directory of the run.")],
    applicant: Annotated[Optional[str], typer.Option("--applicant", help="统一社会信用代码 of the applicant.")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Part of the applicant's name (企业名称): one match is "
                                                "explained, several are listed with their ids.")] = None,
) -> None:
    """One applicant's lines for a year, with every step, for a person to read; for an approved year rerun
    since, also what the recomputation comes to and why."""
    year_dir = out_dir / str(year)
    files = sorted(year_dir.glob("*/audit_lines.parquet"))
    if not files:
        fail(f"{year_dir}: no run found for {year}")
    if (applicant is None) == (name is None):
        fail("give --applicant ID or --name TEXT (one of them)")
    if name is not None:
        firms = (pl.concat([pl.scan_parquet(f).select("applicant_id", "applicant_name", "region") for f in files])
                 .filter(pl.col("applicant_name").str.contains(name, literal=True)).unique().sort("applicant_id").collect())
        if firms.is_empty():
            fail(f"--name {name}：{year} 年度没有名称含“{name}”的申报主体", code=1)
        if firms["applicant_id"].n_unique() > 1:
            t = Table(title=f"名称含“{name}”的申报主体：{firms.height} 户（用 --applicant 代码 查看其中一户）")
            for col in ("统一社会信用代码", "名称", "区域"):
                t.add_column(col)
            for row in firms.iter_rows():
                t.add_row(*row)
            out.print(t)
            return
        applicant = firms["applicant_id"][0]
    lines = pl.concat([pl.read_parquet(f) for f in files]).filter(pl.col("applicant_id") == applicant)
    if lines.is_empty():
        fail(f"{applicant}: no lines in {year}")
    first = lines.row(0, named=True)
    out.print(f"[bold]{first['applicant_name']}[/bold] ({applicant}), {first['region']}, {year}")
    for line in lines.sort("clause_id", "matter_id", "year_of_matter", "installment").iter_rows(named=True):
        out.print(f"\n[bold]{line['clause_id']}[/bold] {line['clause_title']}（{line['article']}）— 事项 {line['matter_id']}")
        for step in line["steps"].split(" → "):
            out.print(f"  → {step}", markup=False)
        codes = line["reasons"].split(";") if line["reasons"] else []
        why = "；".join(f"{code} {phrase(code) or ''}".rstrip() for code in codes)
        out.print(f"  应付：[bold]{fmt_fen(line['payable_fen'])}[/bold]" + (f"   原因：{why}" if why else ""))
    out.print(f"\n应付合计：[bold]{fmt_fen(total_fen(lines['payable_fen']))}[/bold]")
    explain_adjustments(year_dir, applicant, sorted(set(lines["region"])))


def explain_adjustments(year_dir: Path, applicant: str, regions: list[str]) -> None:
    """For an approved region rerun since: per adjusted matter of APPLICANT, the approved amount, the
    recomputed one, the difference, and the recomputed steps that say why."""
    from disburse.diff import _fen
    from disburse.outputs import read_manifest

    manifest = read_manifest(year_dir / "manifest.json")
    for region in regions:
        path = year_dir / region / "adjustments.csv"
        if not path.is_file():
            continue
        adj = pl.read_csv(path, infer_schema=False).filter(pl.col("applicant_id") == applicant)
        entry = manifest.get("adjustments", {}).get(region, {})
        approved_run = manifest.get("regions", {}).get(region, {}).get("run_id", "")
        if adj.is_empty():
            out.print(f"\n{region} {year_dir.name} 年度已审批（运行 {approved_run}）；之后的重算没有改变该户的金额。",
                      markup=False, highlight=False)
            continue
        status = "已审批" if entry.get("status") == "approved" else "待审批"
        adj = adj.with_columns(*(_fen(c).alias(f"{c}_fen") for c in ("approved", "recomputed", "difference")))
        out.print(f"\n[bold]以上为已审批运行 {approved_run} 的明细。之后的重算（运行 {adj['run_id'][0]}）改变了 "
                  f"{adj.height} 项金额（{status}）：[/bold]")
        for row in adj.iter_rows(named=True):
            action = "补付" if row["difference_fen"] > 0 else "追回"
            out.print(f"\n[bold]{row['clause_id']}[/bold] {row.get('clause_title') or ''} — 事项 {row['matter_id']}")
            out.print(f"  已审批 {fmt_fen(row['approved_fen'])} → 重算 {fmt_fen(row['recomputed_fen'])}，差额 "
                      f"{'+' if row['difference_fen'] > 0 else ''}{fmt_fen(row['difference_fen'])}（{action}，{status}）",
                      markup=False)
            out.print("  重算的计算步骤（差额由此而来）：", markup=False)
            for text in (row.get("recomputed_steps") or "").split("\n"):
                for step in text.split(" → "):
                    out.print(f"    → {step}", markup=False)
        total = int(adj["difference_fen"].sum())
        out.print(f"\n已审批 {fmt_fen(int(adj['approved_fen'].sum()))}，重算 {fmt_fen(int(adj['recomputed_fen'].sum()))}，"
                  f"差额合计 {'+' if total > 0 else ''}{fmt_fen(total)}（{status}）", markup=False)


@app.command()
def notices(
    year: Annotated[int, year_option("The year paid.")],
    region: Annotated[str, typer.Option("--region", help="The region whose firms get notices.")],
    out_dir: Annotated[Path, typer.Option("--out", help="The output directory of the run.")],
    to: Annotated[Optional[Path], typer.Option("--to", help="Where the notices go (default OUT/notices/YEAR/REGION/; "
                                                            "replaced whole).")] = None,
    state_file: Annotated[Optional[Path], typer.Option("--state", help="State file (default OUT/state.duckdb).")] = None,
    rules: RulesOpt = None,
) -> None:
    """兑付通知书: one printable notice per firm paid in YEAR REGION, and an index, from the run's files."""
    from disburse.notices import write_notices
    from disburse.outputs import private_files

    cat = _catalogue(rules)
    try:
        choose_regions(cat, region)
        path = state_file or out_dir / "state.duckdb"
        if not path.is_file():
            fail(f"{path}: no state file; run the year first")
        with private_files():
            done = write_notices(out_dir, year, region, cat, state_file=path,
                                 to=to or out_dir / "notices" / str(year) / region)
    except JOB_ERRORS as exc:
        fail(str(exc))
    out.print(f"{done['region']} {year} 年度：兑付通知书 {done['notices']} 份，金额合计 {fmt_fen(done['total_fen'])} 元；"
              f"以后年度分期 {done['later']} 期，含应追回的 {done['clawbacks']} 户。目录：{done['dir'] / 'index.html'}",
              markup=False, highlight=False, soft_wrap=True)


@app.command()
def synth(
    applicants: Annotated[int, typer.Option("--applicants", help="Number of applicants (the named demo firms included).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the ten ledgers to.")],
    years: Annotated[str, typer.Option("--years", help="Years of rows to keep, FIRST-LAST.")] = "2020-2026",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated part: same seed, same bytes.")] = 13,
    fmt: Annotated[str, typer.Option("--format", help="parquet (typed columns), csv or xlsx (a workbook per ledger, Chinese headers)")] = "parquet",
    bad_rows: Annotated[bool, typer.Option("--bad-rows", help="Add the demo's deliberately faulty rows.")] = False,
) -> None:
    """Generate realistic ledgers: every tier, ladder step, cap and installment reached by some firms."""
    import time

    from disburse import synth as generator

    if fmt not in ("parquet", "csv", "xlsx"):
        fail(f"--format {fmt}: expected parquet, csv or xlsx")
    try:
        first, last = (int(y) for y in years.split("-", 1))
    except ValueError:
        fail(f"--years {years}: expected FIRST-LAST, e.g. 2020-2026")
    started = time.perf_counter()
    try:
        frames, located = generator.synth(out_dir, applicants=applicants, seed=seed, years=(first, last),
                                          bad_rows=bad_rows, fmt=fmt)
    except ValueError as exc:
        fail(str(exc))
    generator.report(frames, located, out_dir, fmt, time.perf_counter() - started)


@app.command()
def template(
    out_file: Annotated[Path, typer.Option("--out", help="The workbook to write (.xlsx).")],
    ledgers: Annotated[Optional[str], typer.Option(
        "--ledgers", help="Only these ledgers, comma-separated, English or Chinese names (applicants always).")] = None,
    rules: RulesOpt = None,
) -> None:
    """Write the workbook a bureau fills in: a sheet per ledger, Chinese headers, formats, drop-downs, 说明."""
    from disburse.ledgers import LEDGER_ZH
    from disburse.template import chosen, write_template

    if out_file.suffix.lower() != ".xlsx":
        fail(f"--out {out_file}: the template is an .xlsx workbook")
    if out_file.stem in LEDGER_ZH or out_file.stem in LEDGER_ZH.values():
        fail(f"--out {out_file}: a file named after one ledger is read as that ledger alone; choose another name")
    if not out_file.parent.is_dir():
        fail(f"--out {out_file}: directory {out_file.parent} not found")
    try:
        names = chosen(ledgers.split(",") if ledgers else None)
    except ValueError as exc:
        fail(str(exc))
    try:
        write_template(out_file, _catalogue(rules), names)
    except OSError as exc:
        fail(f"--out {out_file}: cannot be written ({exc.strerror or exc})")
    out.print(f"{out_file}: 说明 and {len(names)} ledger sheets ({', '.join(names)})", markup=False, highlight=False,
              soft_wrap=True)


@app.command()
def serve(
    ledgers: LedgersOpt,
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory; files go to OUT/YEAR/REGION/.")],
    region: Annotated[Optional[str], typer.Option("--region", help="Pay only this region (default: every region).")] = None,
    rules: RulesOpt = None,
    params: ParamsOpt = None,
    state_file: Annotated[Optional[Path], typer.Option("--state", help="State file (default OUT/state.duckdb).")] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Deployment name (default: the region, or all).")] = None,
    cron: Annotated[Optional[str], typer.Option("--cron", help="When to run, in --timezone (default: 0 2 15 1 *, "
                                                                "02:00 on 15 January).")] = None,
    timezone: Annotated[Optional[str], typer.Option("--timezone", help="Default: Asia/Shanghai.")] = None,
    allow_gaps: Annotated[bool, typer.Option("--allow-gaps", help="Each run pays even though earlier years with "
                                             "ledger rows were never run.")] = False,
) -> None:
    """Serve the yearly deployment: every 15 January, pay the year before. Needs `prefect server start`."""
    offline.serving()
    try:
        preflight(ledgers, rules, params, region)
    except JOB_ERRORS as exc:
        fail(str(exc))
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    if not api:
        fail("serve needs a running Prefect server: start `prefect server start` and set "
             "PREFECT_API_URL=http://127.0.0.1:4200/api (a schedule never fires on Prefect's temporary server)")
    import httpx

    try:
        httpx.get(f"{api.rstrip('/')}/health", timeout=30).raise_for_status()
    except httpx.HTTPError as exc:
        fail(f"PREFECT_API_URL={api}: no Prefect server answers ({type(exc).__name__}); start `prefect server start`")
    from flows.yearly import serve as serve_yearly

    serve_yearly(ledgers=ledgers, out=out_dir, region=region, rules=rules, params=params, state_file=state_file,
                 cron=cron, timezone=timezone, name=name, allow_gaps=allow_gaps)


@app.command()
def simulate(
    year: Annotated[int, year_option("The year to simulate.")],
    ledgers: LedgersOpt,
    out_dir: Annotated[Path, typer.Option("--out", help="Where impact.csv, impact_firms.csv and impact.html go.")],
    state_file: Annotated[Path, typer.Option("--state", help="The state of the runs (read from a copy; a missing file: nothing paid yet).")],
    overlay: Annotated[Optional[list[Path]], typer.Option("--overlay", help="A scenario: YAML of changed clauses, "
                                                          "parameters or budgets (repeat for several).")] = None,
    region: OnlyRegionOpt = None,
    rules: RulesOpt = None,
    params: ParamsOpt = None,
) -> None:
    """What-if: the year as approved and under each overlay, compared; nothing is recorded."""
    from disburse.simulate import simulate as run_simulation

    try:
        files, scenarios, results = run_simulation(
            ledgers, out_dir, year, rules_dir=rules, params_file=params, state_file=state_file,
            overlays=list(overlay or []), region=region,
            warn=lambda line: err.print(f"disburse: {line}", markup=False, highlight=False))
    except JOB_ERRORS as exc:
        fail(str(exc))
    labels = _region_labels(rules)
    t = Table(title=f"{year} 年度测算（未记录，nothing recorded）")
    t.add_column("区域（region）")
    for s in scenarios:
        t.add_column(s.name, justify="right")
    regions = [r.region for r in results[scenarios[0].name]]
    for i, region_id in enumerate(regions):
        t.add_row(labels.get(region_id, region_id), *(fmt_fen(total_fen(results[s.name][i].lines["payable_fen"])) for s in scenarios))
    out.print(t)
    for s in scenarios[1:]:
        out.print(f"{s.name}: " + "; ".join(s.changes), markup=False, highlight=False)
    out.print("Files: " + ", ".join(str(p) for p in files.values()), markup=False, highlight=False)


@app.command()
def eligible(
    year: Annotated[int, year_option("The year to look at.")],
    ledgers: LedgersOpt,
    out_dir: Annotated[Path, typer.Option("--out", help="Where eligible-YEAR-REGION.csv go.")],
    state_file: Annotated[Optional[Path], typer.Option("--state", help="The state of the runs (read from a copy; "
                                                       "none: nothing paid yet).")] = None,
    region: OnlyRegionOpt = None,
    rules: RulesOpt = None,
    params: ParamsOpt = None,
) -> None:
    """免申即享: firms whose ledgers meet a clause that needs a recognition they do not hold yet, with what they would get."""
    from disburse.eligible import eligible as push_lists

    try:
        written = push_lists(ledgers, out_dir, year, rules_dir=rules, params_file=params, state_file=state_file,
                             region=region)
    except JOB_ERRORS as exc:
        fail(str(exc))
    labels = _region_labels(rules)
    t = Table(title=f"{year} 年度免申即享名单（可邀请申报的企业）")
    for col in ("区域（region）", "企业数（firms）", "事项数（matters）", "净增金额（元）", "文件（file）"):
        t.add_column(col, justify="left" if col.startswith(("区域", "文件")) else "right")
    for r, (path, df) in written.items():
        net = int(df["net_difference"].sum() or 0) if not df.is_empty() else 0
        t.add_row(labels.get(r, r), str(df["applicant_id"].n_unique()), str(df.height), fmt_fen(net), str(path))
    out.print(t)


rules_app = typer.Typer(no_args_is_help=True, help="The rules catalogue: list the clauses, show coverage, write the explorer.")
app.add_typer(rules_app, name="rules")
SCENARIOS = Path(__file__).resolve().parent.parent / "tests" / "scenarios"


def _catalogue(rules: Path | None):
    from disburse.job import DEFAULT_RULES
    from disburse.rules import load_catalogue

    try:
        return load_catalogue(rules or DEFAULT_RULES)
    except JOB_ERRORS as exc:
        fail(str(exc))


def _print_frame(df: pl.DataFrame, title: str) -> None:
    t = Table(title=title)
    for col in df.columns:
        t.add_column(col)
    for row in df.iter_rows():
        t.add_row(*("" if v is None else str(v) for v in row))
    out.print(t)


NARROW = "Caps, validity and recognition: a wider terminal, or --format csv"


def _print_clauses(df: pl.DataFrame) -> None:
    """The clauses as a table that fits the terminal: every column where there is room, else the clause id,
    article, kind and title (ids and articles never cut, the title wrapped), saying where the rest is."""
    caps = ("item_cap", "annual_cap", "cumulative_cap")
    rows = [{k: "" if v is None else fmt_fen(yuan_to_fen(v)) if k in caps else str(v) for k, v in row.items()}
            for row in df.drop("valid_to", "params").iter_rows(named=True)]
    wraps = {"title": 16, "recognition": 16}  # the columns that wrap, and their least width
    full = Table(title=f"Clauses ({df.height})")
    for col in rows[0] if rows else df.drop("valid_to", "params").columns:
        full.add_column(col, no_wrap=col not in wraps, min_width=wraps.get(col), overflow="fold",
                        justify="right" if col in caps else "left")
    for row in rows:
        full.add_row(*row.values())
    from rich.cells import cell_len

    needed = sum(wraps.get(col) or max(cell_len(v) for v in [col, *(row[col] for row in rows)])
                 for col in rows[0]) + 3 * len(rows[0]) + 1 if rows else 0  # + a border and padding per column
    if needed <= out.width:
        out.print(full)
        return
    short = Table(title=f"Clauses ({df.height})", caption=NARROW)
    for col in ("clause_id", "article", "kind"):
        short.add_column(col, no_wrap=True)
    short.add_column("title", overflow="fold")
    for row in rows:
        short.add_row(row["clause_id"], row["article"], row["kind"], row["title"])
    out.print(short)


@rules_app.command("list")
def rules_list(
    region: Annotated[Optional[str], typer.Option("--region")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or csv")] = "table",
    rules: RulesOpt = None,
) -> None:
    """One row per clause: clause_id, region, title, kind, then caps and validity."""
    from disburse.coverage import clause_table

    cat = _catalogue(rules)
    try:
        choose_regions(cat, region)
    except JOB_ERRORS as exc:
        fail(str(exc))
    df = clause_table(cat, region)
    if fmt == "csv":
        sys.stdout.write(df.write_csv())
    elif fmt == "table":
        _print_clauses(df)
    else:
        fail(f"--format {fmt}: expected table or csv")


@rules_app.command("coverage")
def rules_coverage(rules: RulesOpt = None,
                   clauses: Annotated[bool, typer.Option("--clauses", help="Also list every clause.")] = False,
                   fmt: Annotated[str, typer.Option("--format", help="table or markdown")] = "table") -> None:
    """Per policy: its articles, paying clauses, encoded, tested (by a scenario under tests/scenarios)."""
    from disburse.coverage import coverage, markdown

    policies, per_clause = coverage(_catalogue(rules), SCENARIOS)
    if fmt == "markdown":
        sys.stdout.write(markdown(policies))
        return
    _print_frame(policies.drop("policy"), "Coverage")
    missing = per_clause.filter(~pl.col("encoded") | ~pl.col("tested"))
    if clauses:
        _print_frame(per_clause, "Clauses")
    elif not missing.is_empty():
        _print_frame(missing, "Not yet encoded or tested")


@rules_app.command("site")
def rules_site(
    out_dir: Annotated[Path, typer.Option("--out", help="The directory the pages are written to (docs/rules).")],
    rules: RulesOpt = None,
    params: Annotated[Optional[Path], typer.Option("--params", help="Show this params file's administrator values.")] = None,
) -> None:
    """The rules explorer: a Markdown page per clause (article, parameters, conditions, recognition, competing
    clauses, scenarios and their amounts, decisions) and an index per region with coverage, for the handbook."""
    from disburse.params import load_params
    from disburse.site import write_site

    cat = _catalogue(rules)
    if not SCENARIOS.is_dir():
        fail(f"{SCENARIOS}: scenarios not found (the explorer is built from a checkout)")
    try:
        values = load_params(params, cat) if params is not None else None
        written = write_site(cat, out_dir, SCENARIOS, SCENARIOS.parent.parent / "docs" / "decisions.md", values)
    except JOB_ERRORS as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"--out {out_dir}: cannot be written ({exc.strerror or exc})")
    out.print(f"{len(written)} pages written to {out_dir}")


ledgers_app = typer.Typer(no_args_is_help=True, help="The ledgers: their reference.")
app.add_typer(ledgers_app, name="ledgers")


@ledgers_app.command("reference")
def ledgers_reference(
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Write it here (default: print it).")] = None,
    rules: RulesOpt = None,
) -> None:
    """Every ledger and column in Chinese and English, as Markdown (docs/ledgers.md)."""
    from disburse.reference import markdown

    text = markdown(_catalogue(rules))
    if out_file is None:
        sys.stdout.write(text)
    else:
        try:
            out_file.write_text(text, encoding="utf-8")
        except OSError as exc:
            fail(f"--out {out_file}: cannot be written ({exc.strerror or exc})")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("disburse: interrupted; nothing was recorded")
        sys.exit(130)


if __name__ == "__main__":
    main()
