"""How long a whole yearly run takes against reading the ledgers once (prints; not a test).

    python benchmarks/run.py --applicants 1000000 [--year 2022] [--pairs 3] [--work DIR] [--format parquet|csv|xlsx]

Generates (once, cached under --work, with ``disburse synth``) a ledger set of N
applicants in the format asked (typed Parquet by default; CSV text; a workbook
per ledger) and a set holding only one of them, in the same format, then,
alternating, measures three things, each in a fresh process:

- floor: read every ledger file (Parquet, CSV as text, or a workbook's sheet
  with polars' calamine engine) and sum every money column by applicant with
  polars: the least any job that reads these ledgers must do;
- fixed: the same ``disburse run`` on the one-applicant set: start-up, Prefect,
  catalogue, writing the files; what does not grow with the ledgers;
- full: ``disburse run --year Y`` for all regions on the N-applicant set.

Both runs pass ``--allow-gaps``: the generated ledgers hold earlier years, and
this measures one year's work, not the order of years.

It prints seconds per stage of the full run (as ``disburse run`` reports them),
ledger rows per second, the peak RSS of the run, the time per ledger row (the
stages' sum, and full - fixed), fixed, floor, and last the
line ``full/floor: R`` with R = (full - fixed) / floor, the median over the
pairs. Prefect runs as a user would run it (a temporary local server, unless
PREFECT_API_URL is set).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "fixtures" / "demo" / "params.yaml"
DISBURSE = Path(sys.executable).parent / "disburse"

# Runs a command and prints its wall seconds and the peak RSS (KiB) of its largest process.
_MEASURE = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"rc": done.returncode, "wall": wall, "peak_kib": peak, "stdout": done.stdout, "stderr": done.stderr}))
"""

_FLOOR = r"""
import json, sys, time
from pathlib import Path
import polars as pl
t0 = time.perf_counter()
money = set(sys.argv[2].split(","))
english = json.loads(sys.argv[3])  # a workbook's Chinese headers -> the ledger's English names
rows = 0
def scan(path):
    if path.suffix == ".parquet":
        return pl.scan_parquet(path)
    if path.suffix == ".csv":
        return pl.scan_csv(path, infer_schema=False)
    df = pl.read_excel(path, engine="calamine")
    df = df.rename({c: english[c] for c in df.columns if c in english})
    return df.with_columns(pl.col(c).cast(pl.String) for c, t in df.schema.items() if t.is_float()).lazy()
for path in sorted(p for p in Path(sys.argv[1]).iterdir() if p.suffix in (".parquet", ".csv", ".xlsx")):
    lf = scan(path)
    cols = [c for c in lf.collect_schema().names() if c in money]
    key = "applicant_id"
    exprs = [(pl.col(c).cast(pl.Decimal(38, 2)) if lf.collect_schema()[c] != pl.String
              else pl.col(c).replace("", None).cast(pl.Decimal(38, 2))).sum() for c in cols]
    df = lf.group_by(key).agg(exprs or [pl.len()]).collect()
    rows += lf.select(pl.len()).collect().item()
print(time.perf_counter() - t0, rows)
"""


def measure(cmd: list[str], env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout)


def generate(n: int, out: Path, fmt: str = "parquet") -> None:
    if (out / f"applicants.{fmt}").exists():
        return
    print(f"generating {n:,} applicants into {out} ...", flush=True)
    subprocess.run([str(DISBURSE), "synth", "--out", str(out), "--applicants", str(n), "--format", fmt],
                    check=True, stdout=subprocess.DEVNULL)


def one_applicant(full: Path, out: Path, fmt: str = "parquet") -> None:
    """The rows of one generated applicant of the typed Parquet set FULL, written to OUT in FMT."""
    import polars as pl

    if (out / f"applicants.{fmt}").exists():
        return
    out.mkdir(parents=True, exist_ok=True)
    applicants = pl.read_parquet(full / "applicants.parquet")
    first = applicants["applicant_id"][-1]  # a generated applicant, not a hand-placed one
    frames = {path.stem: pl.read_parquet(path).filter(pl.col("applicant_id") == first) for path in full.glob("*.parquet")}
    if fmt == "parquet":
        for name, df in frames.items():
            df.write_parquet(out / f"{name}.parquet")
        return
    sys.path.insert(0, str(ROOT))
    from disburse.synth import write

    write({name: df.select(pl.all().cast(pl.String)) for name, df in frames.items()}, out, fmt)


def money_columns() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from disburse.ledgers import LEDGERS

    return sorted({c.name for led in LEDGERS.values() for c in led.columns if c.type == "money"})


def english_names() -> str:
    """JSON: each column's Chinese name -> its English name (the names a workbook's header carries)."""
    sys.path.insert(0, str(ROOT))
    from disburse.ledgers import LEDGERS

    return json.dumps({c.zh: c.name for led in LEDGERS.values() for c in led.columns}, ensure_ascii=False)


def stage_seconds(stdout: str) -> dict[str, float]:
    found = re.search(r"Seconds: (.*)", stdout)
    return {k: float(v) for k, v in re.findall(r"(\w+) ([0-9.]+)", found.group(1))} if found else {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--applicants", type=int, required=True)
    ap.add_argument("--year", type=int, default=2022)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "disburse-bench")
    ap.add_argument("--format", choices=("parquet", "csv", "xlsx"), default="parquet",
                    help="the ledgers' format (default: typed Parquet)")
    args = ap.parse_args()

    typed_set = args.work / f"city-{args.applicants}"  # the typed Parquet set: the one applicant is taken from it
    generate(args.applicants, typed_set)
    fmt = args.format
    full_set = typed_set if fmt == "parquet" else args.work / f"city-{args.applicants}-{fmt}"
    small_set = args.work / (f"one-of-{args.applicants}" if fmt == "parquet" else f"one-of-{args.applicants}-{fmt}")
    generate(args.applicants, full_set, fmt)
    one_applicant(typed_set, small_set, fmt)
    env = {**os.environ, "PREFECT_HOME": os.environ.get("PREFECT_HOME", str(args.work / "prefect-home"))}
    # Prefect's first start in a new home creates its database: do it once, outside the measurements.
    subprocess.run([str(DISBURSE), "run", "--year", str(args.year), "--ledgers", str(small_set), "--params", str(PARAMS),
                    "--out", str(args.work / "warm-up"), "--allow-gaps"], env=env, capture_output=True)
    money = ",".join(money_columns())

    floors, fixeds, fulls, ratios, peaks, stages = [], [], [], [], [], []
    rows = 0
    for i in range(args.pairs):
        done = subprocess.run([sys.executable, "-c", _FLOOR, str(full_set), money, english_names()],
                              capture_output=True, text=True,
                              env=env, check=True)
        floor, rows = float(done.stdout.split()[0]), int(done.stdout.split()[1])
        runs = {}
        for name, ledgers in (("fixed", small_set), ("full", full_set)):
            with tempfile.TemporaryDirectory(dir=args.work) as out:
                m = measure([str(DISBURSE), "run", "--year", str(args.year), "--ledgers", str(ledgers),
                             "--params", str(PARAMS), "--out", out, "--allow-gaps"], env)
            if m["rc"] != 0:
                print(f"{name} run failed: {m['stderr'].strip()}", file=sys.stderr)
                return 1
            runs[name] = m
        floors.append(floor)
        fixeds.append(runs["fixed"]["wall"])
        fulls.append(runs["full"]["wall"])
        peaks.append(runs["full"]["peak_kib"])
        stages.append(stage_seconds(runs["full"]["stdout"]))
        ratios.append((fulls[-1] - fixeds[-1]) / floor)
        print(f"pair {i + 1}: floor {floor:.2f} s, fixed {fixeds[-1]:.2f} s, full {fulls[-1]:.2f} s, "
              f"ratio {ratios[-1]:.2f}", flush=True)

    med = statistics.median
    label = {"parquet": "Parquet", "csv": "CSV", "xlsx": "xlsx workbooks"}[fmt]
    print(f"applicants: {args.applicants:,}; ledger rows: {rows:,}; year {args.year}, all regions, {label}")
    print("seconds per stage (median): " + ", ".join(
        f"{k} {med(s.get(k, 0.0) for s in stages):.2f}" for k in stages[0]))
    print(f"rows per second (full run): {rows / med(fulls):,.0f}")
    print(f"peak RSS of the run: {max(peaks) / 1024 / 1024:.2f} GiB")
    # per ledger row: the run's own stage seconds (no start-up in them), and full - fixed (start-up's noise in it)
    print(f"per ledger row: stages {med(sum(s.values()) for s in stages) / rows * 1e6:.2f} µs, "
          f"full - fixed {(med(fulls) - med(fixeds)) / rows * 1e6:.2f} µs")
    print(f"fixed: {med(fixeds):.2f} s")
    print(f"floor: {med(floors):.2f} s")
    print(f"full: {med(fulls):.2f} s")
    print(f"full/floor: {med(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
