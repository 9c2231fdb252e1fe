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
}


def apply() -> None:
    for key, value in SETTINGS.items():
        os.environ.setdefault(key, value)
