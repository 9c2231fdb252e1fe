"""Regions on a Dask cluster (issue 9, item 5): `disburse run --dask ADDRESS`.

The demo is paid for 2020 then 2021 twice, by `disburse run` in a subprocess:
once with the region tasks on a ``LocalCluster`` of two worker processes (on
127.0.0.1, no dashboard), once with the default runner. The finance files and
the state must be the same. Files that embed the run (its id: payments.csv,
audit.html, payments.xlsx, manifest.json; its times: manifest.json,
payments.xlsx's creation time) are compared with every run id replaced by a
placeholder, ``manifest.json`` without its times and without the sha256 of
those files, ``payments.xlsx`` by its cells; every other file byte for byte.
The state's tables are compared whole, ordered, without run ids and times.

The Dask runs report to a real `prefect server start` (``PREFECT_API_URL``, as
`--dask` requires: README "On a Dask cluster"). The test also checks what a
passing comparison alone would not show: the region tasks ran on the workers
and reported to that server (both runs' task runs are recorded there), no
worker started a Prefect server of its own, and the cluster listens on loopback
addresses only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from disburse import paths
from disburse.rules import load_catalogue
from tests.test_deployment import api, free_port, prefect_server, wait_for  # noqa: F401 - prefect_server: a fixture
from tests.test_kills import RUN_ID, _cells

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "fixtures" / "demo"
BIN = Path(sys.executable).parent
EMBED_THE_RUN = ("payments.csv", "audit.html", "payments.xlsx", "公示名单.html", "公示名单.xlsx")
# Generous on a loaded machine (no timing is asserted): connecting to the scheduler, and a worker busy computing.
SLOW = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "300s", "DASK_DISTRIBUTED__COMM__TIMEOUTS__TCP": "300s"}


def _env(prefect_home: Path, settings: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment less its Prefect settings, with a Prefect home of the run's own, plus SETTINGS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return env | SLOW | {"PREFECT_HOME": str(prefect_home)} | (settings or {})


def _run(year: int, out: Path, env: dict[str, str], *extra: str) -> None:
    done = subprocess.run(
        [str(BIN / "disburse"), "run", "--year", str(year), "--ledgers", str(DEMO),
         "--params", str(DEMO / "params.yaml"), "--out", str(out), *extra],
        env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""


def finance_files(year_dir: Path) -> dict:
    """Every file of a year, by path: bytes, run ids replaced where the run is embedded (see the module)."""
    files = {}
    for p in sorted(year_dir.rglob("*")):
        if not p.is_file():
            continue
        rel = str(p.relative_to(year_dir))
        if p.suffix == ".xlsx":
            files[rel] = _cells(p)
        elif p.name in EMBED_THE_RUN:
            files[rel] = RUN_ID.sub(b"RUN", p.read_bytes())
        elif p.name != "manifest.json":
            files[rel] = p.read_bytes()
    manifest = json.loads(RUN_ID.sub(b"RUN", (year_dir / "manifest.json").read_bytes()))
    for k in ("started_at", "finished_at"):
        manifest.pop(k)
    for region in manifest["regions"].values():
        for rel, d in region["outputs"].items():
            if Path(rel).name in EMBED_THE_RUN:
                d.pop("sha256")
    files["manifest.json"] = manifest
    return files


def recorded(state_file: Path) -> dict[str, list]:
    """Every table of the state, rows ordered, without the columns that name a run or a time."""
    con = duckdb.connect(str(state_file), read_only=True)
    try:
        tables = [t for (t,) in con.execute("select table_name from information_schema.tables "
                                            "where table_schema = 'main' order by 1").fetchall()]
        rows = {}
        for t in tables:
            cols = [c for (c, kind) in con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'main' and table_name = ? order by ordinal_position", [t]).fetchall()
                if c != "run_id" and kind not in ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE")]
            rows[t] = con.execute(f"select {', '.join(cols)} from {t} order by all").fetchall()
        return rows
    finally:
        con.close()


@pytest.fixture
def cluster():
    """Two worker processes of one thread each, every port on 127.0.0.1; closed however the test ends."""
    import dask
    from dask.distributed import LocalCluster

    with dask.config.set({"distributed.comm.timeouts.connect": "300s", "distributed.comm.timeouts.tcp": "300s"}), \
            LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                         dashboard_address=None) as c:
        yield c


def test_regions_on_a_dask_cluster_give_the_same_files_and_state_as_the_default_runner(
        cluster, prefect_server, tmp_path: Path) -> None:
    import psutil
    from dask.distributed import Client

    server_env, processes = prefect_server
    api_url = {"PREFECT_API_URL": server_env["PREFECT_API_URL"]}
    regions = load_catalogue(paths.RULES).regions
    on_dask, by_default = tmp_path / "dask", tmp_path / "default"

    # A scheduler that does not answer: one line, before the run starts, nothing written.
    nowhere = f"tcp://127.0.0.1:{free_port()}"
    refused = subprocess.run(
        [str(BIN / "disburse"), "run", "--year", "2020", "--ledgers", str(DEMO), "--out", str(on_dask),
         "--params", str(DEMO / "params.yaml"), "--dask", nowhere],
        env=_env(tmp_path / "prefect-refused", api_url) | {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "3s"},
        capture_output=True, text=True, timeout=600)
    assert (refused.returncode, refused.stderr) == (2, f"disburse: --dask {nowhere}: no Dask scheduler answered "
                                                       f"there (OSError)\n")
    assert not (on_dask / "2020").exists() and not (on_dask / "state.duckdb").exists()
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from disburse.cli import _dask_problem

    with temporary_settings({PREFECT_API_URL: server_env["PREFECT_API_URL"]}):
        assert _dask_problem("127.0.0.1") == "--dask 127.0.0.1: not a Dask scheduler address (e.g. tcp://scheduler:8786)"
        assert _dask_problem(cluster.scheduler_address) is None

    for year in (2020, 2021):
        _run(year, on_dask, _env(tmp_path / "prefect-dask", api_url), "--dask", cluster.scheduler_address)
    for year in (2020, 2021):  # as a user runs it: the default runner and the run's temporary Prefect server
        _run(year, by_default, _env(tmp_path / "prefect-default"))

    for year in ("2020", "2021"):
        got, expected = finance_files(on_dask / year), finance_files(by_default / year)
        assert sorted(got) == sorted(expected)
        assert {f"{r}/disbursements.csv" for r in regions} <= set(got)
        for rel in expected:
            assert got[rel] == expected[rel], f"{year}/{rel} differs"
    assert recorded(on_dask / "state.duckdb") == recorded(by_default / "state.duckdb")
    assert recorded(on_dask / "state.duckdb")["lines"]  # something was paid and compared

    # The region tasks ran on the workers: one task per region and run, nothing else.
    with Client(cluster, set_as_default=False) as client:
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
        workers = client.run(os.getpid)
    assert sum(executed.values()) == 2 * len(regions)
    # They reported to the runs' Prefect server: both runs, every region's task run completed (the
    # workers send their events after the task returns, so the server may record them a little later).
    expected_tasks = sorted((f"compute-{r}", "COMPLETED") for r in regions)
    assert wait_for("both runs' region task runs", lambda: (lambda got: got if got == [expected_tasks] * 2 else None)(
        api(server_env, compute_task_runs)), processes, 600)
    # No worker started a Prefect server of its own (one would, were the API not sent with the tasks).
    for pid in workers.values():
        assert psutil.Process(pid).children(recursive=True) == []
    # The cluster listens on loopback only (the scheduler runs in this process, the workers in its children).
    me = psutil.Process()
    for proc in [me, *me.children(recursive=True)]:
        for conn in proc.net_connections("inet"):
            if conn.status == psutil.CONN_LISTEN:
                assert conn.laddr.ip in ("127.0.0.1", "::1"), f"{proc.pid} listens on {conn.laddr}"


async def compute_task_runs(client) -> list[list[tuple[str, str]]]:
    """Per flow run of disburse-annual (oldest first): its compute-<region> task runs, (name, state), sorted."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    runs = await client.read_flow_runs(sort=FlowRunSort.START_TIME_ASC)
    found = []
    for run in runs:
        tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
        found.append(sorted((t.name, t.state_type.value) for t in tasks if t.name.startswith("compute-")))
    return found


def test_dask_without_a_prefect_server_the_workers_reach_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from disburse.cli import _dask_problem

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4200/api"}):  # refused before any connection
        remote = _dask_problem("tcp://scheduler.example:8786")
    assert "is this machine's loopback, which workers on other machines cannot reach" in remote
    done = subprocess.run(
        [str(BIN / "disburse"), "run", "--year", "2020", "--ledgers", str(DEMO), "--params", str(DEMO / "params.yaml"),
         "--out", str(tmp_path / "out")],
        env=_env(tmp_path / "prefect", {"DISBURSE_DASK_ADDRESS": "tcp://127.0.0.1:8786"}),  # --dask, from the environment
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "disburse: --dask tcp://127.0.0.1:8786: needs a Prefect server that outlives the run, reachable from the "
        "workers: start `prefect server start` and set PREFECT_API_URL (README \"On a Dask cluster\")"]
    assert not (tmp_path / "out" / "2020").exists() and not (tmp_path / "prefect" / "prefect.db").exists()
