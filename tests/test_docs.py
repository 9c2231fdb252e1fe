"""The handbook never rots: every shell block marked runnable in docs/*.md runs against the demo, and the
handbook builds with `mkdocs build --strict`.

A block is runnable when the line before its fence is `<!-- runnable -->`:

    <!-- runnable -->
    ```bash
    disburse verify out/2021
    ```

The blocks run in page order (pages by name), each with bash -euo pipefail, in one directory shared by all of
them: `fixtures` there is the checkout's, and `out/` holds the demo's 2020 and 2021, paid once before the
first block. `disburse` is the one installed beside the Python running the tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent
MARK = re.compile(r"^\s*<!-- runnable -->\s*$")
FENCE = re.compile(r"^(\s*)```bash\s*$")


def runnable_blocks(path: Path) -> list[tuple[int, str]]:
    """(line number, commands) of every block marked runnable in the page, dedented."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if not MARK.match(line):
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        fence = FENCE.match(lines[j]) if j < len(lines) else None
        assert fence, f"{path.name}:{i + 1}: <!-- runnable --> is not followed by a ```bash block"
        indent, body = fence.group(1), []
        for k in range(j + 1, len(lines)):
            if lines[k].strip() == "```":
                break
            body.append(lines[k][len(indent):] if lines[k].startswith(indent) else lines[k])
        else:
            raise AssertionError(f"{path.name}:{j + 1}: the runnable block is never closed")
        blocks.append((j + 1, "\n".join(body)))
    return blocks


BLOCKS = [(page, line, text) for page in sorted(DOCS.glob("*.md")) for line, text in runnable_blocks(page)]


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PREFECT_HOME": str(home),
            "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A directory with the checkout's fixtures and the demo's 2020 and 2021 paid into out/."""
    where = tmp_path_factory.mktemp("docs")
    (where / "fixtures").symlink_to(ROOT / "fixtures")
    env = _env(tmp_path_factory.mktemp("prefect"))
    for year in ("2020", "2021"):
        done = subprocess.run([str(BIN / "disburse"), "run", "--year", year, "--ledgers", "fixtures/demo",
                               "--params", "fixtures/demo/params.yaml", "--out", "out"],
                              cwd=where, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    return where


def test_the_handbook_has_runnable_blocks() -> None:
    """Each reader's page shows commands that are run here (finance, policy office, inputs)."""
    pages = {page.name for page, _, _ in BLOCKS}
    assert {"finance.md", "policy.md", "inputs.md"} <= pages, pages


@pytest.mark.parametrize("page,line,text", BLOCKS, ids=[f"{p.name}:{n}" for p, n, _ in BLOCKS])
def test_a_runnable_block_runs_against_the_demo(page: Path, line: int, text: str, demo: Path, tmp_path: Path) -> None:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", text], cwd=demo, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{page.name}:{line}: exit {done.returncode}\n{text}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"


def test_the_handbook_builds_strictly(tmp_path: Path) -> None:
    """`mkdocs build --strict`: every link and anchor resolves (the test extra installs mkdocs; .ci/run builds
    it too)."""
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    pytest.importorskip("material", reason="mkdocs-material is not installed (pip install -e '.[docs]')")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                          cwd=ROOT, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "rules" / "lingang" / "lingang.8.1" / "index.html").is_file()


def test_rules_site_writes_a_page_per_clause_and_an_index_per_region(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from disburse.cli import app
    from disburse.rules import load_catalogue

    out = tmp_path / "rules"
    (out / "gone").mkdir(parents=True)
    (out / "gone" / "old.md").write_text("a page of a clause no longer in the catalogue", encoding="utf-8")
    done = CliRunner().invoke(app, ["rules", "site", "--out", str(out)])
    assert done.exit_code == 0, done.output
    cat = load_catalogue(ROOT / "rules")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.md")) == sorted(
        ["index.md", *(f"{r}/index.md" for r in cat.regions), *(f"{r.region}/{c}.md" for c, r in cat.rules.items())])
    page = (out / "lingang" / "lingang.8.1.md").read_text(encoding="utf-8")
    assert cat.rules["lingang.8.1"].text in page and "`tests/scenarios/lingang/lingang.8.1.yaml`" in page
    assert "应付 600,000.00" in page  # A1's first installment: 40% × 5% × 30,000,000
    # without --params, an administrator parameter is said to come from the params file
    assert "由参数文件给出" in (out / "changning" / "changning.6.1c.md").read_text(encoding="utf-8")

    blocked = tmp_path / "file"
    blocked.write_text("", encoding="utf-8")
    refused = CliRunner().invoke(app, ["rules", "site", "--out", str(blocked / "rules")])
    assert refused.exit_code == 2 and "cannot be written" in refused.output
