"""The yearly run as a Prefect flow: it only orchestrates the stages of ``disburse.job``.

Tasks are coarse (a stage, or one region's computation). The regions are
computed concurrently, one task each, on the flow's task runner (threads in this
process by default; a Dask cluster with ``disburse run --dask``), and gathered
in the order of the catalogue's regions, whatever order they finish in. Every
other stage runs in the flow's process: the state is held by the run's id from
the preflight on (``disburse.job.preflight``), and its file opened once,
read-write, for the whole run, by this process only. Every task and the flow
itself raise only errors that carry no ledger data (``job.quietly``): Prefect
logs and stores them.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait

from disburse import job
from flows.progress import reported

stage = task(cache_policy=NO_CACHE)  # frames are large; hashing them for a cache key is waste
# Each stage tells listeners (the terminal's status line) where the run is, and logs its ids and counts;
# it raises only errors that carry no ledger data (job.quietly).
ingest = stage(reported("read", job.quietly(job.ingest)))
check = stage(reported("validate", job.quietly(job.check)))
paid_before = stage(reported("read state", job.quietly(job.paid_before)))
compute = stage(reported("compute", job.quietly(job.compute))).with_options(task_run_name="compute-{region}")
publish = stage(reported("write", job.quietly(job.publish)))


@flow(name="disburse-annual", validate_parameters=True)
def annual_run(year: int, ledgers: Path, out: Path, region: str | None = None, rules: Path | None = None,
               params: Path | None = None, state_file: Path | None = None, run_id: str | None = None,
               allow_gaps: bool = False) -> dict:
    """Pay year YEAR from the ledgers in LEDGERS into OUT/YEAR/<region>/; returns the run summary."""
    return job.quietly(_run)(year, ledgers, out, region, rules, params, state_file, run_id, allow_gaps)


def _run(year, ledgers, out, region, rules, params, state_file, run_id, allow_gaps) -> dict:
    timed = job.StageClock()
    steps = job.Steps(ingest=ingest, check=check, paid_before=paid_before, compute_regions=each_region, publish=publish)
    manifest, _ = job.sequence(steps, ledgers, out, year, region=region, rules_dir=rules, params_file=params,
                               state_file=state_file, allow_gaps=allow_gaps, run_id=run_id, clock=timed)
    return {"manifest": manifest, "seconds": dict(timed)}


def each_region(inputs, checked, paid, year: int, regions: list[str]) -> list:
    """One compute task per region, all submitted before any is awaited; the results in the order of REGIONS.

    A region is the unit of work: its lines depend on each other (caps per payee, per year and
    cumulative; a budget cut shares a fund among the region's lines), so one region is never split.
    """
    # each task carries its own region's rows only (job.for_region): what a Dask worker is sent
    futures = [compute.submit(inputs, job.for_region(checked, r), paid, year, r) for r in regions]
    wait(futures)  # every region done or failed before a result is taken: none runs on after a failed run
    return [f.result() for f in futures]


def on_dask(address: str):
    """``annual_run`` with its region tasks sent to the Dask scheduler at ADDRESS (``prefect-dask``).

    A task run on a worker reports to the Prefect API named in the settings the flow sends with
    it, so ``PREFECT_API_URL`` must be set (``disburse run`` checks): with none, each worker would
    start a temporary server of its own (measured: one per worker, left running after the run).
    A worker process also keeps sending its events to the first API it was sent (Prefect's events
    worker is one per process), so the API must outlive the run: a run's temporary server does not.
    """
    from prefect_dask import DaskTaskRunner

    return annual_run.with_options(task_runner=DaskTaskRunner(address=address))
