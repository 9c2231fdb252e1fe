"""Kills never strand a run (issue 8, item 5).

A run is SIGKILLed at each stage and inside publishing between every two steps
(the ``DISBURSE_KILL_AT`` test hook, disburse/killpoint.py). Afterwards the
outputs and the state agree: before the state commits, both are the previous
run's; after it, the next run finishes the killed one first and both are the
new run's. A rerun then writes files byte-identical to an uninterrupted run's.
Some files embed the run: its id (payments.csv, the audit pages, payments.xlsx,
manifest.json) and times (manifest.json; payments.xlsx's creation time). They
are compared with every run id replaced by a placeholder, ``manifest.json``
without its times and without the sha256 of files that embed the run id, and
``payments.xlsx`` by its cells. Every other file (disbursements, clawbacks,
in-kind and rejected CSVs, the Parquet files) is compared byte for byte.

The plain job (no Prefect) is killed, for speed; one test kills ``disburse run``
itself and shows its temporary Prefect server dies with it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import duckdb
import polars as pl
import pytest

from disburse import job, state
from disburse.job import run_year
from disburse.verify import verify_year
from tests.scenario import Scenario

LEDGERS = Path(__file__).parent / "scenarios" / "engine" / "two_regions.yaml"
BEFORE_COMMIT = ["ingest", "validate", "compute", "publish", "staged"]
AFTER_COMMIT = ["committed", "aside:lingang", "in:lingang", "kept:lingang", "in:rejected.csv", "in:manifest.json",
                "swapped", "done"]
KILLED_RUN = ("import sys; from pathlib import Path; from disburse.job import run_year; "
              "run_year(Path(sys.argv[1]), Path(sys.argv[2]), 2021, region='lingang')")


RUN_ID = re.compile(rb"\d{8}T\d{6}Z-[0-9a-f]{8}")


def _cells(path: Path) -> list:
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return [[RUN_ID.sub(b"RUN", str(v).encode()) for v in row]
                for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def snapshot(out: Path) -> dict:
    """The outputs (what names the run left out, as the module says) and the state's rows, to compare runs by."""
    files, embeds = {}, set()
    for p in sorted((out / "2021").rglob("*")):
        rel = str(p.relative_to(out / "2021"))
        if p.is_file() and not rel.startswith(".staging-") and "/runs/" not in rel:  # kept runs: see kept()
            raw = p.read_bytes()
            files[rel] = _cells(p) if p.suffix == ".xlsx" else RUN_ID.sub(b"RUN", raw)
            if p.suffix not in (".xlsx", ".parquet") and files[rel] != raw:
                embeds.add(rel)
    if "manifest.json" in files:
        m = json.loads(files["manifest.json"])
        for k in ("started_at", "finished_at"):
            m.pop(k)
        for r in m["regions"].values():
            for rel, d in r["outputs"].items():
                if rel in embeds or rel.endswith(".xlsx"):
                    d.pop("sha256")
        files["manifest.json"] = m
    con = duckdb.connect(str(out / "state.duckdb"), read_only=True)
    try:
        lines = con.execute("select * exclude (dated_on) from lines order by all").fetchall()
        runs = con.execute("select year, region, lines, total_payable_fen, total_clawback_fen, status, digest "
                           "from runs order by all").fetchall()
    finally:
        con.close()
    return {"files": files, "lines": lines, "runs": runs}


def kept(out: Path) -> dict[str, dict[str, bytes]]:
    """The replaced runs kept under 2021/lingang/runs/, by run id: their files."""
    runs = out / "2021" / "lingang" / "runs"
    return {d.name: {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}
            for d in sorted(runs.iterdir())} if runs.is_dir() else {}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """Ledgers before and after a change, the previous run's outputs, and uninterrupted runs to compare with."""
    root = tmp_path_factory.mktemp("kills")
    old, new = root / "ledgers_old", root / "ledgers_new"
    Scenario(LEDGERS).write_ledgers(old)
    shutil.copytree(old, new)
    compute = pl.read_csv(new / "compute.csv", infer_schema=False).with_columns(pl.lit("600000.00").alias("amount"))
    compute.write_csv(new / "compute.csv")
    previous = root / "previous"
    run_year(old, previous, 2021, region="lingang")
    # what a rerun keeps of the previous run: its region directory, under runs/ with its run id
    run_id = json.loads((previous / "2021" / "manifest.json").read_text())["run_id"]
    shutil.copytree(previous / "2021" / "lingang", root / "before-files" / "2021" / "lingang" / "runs" / run_id)
    reference = root / "reference"
    shutil.copytree(previous, reference)
    before = snapshot(reference)
    run_year(new, reference, 2021, region="lingang")
    return {"old": old, "new": new, "previous": previous, "before": before, "after": snapshot(reference)}


@pytest.mark.parametrize("point", BEFORE_COMMIT + AFTER_COMMIT)
def test_a_kill_at_any_point_leaves_outputs_and_state_consistent(world: dict, tmp_path: Path, point: str) -> None:
    out = tmp_path / "out"
    shutil.copytree(world["previous"], out)
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(world["new"]), str(out)],
                            env={**os.environ, "DISBURSE_KILL_AT": point}, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, f"{point} not reached: {killed.stderr[-2000:]}"
    if point in BEFORE_COMMIT:  # nothing visible changed: previous files, previous state
        assert snapshot(out) == world["before"]
    # What the next run does first: finish a run killed after its commit, remove staging left before one.
    with state.opened(out / "state.duckdb", "next-run") as con:
        job.recover(con, out)
    assert not list(out.glob("*/.staging-*"))
    assert snapshot(out) == (world["before"] if point in BEFORE_COMMIT else world["after"])
    previous = kept(world["previous"].parent / "before-files")
    assert kept(out) == ({} if point in BEFORE_COMMIT else previous)  # the replaced run's files, whole, under runs/
    assert verify_year(out / "2021", out / "state.duckdb")[0] == []
    run_year(world["new"], out, 2021, region="lingang")
    assert snapshot(out) == world["after"]


def test_staging_left_by_a_killed_run_is_removed_by_the_next_run(world: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(world["previous"], out)
    left = out / "2021" / ".staging-20210101T000000Z-deadbeef"
    (left / "lingang").mkdir(parents=True)
    (left / "lingang" / "payments.csv").write_text("half a file")
    run_year(world["new"], out, 2021, region="lingang")
    assert not left.exists()
    assert snapshot(out) == world["after"]


def _marked(marker: str) -> list[int]:
    """Processes whose environment carries MARKER (this test's run and whatever it started)."""
    found = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in env.read_bytes():
                found.append(int(env.parent.name))
        except OSError:
            continue
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_disburse_run_leaves_no_prefect_server_running(world: dict, tmp_path: Path) -> None:
    marker = f"DISBURSE_TEST_MARK={uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect"), "DISBURSE_KILL_AT": "compute",
            marker.split("=")[0]: marker.split("=")[1]}
    out = tmp_path / "out"
    shutil.copytree(world["previous"], out)
    log = tmp_path / "stderr.txt"
    with log.open("w") as err:  # a file, not a pipe: a server left behind would hold a pipe open
        killed = subprocess.run([str(Path(sys.executable).parent / "disburse"), "run", "--year", "2021", "--region",
                                 "lingang", "--ledgers", str(world["new"]), "--out", str(out)],
                                env=env, stdout=subprocess.DEVNULL, stderr=err, timeout=900)
    assert killed.returncode == -signal.SIGKILL, log.read_text()[-2000:]
    deadline = time.monotonic() + 20
    while _marked(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = _marked(marker)
    for pid in left:  # do not let a failure of this test leave the server behind
        os.kill(pid, signal.SIGKILL)
    assert left == [], "the temporary Prefect server outlived the killed run"
    assert snapshot(out) == world["before"]
