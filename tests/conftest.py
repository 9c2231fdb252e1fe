"""Hermetic tests: Prefect runs against a throw-away local API in a temporary PREFECT_HOME."""

import os
import tempfile

os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="disburse-prefect-")
from disburse import offline  # noqa: E402

offline.apply()

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_api():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=600):  # never time out on a loaded machine
        yield
