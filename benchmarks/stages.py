"""Time each stage of a run against the time to read the ledgers once (prints; not a test).

    disburse synth --out /tmp/city --applicants 1000000 --format parquet     # or csv, or xlsx (up to 100,000 or so)
    python benchmarks/stages.py --ledgers /tmp/city --year 2022 --params fixtures/demo/params.yaml

Runs the stages of a yearly run (``disburse.job.sequence``, the sequence the flow
runs) without Prefect, whose start-up is fixed (about 6 s), into a temporary
output directory and state. A year with earlier ledger rows never run is paid
anyway (``--allow-gaps``): this measures the work, not the order of years.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import polars as pl

from disburse import job
from disburse.ledgers import LEDGERS, find_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ledgers", type=Path, required=True)
    ap.add_argument("--year", type=int, required=True)
    ap.add_argument("--params", type=Path)
    args = ap.parse_args()

    started = time.perf_counter()
    for name in LEDGERS:  # reading once: the floor the stages are measured against
        path = find_file(args.ledgers, name)
        if path is not None:
            if path.suffix == ".parquet":
                pl.read_parquet(path)
            elif path.suffix == ".csv":
                pl.read_csv(path, infer_schema=False)
            else:  # a workbook: its sheets, with polars' calamine engine
                pl.read_excel(path, sheet_id=0, engine="calamine")
    read = time.perf_counter() - started
    clock = job.StageClock()
    with tempfile.TemporaryDirectory() as tmp:
        manifest, results = job.sequence(job.Steps(), args.ledgers, Path(tmp), args.year, params_file=args.params,
                                         allow_gaps=True, run_id="benchmark", clock=clock)
    rows = sum(d["rows"] for d in manifest["inputs"].values())
    lines = sum(r.lines.height for r in results)
    work = sum(clock.values())
    print(f"ledger rows {rows:,}; lines {lines:,}")
    print(f"seconds: read once {read:.2f}; " + ", ".join(f"{k} {v:.2f}" for k, v in clock.items()))
    print(f"the run's stages / reading once: {work / read:.1f}x")


if __name__ == "__main__":
    main()
