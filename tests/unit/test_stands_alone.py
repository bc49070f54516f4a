"""The repository stands alone: no file reads, links or cites a file a clone does not have.

A clone holds this repository only: the product contract is docs/contract.md, the runbook's headings are
the index in plugins/streamflow_ops/runbook.py. Every text file is scanned (except ignored folders), so a
new test that opens the workspace's shared contract or an absolute path of the machine it was written on fails here.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1].parent
TEXT = {".py", ".md", ".sql", ".json", ".yml", ".yaml", ".txt", ".ini", ".cfg", ".toml", ".sh", ".java", ""}

# Split so that this file does not match itself.
OUTSIDE = re.compile("|".join([
    r"\.\./" + "shared",                       # the workspace's shared folder, next to the repository
    "shared" + r"/(?:SPEC|RUNBOOK|FIELD_NOTES)",
    r'"sha' + r'red"\s*/',                    # Path(...) / "sha" "red"
    r"(?<![\w.-])/" + r"work/",               # an absolute path of the machine the repository was built on
    r"\bSPEC" + r"\.md\b",                    # the contract is docs/contract.md
    r"\bFIELD" + r"_NOTES\b",
]))


def repo_files() -> list[Path]:
    """Tracked and untracked files git does not ignore (a copy without .git: every file but caches)."""
    if (REPO / ".git").exists():
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                                capture_output=True, text=True).stdout.split("\0")
        paths = [REPO / name for name in listed if name]
    else:
        paths = [p for p in REPO.rglob("*") if not any(part.startswith(".") or part == "__pycache__"
                                                       for part in p.relative_to(REPO).parts)]
    return sorted(p for p in paths if p.is_file() and p.suffix in TEXT and p.stat().st_size < 2_000_000)


def reaches_outside(text: str) -> list[str]:
    return [text[max(m.start() - 30, 0):m.end() + 30].replace("\n", " ") for m in OUTSIDE.finditer(text)]


def test_no_file_reaches_outside_the_repository():
    found = {p.relative_to(REPO).as_posix(): hits for p in repo_files() if p != Path(__file__).resolve()
             and (hits := reaches_outside(p.read_text(errors="replace")))}
    assert found == {}


def test_the_scan_covers_tests_docs_and_the_package():
    names = {p.relative_to(REPO).as_posix() for p in repo_files()}
    assert {"README.md", "docs/contract.md", "tests/runbook.py", "tests/contract/spec.py", "Makefile",
            "plugins/streamflow_ops/runbook.py"} <= names


@pytest.mark.parametrize("text", [
    'RUNBOOK_MD = Path(__file__).resolve().parents[2] / "sha' 'red" / "RUNBOOK.md"',
    "see ../" "shared/SPEC.md",
    "the check table of SPEC" ".md",
    "(FIELD" "_NOTES)",
    "open('/" "work/shared/RUNBOOK.md')",
])
def test_a_reach_outside_is_found(text):
    assert reaches_outside(text)


def test_paths_inside_are_fine():
    assert reaches_outside("docs/contract.md, tests/runbook.py, /usr/local/airflow/logs, my_work/x") == []
