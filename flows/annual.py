"""The yearly run as a Prefect flow: it only orchestrates the stages of ``disburse.job``.

Tasks are coarse (a stage, or one region's computation). The state file is
opened once, read-write, for the whole run: a second run against the same
state is refused at once instead of interleaving with this one.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from disburse import job, state
from flows.progress import reported

stage = task(cache_policy=NO_CACHE)  # frames are large; hashing them for a cache key is waste
# Each stage tells listeners (the terminal's status line) where the run is, and logs its ids and counts.
ingest = stage(reported("read", job.ingest))
check = stage(reported("validate", job.check))
paid_before = stage(reported("read state", job.paid_before))
compute = stage(reported("compute", job.compute)).with_options(task_run_name="compute-{region}")
publish = stage(reported("write", job.publish))


@flow(name="disburse-annual", validate_parameters=True)
def annual_run(year: int, ledgers: Path, out: Path, region: str | None = None, rules: Path | None = None,
               params: Path | None = None, state_file: Path | None = None) -> dict:
    """Pay year YEAR from the ledgers in LEDGERS into OUT/YEAR/<region>/; returns the run summary."""
    started = dt.datetime.now(dt.timezone.utc)
    timed = job.StageClock()
    inputs = timed("ingest", ingest, ledgers, rules, params)
    regions = job.choose_regions(inputs.catalogue, region)
    with state.opened(state_file or out / "state.duckdb") as con:
        checked = timed("validate", check, inputs)
        paid = timed("compute", paid_before, con, checked, year)
        results = [timed("compute", compute, inputs, checked, paid, year, r) for r in regions]
        manifest = timed("write", publish, inputs, checked, results, con, year=year, out_dir=out,
                         run_id=job.new_run_id(), started=started)
    return {"manifest": manifest, "seconds": dict(timed)}
