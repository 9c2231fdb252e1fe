"""The yearly run as a Prefect deployment: every 15 January it pays the year before.

``disburse serve`` serves ``yearly`` against a running ``prefect server start``
(a served schedule never fires on Prefect's temporary server). The deployment's
parameters are the paths and the region; a run with no year (a scheduled one)
pays the year before the one it was scheduled in, so the run of 15 January 2026
pays 2025 and is named ``2025-all`` (or ``2025-lingang`` for one region).

The run does what ``disburse run`` does (``flows.annual``'s stages, as tasks of
this run), then leaves two artifacts: the run summary (markdown) and the totals
per clause (a table). Its log lines carry ids and counts, never ledger values,
names or amounts; the artifacts carry totals, as the manifest does.
"""

# No `from __future__ import annotations`: a served run validates its parameters against these
# annotations in a process of its own, where names in strings do not resolve.
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run
from prefect.states import Failed

from disburse.job import JOB_ERRORS, first_gap, gap_list
from disburse.money import fen_to_decimal
from disburse.state import GapError
from flows.annual import annual_run
from flows.progress import listening

FLOW = "disburse-yearly"
CRON = "0 2 15 1 *"  # 02:00 on 15 January: the ledgers of the year before are closed by then
TIMEZONE = "Asia/Shanghai"


def previous_year(when: dt.datetime, timezone: str = TIMEZONE) -> int:
    """The year before WHEN, read on the bureau's calendar (a naive time is taken as UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(ZoneInfo(timezone)).year - 1


def year_to_pay(year: int | None) -> int:
    """YEAR if the run names one; else the year before the run's scheduled start (now, for a run by hand)."""
    return year if year is not None else previous_year(flow_run.scheduled_start_time)


def run_name() -> str:
    """``2025-all`` or ``2025-lingang``: the year paid and the region."""
    params = flow_run.parameters
    return f"{year_to_pay(params.get('year'))}-{params.get('region') or 'all'}"


def deployment_name(region: str | None) -> str:
    return region or "all"


class ClauseTotals:
    """Listens to the stages of a run and keeps, per region, the lines and totals of each clause."""

    def __init__(self) -> None:
        self.frames: list[pl.DataFrame] = []

    def started(self, stage: str, region: str | None) -> None:
        pass

    def finished(self, stage: str, region: str | None, result: Any) -> None:
        if stage == "compute" and hasattr(result, "lines"):
            self.frames.append(
                result.lines.group_by("clause_id", "clause_title", "article")
                .agg(pl.len().alias("lines"), (pl.col("payable_fen") > 0).sum().alias("payable_lines"),
                     pl.col("payable_fen").cast(pl.Int128).sum().alias("payable_fen"))
                .select(pl.lit(result.region).alias("region"), pl.all())
            )

    def table(self) -> list[dict[str, Any]]:
        """One row per region and clause; amounts as yuan text with two decimals (exact)."""
        if not self.frames:
            return []
        rows = pl.concat(self.frames).sort("region", "clause_id").to_dicts()
        for row in rows:
            row["payable"] = str(fen_to_decimal(int(row.pop("payable_fen") or 0)))
        return rows


def summary_markdown(manifest: dict, seconds: dict[str, float], *, flow_run_id: str | None, out: Path) -> str:
    """The run as finance and IT first want it: ids, counts per ledger, lines and totals per region."""
    year = manifest["year"]
    lines = [
        f"# disburse {year} · {', '.join(manifest['regions_in_this_run'])}",
        "",
        f"- run id: `{manifest['run_id']}`",
        f"- Prefect flow run: `{flow_run_id}`",
        f"- started {manifest['started_at']}, finished {manifest['finished_at']}",
        f"- rules fingerprint `{manifest['rules_fingerprint']}`, params fingerprint `{manifest['params_fingerprint']}`",
        f"- files: `{out / str(year)}`",
        *(f"- {region}: replaced run `{old}`, its files kept in `{out / str(year) / region / 'runs' / old}`"
          for region, old in manifest.get("replaced_runs", {}).items()),
        "",
        "## Ledgers (all years)",
        "",
        "| ledger | rows | accepted | rejected |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {name} | {d['rows']} | {d['accepted']} | {d['rejected']} |" for name, d in manifest["inputs"].items()]
    lines += [
        "",
        f"## Year {year}",
        "",
        "| region | lines | payable lines | total payable (yuan) | clawbacks (yuan) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    total = Decimal(0)
    for region in manifest["regions_in_this_run"]:
        d = manifest["regions"][region]
        total += Decimal(d["total_payable"])
        lines.append(f"| {region} | {d['lines']} | {d['payable_lines']} | {d['total_payable']} | {d['total_clawback']} |")
    lines += [
        "",
        f"Total payable in this run: **{total:.2f}** yuan.",
        "",
        "Seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()),
    ]
    return "\n".join(lines) + "\n"


def gap_line(exc: GapError, *, year_given: bool) -> str:
    """The gap refusal in the words of a deployment run: its parameters, not ``disburse run``'s flags."""
    which = "" if year_given else " (no year parameter: the year before the run's date)"
    return (f"year {exc.year}{which}: earlier years were never run and the ledgers have rows for them "
            f"({gap_list(exc.gaps)}); pay them first, from {first_gap(exc.gaps)} on (--param year={first_gap(exc.gaps)}), "
            f"or pay {exc.year} anyway with --param allow_gaps=true")


@flow(name=FLOW, flow_run_name=run_name, validate_parameters=True)
def yearly(ledgers: Path, out: Path, year: int | None = None, region: str | None = None, rules: Path | None = None,
           params: Path | None = None, state_file: Path | None = None, allow_gaps: bool = False) -> Any:
    """Pay YEAR (default: the year before the run was scheduled) for REGION (default: every region).

    A run that cannot proceed (earlier years never run, a ledger or rule refused) fails with one line, in
    the log and as the run's state message, not with a traceback; nothing is written, as with ``disburse run``.
    """
    log = get_run_logger()
    year_given = year is not None
    year = year_to_pay(year)
    log.info("paying %s for %s", year, region or "every region")
    try:
        with listening(ClauseTotals()) as totals:
            summary = annual_run.fn(year=year, ledgers=ledgers, out=out, region=region, rules=rules, params=params,
                                    state_file=state_file, allow_gaps=allow_gaps)
    except JOB_ERRORS as exc:
        # the run's one line: Prefect logs it as the state it finished in ("Finished in state Failed('...')")
        return Failed(message=gap_line(exc, year_given=year_given) if isinstance(exc, GapError) and exc.gaps
                      else str(exc))
    manifest = summary["manifest"]
    scope = deployment_name(region)
    create_markdown_artifact(
        summary_markdown(manifest, summary["seconds"], flow_run_id=flow_run.id, out=out),
        key=f"disburse-summary-{scope}", description=f"disburse {year} {scope}: run {manifest['run_id']}",
    )
    create_table_artifact(totals.table(), key=f"disburse-clause-totals-{scope}",
                          description=f"disburse {year} {scope}: lines and payable per clause, run {manifest['run_id']}")
    log.info("run %s: year %s, regions %s, artifacts written", manifest["run_id"], year,
             ",".join(manifest["regions_in_this_run"]))
    return summary


PAUSE_SECONDS = 10  # on shutdown, the longest `disburse serve` waits for the server to pause its schedule


def serve(*, ledgers: Path, out: Path, region: str | None, rules: Path | None, params: Path | None,
          state_file: Path | None, cron: str | None = None, timezone: str | None = None, name: str | None = None,
          allow_gaps: bool = False) -> None:
    """Create (or update) the deployment and run its flow runs until interrupted; then pause its schedule.

    Prefect's own pause on shutdown retries for over a minute when the server has already stopped; this
    one waits at most PAUSE_SECONDS and says in one line whether the schedule was paused.
    """
    import asyncio

    from prefect.exceptions import TerminationSignal
    from prefect.runner import Runner
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType

    parameters = {"ledgers": str(ledgers.resolve()), "out": str(out.resolve()), "region": region,
                  "rules": str(rules.resolve()) if rules else None, "params": str(params.resolve()) if params else None,
                  "state_file": str(state_file.resolve()) if state_file else None,
                  "allow_gaps": True if allow_gaps else None}
    deployment = name or deployment_name(region)
    runner = Runner(name=deployment, pause_on_shutdown=False,  # paused below, within PAUSE_SECONDS
                    limit=1)  # one run at a time: the state file is held for the whole run anyway
    deployment_id = runner.add_flow(
        yearly,
        name=deployment,
        schedules=[Cron(cron or CRON, timezone=timezone or TIMEZONE)],
        parameters={k: v for k, v in parameters.items() if v is not None},
        description=f"Every 15 January: pay the year before ({region or 'every region'}).",
        tags=["disburse"],
        entrypoint_type=EntrypointType.MODULE_PATH,  # flows.yearly.yearly: found from any directory, wheel or checkout
    )
    print(f"Serving {FLOW}/{deployment}: {cron or CRON} ({timezone or TIMEZONE}). A run by hand: "
          f"prefect deployment run {FLOW}/{deployment}. Stop with Ctrl-C, before the Prefect server.", flush=True)
    try:
        asyncio.run(runner.start())
    except (KeyboardInterrupt, TerminationSignal):
        pass
    finally:
        print(pause_schedule(deployment_id, f"{FLOW}/{deployment}"), flush=True)


def pause_schedule(deployment_id, label: str, seconds: float = PAUSE_SECONDS) -> str:
    """Pause the deployment's schedule, waiting at most SECONDS for the server (no retries); what happened, in one line."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    async def pause() -> None:
        async with get_client() as client:
            await client.pause_deployment(deployment_id)

    try:
        with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 0}):
            asyncio.run(asyncio.wait_for(pause(), seconds))
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - whatever stopped it, the line says so
        why = f"no answer within {seconds:g} s" if isinstance(exc, TimeoutError) else type(exc).__name__
        return (f"Stopped; the schedule of {label} was NOT paused ({why}: was the Prefect server stopped first?). "
                f"It stays active: pause it in the UI (Deployments, {label}) once the server is up, "
                f"or serve it again")
    return f"Stopped; the schedule of {label} is paused."
