"""The yearly deployment as IT runs it (docs/it.md "Running it every year"): a real `prefect server start`,
`disburse serve`, a run triggered by hand with `prefect deployment run`, its artifacts read through the API.

Every process the test starts runs in a session of its own and is killed with everything it started,
whether the test passes or fails. Waits are bounded but generous: the machine may be loaded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import polars as pl
import pytest

from disburse import offline
from disburse.money import fen_to_decimal

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "fixtures" / "demo"
BIN = Path(sys.executable).parent
START_TIMEOUT = 600  # seconds for the server to answer and the deployment to appear, on a loaded machine
RUN_TIMEOUT = 900  # seconds for the triggered run to finish


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every process below PID (read from /proc), to be stopped with it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def stop(process: subprocess.Popen) -> None:
    """Stop PROCESS and everything it started: its session's group, and any descendant that left it."""
    pids = [process.pid, *descendants(process.pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.killpg(pid, sig) if pid == process.pid else os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            time.sleep(1)  # let the children finish dying before the SIGKILL sweep
    process.wait(timeout=30)


class Processes:
    """Background processes of one test; each writes its output to a log file shown when a wait fails."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.started = env, logs, []

    def start(self, name: str, *command: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")
        p = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, cwd=self.logs)
        log.close()
        self.started.append((name, p))
        return p

    def tail(self) -> str:
        return "\n".join(f"--- {name} (exit {p.poll()}) ---\n" + (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                         for name, p in self.started)

    def stop_all(self) -> None:
        for _, p in reversed(self.started):
            stop(p)


def wait_for(what: str, check, processes: Processes, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, p in processes.started:
            if p.poll() is not None:
                pytest.fail(f"{name} exited while waiting for {what}:\n{processes.tail()}")
        result = check()
        if result:
            return result
        time.sleep(2)
    pytest.fail(f"no {what} after {timeout} s:\n{processes.tail()}")


@pytest.fixture
def prefect_server(tmp_path: Path):
    """A real Prefect server on a free localhost port, with its home in a temporary directory."""
    home = tmp_path / "prefect-home"
    home.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {key: value for key, value in offline.SETTINGS.items() if key != "PREFECT_LOGGING_LEVEL"}
    env |= {"PREFECT_HOME": str(home), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    processes = Processes(env, tmp_path)
    try:
        processes.start("server", str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port))

        def healthy() -> bool:
            try:
                return httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=10).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("Prefect server", healthy, processes, START_TIMEOUT)
        yield env, processes
    finally:
        processes.stop_all()


def api(env: dict[str, str], coroutine_fn):
    """Run COROUTINE_FN(client) against the test's server, in this process, with the test's settings."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def go():
        async with get_client() as client:
            return await coroutine_fn(client)

    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}):
        return asyncio.run(go())


def test_the_served_deployment_pays_the_previous_year_and_leaves_artifacts(prefect_server, tmp_path: Path) -> None:
    env, processes = prefect_server
    out = tmp_path / "out"
    processes.start("serve", str(BIN / "disburse"), "serve", "--ledgers", str(DEMO), "--params",
                    str(DEMO / "params.yaml"), "--out", str(out), "--region", "lingang",
                    "--allow-gaps")  # the demo's earlier years are not run here

    async def deployment(client):
        from prefect.exceptions import ObjectNotFound

        try:
            return await client.read_deployment_by_name("disburse-yearly/lingang")
        except ObjectNotFound:
            return None

    found = wait_for("deployment disburse-yearly/lingang", lambda: api(env, deployment), processes, START_TIMEOUT)
    assert found.parameters["region"] == "lingang"
    assert found.parameters["ledgers"] == str(DEMO.resolve()) and found.parameters["out"] == str(out.resolve())
    (schedule,) = found.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 2 15 1 *", "Asia/Shanghai")
    assert schedule.active

    # Triggered by hand with no year, like the scheduled run: it pays the year before today (in Shanghai).
    year = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).year - 1
    triggered = subprocess.run([str(BIN / "prefect"), "deployment", "run", "disburse-yearly/lingang"], env=env,
                               capture_output=True, text=True, timeout=START_TIMEOUT, cwd=tmp_path)
    assert triggered.returncode == 0, triggered.stdout + triggered.stderr

    async def finished_runs(client):
        runs = await client.read_flow_runs()
        return [r for r in runs if r.deployment_id == found.id and r.state and r.state.is_final()] or None

    (run,) = wait_for("finished flow run", lambda: api(env, finished_runs), processes, RUN_TIMEOUT)
    assert run.state.is_completed(), f"{run.state}\n{processes.tail()}"
    assert run.name == f"{year}-lingang"
    assert run.parameters.get("year") is None

    async def artifacts(client):
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))

    async def logs_to_the_end(client):
        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

        logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
        return logs if any("artifacts written" in log.message for log in logs) else None

    artifacts = api(env, artifacts)
    # The run's process sends its log in batches: the last lines may land shortly after the run ends.
    logs = wait_for("log of the run's last step", lambda: api(env, logs_to_the_end), processes, START_TIMEOUT)
    by_key = {a.key: a for a in artifacts}
    assert set(by_key) == {"disburse-summary-lingang", "disburse-clause-totals-lingang"}

    manifest = json.loads((out / str(year) / "manifest.json").read_text())
    assert manifest["regions_in_this_run"] == ["lingang"]
    summary = by_key["disburse-summary-lingang"]
    assert summary.type == "markdown"
    assert manifest["run_id"] in summary.data and str(run.id) in summary.data
    assert f"| lingang | {manifest['regions']['lingang']['lines']} |" in summary.data
    assert manifest["regions"]["lingang"]["total_payable"] in summary.data

    # The table's totals per clause are those of the files the run wrote, to the fen.
    table = by_key["disburse-clause-totals-lingang"]
    assert table.type == "table"
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    lines = pl.read_parquet(out / str(year) / "lingang" / "audit_lines.parquet")
    expected = (lines.group_by("clause_id").agg(pl.len().alias("lines"), pl.col("payable_fen").sum())
                .sort("clause_id").rows())
    assert [(r["clause_id"], r["lines"], Decimal(r["payable"])) for r in rows] == \
        [(c, n, fen_to_decimal(int(fen))) for c, n, fen in expected]
    assert sum(Decimal(r["payable"]) for r in rows) == Decimal(manifest["regions"]["lingang"]["total_payable"])

    # The server's scheduler puts the next runs on 15 January, 02:00 in Shanghai, with no year: each pays the year before.
    async def scheduled(client):
        runs = await client.read_flow_runs()
        return [r for r in runs if r.deployment_id == found.id and r.state and r.state.is_scheduled()] or None

    upcoming = wait_for("scheduled run", lambda: api(env, scheduled), processes, START_TIMEOUT)
    shanghai = [r.expected_start_time.astimezone(dt.timezone(dt.timedelta(hours=8))) for r in upcoming]
    assert {(t.month, t.day, t.hour, t.minute) for t in shanghai} == {(1, 15, 2, 0)}
    assert all(r.parameters.get("year") is None for r in upcoming)

    # A run that hits the gap check (no year: the year before today, whose earlier years were never run)
    # fails in one line that names the deployment's parameters, not `disburse run`'s flags; no traceback.
    refused = subprocess.run([str(BIN / "prefect"), "deployment", "run", "disburse-yearly/lingang",
                              "--param", "allow_gaps=false"], env=env, capture_output=True, text=True,
                             timeout=START_TIMEOUT, cwd=tmp_path)
    assert refused.returncode == 0, refused.stdout + refused.stderr

    async def refused_run(client):
        return [r for r in await finished_runs(client) if r.id != run.id] or None

    (failed,) = wait_for("refused flow run", lambda: api(env, refused_run), processes, RUN_TIMEOUT)
    assert failed.state.is_failed(), failed.state
    message = failed.state.message
    assert message.startswith(f"year {year} (no year parameter: the year before the run's date): earlier years "
                              f"were never run"), message
    assert "--param allow_gaps=true" in message and "--param year=" in message and "--allow-gaps" not in message
    def served_to_the_end() -> str | None:  # the serving terminal's line may land after the API has the state
        text = (tmp_path / "serve.log").read_text(errors="replace")
        return text if "Finished in state Failed" in text else None

    served = wait_for("the refused run's line in the serving terminal", served_to_the_end, processes, START_TIMEOUT)
    assert "Traceback" not in served and "GapError" not in served, served[-3000:]
    assert served.count("earlier years were never run") == 1  # the run's state, logged once

    # INFO logs name stages, regions, ids and counts; no applicant names from the ledgers, no amounts.
    messages = [log.message for log in logs]
    assert any("compute lingang: done" in m and "lines=" in m for m in messages), messages
    assert any(manifest["run_id"] in m for m in messages), messages
    names = pl.read_csv(DEMO / "applicants.csv", infer_schema=False)["name"].drop_nulls().to_list()
    text = "\n".join(messages)
    assert not [n for n in names if n and n in text]
    assert manifest["regions"]["lingang"]["total_payable"] not in text

    # Stopped (Ctrl-C) before the server, as docs/it.md "Running it every year" says: it pauses its schedule.
    serve = next(p for name, p in processes.started if name == "serve")
    os.killpg(serve.pid, signal.SIGINT)
    serve.wait(timeout=START_TIMEOUT)
    assert "the schedule of disburse-yearly/lingang is paused" in (tmp_path / "serve.log").read_text()
    assert api(env, deployment).paused  # no run is scheduled while nobody serves the deployment


def test_the_year_paid_is_the_year_before_the_scheduled_day_in_shanghai() -> None:
    from flows.yearly import previous_year

    utc = dt.timezone.utc
    assert previous_year(dt.datetime(2026, 1, 14, 18, 0, tzinfo=utc)) == 2025  # 15 January 2026, 02:00 in Shanghai
    assert previous_year(dt.datetime(2025, 12, 31, 16, 30, tzinfo=utc)) == 2025  # already 1 January 2026 in Shanghai
    assert previous_year(dt.datetime(2025, 12, 31, 15, 59, tzinfo=utc)) == 2024  # still 31 December 2025 there
    assert previous_year(dt.datetime(2026, 1, 15, 2, 0)) == 2025  # a naive time is UTC


def test_the_gap_refusal_names_the_deployments_parameters() -> None:
    from disburse.job import gap_error
    from flows.yearly import gap_line

    exc = gap_error(2025, {"lingang": [2022, 2023], "jinan": [2024]})
    assert "--allow-gaps" in str(exc)  # disburse run's words
    assert gap_line(exc, year_given=True) == (
        "year 2025: earlier years were never run and the ledgers have rows for them (jinan 2024; lingang 2022, 2023); "
        "pay them first, from 2022 on (--param year=2022), or pay 2025 anyway with --param allow_gaps=true")
    assert gap_line(exc, year_given=False).startswith("year 2025 (no year parameter: the year before the run's date): ")


@pytest.mark.parametrize("server", ["stopped", "hung"])
def test_stopping_serve_waits_a_bounded_time_for_the_pause(server: str) -> None:
    """Serve stopped after the server: no server answers (refused, or a hung one that accepts and never replies);
    the pause on shutdown gives up within its bound and says the schedule stays active."""
    import threading
    import uuid

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.yearly import pause_schedule

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held = []
    if server == "hung":
        listener.listen()
        threading.Thread(target=lambda: held.append(listener.accept()), daemon=True).start()
    else:
        listener.close()  # nothing listens on the port
    try:
        with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}):
            started = time.monotonic()
            line = pause_schedule(uuid.uuid4(), "disburse-yearly/all", seconds=3)
            took = time.monotonic() - started
    finally:
        listener.close()
        for connection, _ in held:
            connection.close()
    assert took < 20, took  # Prefect's own pause retried for over a minute
    assert line.startswith("Stopped; the schedule of disburse-yearly/all was NOT paused (")
    assert ("no answer within 3 s" in line) == (server == "hung"), line
