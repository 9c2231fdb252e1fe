"""Where the job's own data lives: the rules catalogue and the SQL.

In a checkout (and an editable install) they are the top-level ``rules/`` and
``sql/``; a built wheel carries them as package data under ``disburse/``
(pyproject.toml maps them), so an installed job runs from any directory.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data(installed: str, in_checkout: str) -> Path:
    packaged = _PACKAGE / installed
    return packaged if packaged.is_dir() else _PACKAGE.parent / in_checkout


RULES = _data("catalogue", "rules")
SQL = _data("sql", "sql")
