"""Prefect's temporary API server, started so that it dies with the run.

With no ``PREFECT_API_URL`` Prefect starts a local server as a child process
and stops it at exit; a run killed outright (SIGKILL, OOM killer) never reaches
that exit, and the server would run on. ``start_tied`` starts the same server
first, from the main thread, with ``PR_SET_PDEATHSIG``: Linux kills it as soon
as the run's process dies, however it dies. Prefect then finds it running and
uses it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def _dies_with(parent: int):
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork: the child only calls into it

    def tie() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the tie was made
            os._exit(1)

    return tie


def start_tied() -> None:
    """Start the temporary server now, tied to this process (Linux); elsewhere, or with an API URL, do nothing."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value() or not sys.platform.startswith("linux"):
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    if server.running:
        return
    real = subprocess.Popen
    tie = _dies_with(os.getpid())

    def popen(*args, **kwargs):
        kwargs.setdefault("preexec_fn", tie)
        return real(*args, **kwargs)

    subprocess.Popen = popen  # only while this thread starts the server: nothing else runs yet
    try:
        server.start()
    finally:
        subprocess.Popen = real
