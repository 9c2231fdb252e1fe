"""Progress (issue 10, item 8): a run says which stage and region it is in, on a terminal only;
each stage logs its ids and counts; a served deployment logs at INFO, `disburse run` stays quiet."""

from __future__ import annotations

import datetime as dt
import logging
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from flows.progress import TerminalStatus, listening, reported

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "fixtures" / "demo"
BIN = Path(sys.executable).parent


class Heard:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def started(self, stage, region):
        self.events.append(("started", stage, region))

    def finished(self, stage, region, result):
        self.events.append(("finished", stage, region, result))


class Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_reported_stage_tells_listeners_its_region_and_logs_counts() -> None:
    def compute(inputs, checked, paid, year, region):
        return {"run_id": "R1", "year": year, "regions_in_this_run": [region], "total_payable": "123.45"}

    stage = reported("compute", compute)
    logger = logging.getLogger("disburse")  # outside a Prefect run the stages log here
    handler, level = Messages(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with listening(Heard()) as heard:
            first = stage(None, None, None, 2025, "lingang")
            second = stage(None, None, None, 2025, region="jinan")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert heard.events == [("started", "compute", "lingang"), ("finished", "compute", "lingang", first),
                            ("started", "compute", "jinan"), ("finished", "compute", "jinan", second)]
    assert "compute lingang: done run_id=R1 year=2025 regions=['lingang']" in handler.messages
    assert not any("123.45" in m for m in handler.messages)  # counts and ids only, never amounts
    assert stage.__name__ == "compute"  # Prefect names the task after the stage function


def test_the_terminal_status_names_stage_region_and_position() -> None:
    class Status:
        text = ""

        def update(self, text):
            self.text = text

    class Inputs:
        class catalogue:
            regions = ["changning", "lingang"]

    status = TerminalStatus(console=None)
    status.status = Status()
    status.started("read", None)
    assert status.status.text == "disburse: read"
    status.finished("read", None, Inputs())
    status.started("validate", None)
    assert status.status.text == "disburse: validate"
    status.started("compute", "changning")
    status.finished("compute", "changning", None)
    status.started("compute", "lingang")
    assert status.status.text == "disburse: compute · lingang (2/2)"


def test_serving_logs_at_info_unless_the_environment_says_otherwise() -> None:
    code = ("import os; from disburse import offline; offline.apply(); a = os.environ['PREFECT_LOGGING_LEVEL']; "
            "offline.serving(); offline.apply(); "  # importing flows applies again: serving's level must hold
            "print(a, os.environ['PREFECT_LOGGING_LEVEL'], os.environ['DO_NOT_TRACK'])")
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_LOGGING_LEVEL", "DO_NOT_TRACK")}
    ours = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    assert ours.stdout.split() == ["CRITICAL", "INFO", "1"], ours.stderr
    theirs = subprocess.run([sys.executable, "-c", code], env=env | {"PREFECT_LOGGING_LEVEL": "WARNING"},
                            capture_output=True, text=True, cwd=ROOT)
    assert theirs.stdout.split() == ["WARNING", "WARNING", "1"], theirs.stderr


def test_serve_without_a_prefect_server_says_so_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path)
    done = subprocess.run([str(BIN / "disburse"), "serve", "--ledgers", str(DEMO), "--out", str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "prefect server start" in done.stderr and "PREFECT_API_URL" in done.stderr
    refused = subprocess.run([str(BIN / "disburse"), "serve", "--ledgers", str(DEMO), "--out", str(tmp_path / "out")],
                             env=env | {"PREFECT_API_URL": "http://127.0.0.1:9/api"}, capture_output=True, text=True,
                             timeout=300)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "no Prefect server answers" in refused.stderr


def _run_on_a_terminal(args: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (stdout a pipe); what the terminal showed, as text."""
    master, slave = pty.openpty()
    p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    shown = b""
    deadline = dt.datetime.now() + dt.timedelta(seconds=timeout)
    while dt.datetime.now() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    stdout = p.communicate(timeout=60)[0].decode()
    return p.returncode, stdout, shown.decode(errors="replace")


def test_a_run_on_a_terminal_shows_stage_and_region(tmp_path: Path) -> None:
    """A script sees nothing of it: the same command piped leaves stderr empty
    (tests/test_startup.py::test_the_demo_run_succeeds_while_both_cores_are_busy)."""
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
    args = [str(BIN / "disburse"), "run", "--year", "2021", "--ledgers", str(DEMO), "--params", str(DEMO / "params.yaml"),
            "--region", "lingang"]
    code, stdout, shown = _run_on_a_terminal(args + ["--out", str(tmp_path / "tty")], env, timeout=900)
    assert code == 0, shown
    assert "disburse: compute · lingang" in shown and "disburse: write" in shown
    assert "lingang" in stdout  # the summary still goes to stdout
