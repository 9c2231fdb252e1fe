"""The ``disburse`` command's entry point, light on purpose.

Importing the command line (polars, DuckDB, pandera, typer, rich) takes most
of a second. A ``disburse run`` that will need Prefect's temporary server starts
it first (``disburse.server.start_early``), so the server boots on the other core
while those imports run; every other command starts nothing.
"""

import sys


def main() -> None:
    from disburse import server

    server.start_early(sys.argv[1:])
    from disburse.cli import main as command_line

    command_line()
