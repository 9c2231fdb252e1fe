"""Prefect's temporary API server, started early and tied to the run's process.

With no ``PREFECT_API_URL`` Prefect would start a local server itself, the
first time the flow needs it: it imports the whole server (about 2 s here) in
the run's own process, then starts it as a child and waits for it (about 3 s),
while the run does nothing. ``TiedServer`` starts the same server, with the
same command Prefect uses, as the first thing ``disburse run`` does: the run
checks its inputs and imports Prefect while the server starts on the other
core, and never imports the server's code at all. ``ready()`` then points this
process's Prefect at it (``PREFECT_API_URL``), so Prefect uses it and starts
none.

The child gets ``PR_SET_PDEATHSIG``: Linux kills it as soon as the run's
process dies, however it dies (SIGKILL, the OOM killer), and ``stop()`` ends it
at a normal exit. A busy machine is given the time it needs
(``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``, ten minutes by
``disburse.offline``); a server that exits before answering stops the run with
one line.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

PR_SET_PDEATHSIG = 1
# uvicorn's exit code when its port was taken between our check and its bind, and also when the
# application failed to start: a few retries on new ports, then the run stops
PORT_IN_USE = 3
PORT_RETRIES = 3


class ServerError(RuntimeError):
    """The temporary Prefect server could not be started; the message is one line."""


def _dies_with(parent: int):
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork: the child only calls into it

    def tie() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.umask(0o077)  # the server's database (the runs' parameters, logs, artifacts) is the owner's only
        if os.getppid() != parent:  # the parent died before the tie was made
            os._exit(1)

    return tie


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _prefect_dir() -> Path:
    """Where the prefect package lives, found without importing it (the server's --app-dir)."""
    import importlib.util

    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("Prefect is not installed")
    return Path(next(iter(spec.submodule_search_locations))).parent


class TiedServer:
    """A temporary Prefect API on 127.0.0.1 for this run only (``start`` → ``ready`` → ``stop``)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self._settings = None  # Prefect's settings pointed at this server (ready), undone by stop

    @staticmethod
    def wanted() -> bool:
        """Whether to start one: not when the run has a server (``PREFECT_API_URL``); Linux only.

        Before Prefect is imported only the environment is seen: a server named in Prefect's profile or
        a ``.env`` file is found once Prefect is imported, and the run then stops this one (``disburse.cli``)."""
        if not sys.platform.startswith("linux") or os.environ.get("PREFECT_API_URL"):
            return False
        if "prefect.settings" in sys.modules:  # already imported (a test harness): ask its settings
            from prefect.settings import PREFECT_API_URL

            return not PREFECT_API_URL.value()
        return True

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> "TiedServer":
        self.port = _free_port()
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        # what Prefect's own temporary server sets: no UI, the ephemeral server's reduced services
        env.update({"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(_prefect_dir()), "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "error", "--lifespan", "on"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_dies_with(os.getpid()))
        return self

    def ready(self) -> str:
        """Wait until the server answers, point this process's Prefect at it, and return its API address."""
        limit = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "20"))
        deadline = time.monotonic() + limit
        retries = PORT_RETRIES
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code == PORT_IN_USE and retries and not _port_free(self.port):  # its port was taken: another
                retries -= 1
                self.start()
                continue
            if code is not None:
                raise ServerError(f"Prefect's temporary server exited with code {code} before answering "
                                  f"(is PREFECT_HOME writable?)")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.05)
        else:
            self.stop()
            raise ServerError(f"Prefect's temporary server did not answer within {limit:.0f} s "
                              f"(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)")
        os.environ["PREFECT_API_URL"] = self.api_url
        if "prefect.settings" in sys.modules:  # settings already read: tell them too
            from prefect.settings import PREFECT_API_URL, temporary_settings

            self._settings = temporary_settings(updates={PREFECT_API_URL: self.api_url})
            self._settings.__enter__()
        return self.api_url

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        if os.environ.get("PREFECT_API_URL") == self.api_url:
            del os.environ["PREFECT_API_URL"]
        if self._settings is not None:
            self._settings.__exit__(None, None, None)
            self._settings = None


_early: TiedServer | None = None


def start_early(argv: list[str]) -> None:
    """Start the server for ARGV before anything heavy is imported, when ARGV is a ``run`` that will need
    one (no --help, no --dask, no ``PREFECT_API_URL``); ``take_early`` hands it to the run. A run that
    stops before reaching the flow stops it at exit."""
    global _early
    if not argv or argv[0] != "run" or "--help" in argv or "--dask" in argv or any(a.startswith("--dask=") for a in argv):
        return
    if os.environ.get("DISBURSE_DASK_ADDRESS"):
        return
    from disburse import offline

    offline.apply()  # the server inherits the run's offline settings
    if TiedServer.wanted():
        import atexit

        _early = TiedServer().start()
        atexit.register(_early.stop)


def take_early() -> TiedServer | None:
    """The server ``start_early`` started, if any (once)."""
    global _early
    server, _early = _early, None
    return server

