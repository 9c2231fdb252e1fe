"""The wheel's declaration in pyproject.toml covers every file the job runs on.

setuptools ships a directory of data files that is not declared as a package
only with a warning (one block per directory in the build's output), and a file
no package-data pattern matches not at all: an installed job would then miss a
region's rules or a template. These tests read pyproject.toml as setuptools
does (the packages list, package-dir, package-data) and walk the directories
the wheel is built from; `.ci/run` builds the wheel and pays the demo from it.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
PACKAGES: list[str] = CONFIG["packages"]
PACKAGE_DIR: dict[str, str] = CONFIG.get("package-dir", {})
PACKAGE_DATA: dict[str, list[str]] = CONFIG.get("package-data", {})
TOP = sorted({p.split(".")[0] for p in PACKAGES} | {p for p in PACKAGE_DIR})


def source_dir(package: str) -> Path:
    """The checkout directory a dotted package is built from (package-dir maps a prefix)."""
    parts = package.split(".")
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in PACKAGE_DIR:
            return ROOT / PACKAGE_DIR[prefix] / Path(*parts[i:]) if parts[i:] else ROOT / PACKAGE_DIR[prefix]
    return ROOT / Path(*parts)


def shipped_files() -> dict[str, list[Path]]:
    """Every file under the wheel's source directories, by the dotted package of its directory."""
    found: dict[str, list[Path]] = {}
    for top in TOP:
        base = source_dir(top)
        for path in sorted(base.rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            rel = path.parent.relative_to(base)
            package = ".".join((top, *rel.parts))
            found.setdefault(package, []).append(path)
    return found


def test_every_directory_of_package_files_is_a_declared_package() -> None:
    missing = sorted(set(shipped_files()) - set(PACKAGES))
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_every_data_file_is_matched_by_package_data() -> None:
    unmatched = [
        str(path.relative_to(ROOT))
        for package, paths in shipped_files().items()
        for path in paths
        if path.suffix != ".py"
        and not any(fnmatch.fnmatch(path.name, pattern) for pattern in PACKAGE_DATA.get(package, []) + PACKAGE_DATA.get("*", []))
    ]
    assert not unmatched, f"add a [tool.setuptools.package-data] pattern for: {unmatched}"


def test_every_declared_package_exists() -> None:
    assert [p for p in PACKAGES if not source_dir(p).is_dir()] == []


def test_the_walk_sees_the_catalogue_templates_and_sql() -> None:
    """The test above would pass on a walk that found nothing: it must see what the job runs on."""
    found = shipped_files()
    assert {"disburse.templates", "disburse.sql", "disburse.catalogue.lingang"} <= set(found)
    assert source_dir("disburse.catalogue.lingang") == ROOT / "rules" / "lingang"
    assert any(p.name == "audit.html.j2" for p in found["disburse.templates"])
