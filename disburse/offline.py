"""Keep Prefect on this machine: bureau data and the host stay offline.

Must run before Prefect is imported (TOOLCHAIN.md): telemetry and usage
analytics off. Prefect's logging is quiet for ``disburse run`` so a failed run
says why in one line of ours; a served deployment (``disburse serve``) logs at
INFO, to the Prefect API and to the serving terminal.

A setting already in the environment is left as it is (``apply()`` may run more
than once in a process); ``serving()`` may change what ``apply()`` set, never a
setting that came from outside.
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

# A deployment's runs log stage, region, ids and counts at INFO (flows.progress);
# the flow-run processes that `disburse serve` starts inherit this environment.
SERVED = {"PREFECT_LOGGING_LEVEL": "INFO"}

_set_here: set[str] = set()


def apply() -> None:
    for key, value in SETTINGS.items():
        if key not in os.environ:
            os.environ[key] = value
            _set_here.add(key)


def serving() -> None:
    """The settings of a process that serves the yearly deployment: offline, logging at INFO."""
    apply()
    for key, value in SERVED.items():
        if key in _set_here or key not in os.environ:
            os.environ[key] = value
            _set_here.add(key)
