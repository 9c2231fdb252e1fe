"""Time each stage of a run against the time to read the ledgers once (prints; not a test).

    disburse synth --out /tmp/city --applicants 1000000
    python benchmarks/stages.py --ledgers /tmp/city --year 2022 --params fixtures/demo/params.yaml

Runs the stages of ``disburse.job`` without Prefect (whose start-up is fixed:
about 6 s), into a temporary output directory and state.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path

from disburse import job, state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ledgers", type=Path, required=True)
    ap.add_argument("--year", type=int, required=True)
    ap.add_argument("--params", type=Path)
    args = ap.parse_args()

    clock = job.StageClock()
    inputs = clock("read", job.ingest, args.ledgers, None, args.params)
    checked = clock("validate", job.check, inputs)
    with tempfile.TemporaryDirectory() as tmp, state.opened(Path(tmp) / "state.duckdb") as con:
        paid = clock("compute", job.paid_before, con, checked, args.year)
        results = [clock("compute", job.compute, inputs, checked, paid, args.year, r) for r in inputs.catalogue.regions]
        clock("write", job.publish, inputs, checked, results, con, year=args.year, out_dir=Path(tmp),
              run_id="benchmark", started=dt.datetime.now(dt.timezone.utc))
    rows = sum(checked.rows_read.values())
    lines = sum(r.lines.height for r in results)
    work = clock["validate"] + clock["compute"] + clock["write"]
    print(f"ledger rows {rows:,}; lines {lines:,}")
    print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in clock.items()))
    print(f"work after reading / reading once: {work / clock['read']:.1f}x")


if __name__ == "__main__":
    main()
