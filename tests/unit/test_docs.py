"""The README is a short front page and docs/ holds the rest: every link resolves, every page is linked,
every runbook alert has its response, and nothing in the demo or the tests relies on `airflow dags test`'s
exit code (apache/airflow#73428: non-zero after a successful run of a DAG with a deadline)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.runbook import ALERTS

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#([^)\s]+))?\)")


def pages() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.glob("*.md"))]


def links(page: Path) -> list[tuple[str, str | None]]:
    return [(target, anchor) for target, anchor in LINK.findall(page.read_text())
            if not target.startswith(("http://", "https://", "mailto:"))]


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.+)$", page.read_text(), flags=re.MULTILINE)}


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(page):
    broken = []
    for target, anchor in links(page):
        path = (page.parent / target).resolve()
        if not path.exists():
            broken.append(target)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{target}#{anchor}")
    assert broken == []


@pytest.mark.parametrize("index", [REPO / "README.md", DOCS / "README.md"], ids=["README.md", "docs/README.md"])
def test_the_front_page_and_the_docs_index_link_every_page(index):
    linked = {(index.parent / target).resolve() for target, _ in links(index)}
    assert {p.resolve() for p in DOCS.glob("*.md") if p.name != "README.md"} <= linked


def test_the_readme_stays_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 80


def test_alerts_md_has_a_response_for_every_runbook_alert():
    headings = re.findall(r"^## Alert: (\w+)$", (DOCS / "alerts.md").read_text(), flags=re.MULTILINE)
    assert headings == list(ALERTS)


def test_the_link_check_finds_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("# A heading\n")
    page.write_text("[ok](there.md#a-heading) [gone](missing.md) [bad](there.md#nope) [web](https://x.org/a.md)")
    assert links(page) == [("there.md", "a-heading"), ("missing.md", ""), ("there.md", "nope")]
    assert "a-heading" in anchors(tmp_path / "there.md") and "nope" not in anchors(tmp_path / "there.md")


CODE = ("scripts", "tests", "sandbox", "bench")
DAGS_TEST = re.compile(r"""["']dags["']\s*,\s*["']test["']|airflow dags test""")


def test_nothing_runs_airflow_dags_test_and_trusts_its_exit_code():
    """The demo and the tests run a DAG through dag.test() and read the run's state (scripts/demo.py)."""
    users = [p.relative_to(REPO).as_posix() for top in CODE for p in (REPO / top).rglob("*.py")
             if p != Path(__file__) and DAGS_TEST.search(re.sub(r'"""[\s\S]*?"""', "", p.read_text()))]
    users += ["Makefile"] if DAGS_TEST.search((REPO / "Makefile").read_text()) else []
    assert users == []
    assert DAGS_TEST.search('subprocess.run(["airflow", "dags", "test", "maintenance_tasks"])')
