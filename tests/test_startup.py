"""Start-up as IT meets it: a busy machine never fails a run, and commands that run no flow never load Prefect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "fixtures" / "demo"
BIN = Path(sys.executable).parent


def _env(prefect_home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = prefect_home  # a fresh home: the slowest start Prefect has
    return env


def test_commands_that_run_no_flow_do_not_import_prefect() -> None:
    code = ("import sys; from disburse.cli import app; "
            "sys.exit(1 if any(m == 'prefect' or m.startswith('prefect.') for m in sys.modules) else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_the_demo_run_succeeds_while_both_cores_are_busy(tmp_path: Path) -> None:
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        with tempfile.TemporaryDirectory(prefix="disburse-prefect-busy-") as home:
            done = subprocess.run(
                [str(BIN / "disburse"), "run", "--year", "2021", "--ledgers", str(DEMO),
                 "--params", str(DEMO / "params.yaml"), "--out", str(tmp_path / "out"),
                 "--allow-gaps"],  # 2021 alone (the demo has 2020 rows): this test is about start-up
                env=_env(home), capture_output=True, text=True, timeout=900)
    finally:
        for p in burners:
            p.kill()
            p.wait()
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    manifest = json.loads((tmp_path / "out" / "2021" / "manifest.json").read_text())
    assert manifest["regions"]["lingang"]["lines"] > 0


def test_a_temporary_server_that_cannot_start_stops_the_run_in_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("a file, not a directory: Prefect cannot keep its database here")
    done = subprocess.run(
        [str(BIN / "disburse"), "run", "--year", "2021", "--ledgers", str(DEMO), "--params", str(DEMO / "params.yaml"),
         "--out", str(tmp_path / "out"), "--allow-gaps"],
        env=_env(str(home)), capture_output=True, text=True, timeout=900)
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "Prefect's temporary server exited" in done.stderr, done.stderr
    assert not (tmp_path / "out" / "2021").exists()
