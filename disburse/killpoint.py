"""A test hook, and nothing else: ``DISBURSE_KILL_AT=<point>`` makes the process SIGKILL itself at <point>.

tests/test_kills.py uses it to show that a kill at any instant strands nothing.
The points, in the order a run reaches them:

    ingest, validate, compute, publish        the start of each stage
    staged                                    every file staged and on disk; state rows inserted, uncommitted
    committed                                 state rows committed as pending, no file moved
    aside:<region>, in:<region>               a region directory moved aside, then the new one in
    in:rejected.csv, in:manifest.json         the year-level files replaced
    swapped                                   every file in place, run still pending
    done                                      run marked done, staging not yet removed

Unset (always, outside those tests) it costs one dictionary lookup.
"""

import os
import signal


def reached(point: str) -> None:
    if os.environ.get("DISBURSE_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
