"""Keep Prefect on this machine: bureau data and the host stay offline.

Must run before Prefect is imported (TOOLCHAIN.md): telemetry and usage
analytics off, and Prefect's own console logging quiet so a failed run says
why in one line of ours.
"""

import os

SETTINGS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "CRITICAL",
    # A loaded 2-core machine takes 30-38 s to start the temporary API server
    # (TOOLCHAIN.md); Prefect's 20 s default fails the yearly run exactly when a
    # shared server is busy. Ten minutes is a bound on a hang, not an expectation.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600",
}


def apply() -> None:
    for key, value in SETTINGS.items():
        os.environ.setdefault(key, value)
