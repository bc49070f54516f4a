"""Every runbook reference in the package and its docs names a real heading of the runbook index.

The runbook has no numbered sections: a reference is "Section > Heading" (or a bare section or heading
title in quotes), checked against `streamflow_ops.runbook.INDEX`. The scan covers DAG docs, Slack texts,
messages, SQL comments, Prometheus rules and dashboards (dags/, plugins/, include/) and the docs.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.runbook import ALERTS, HEADINGS, INDEX

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("dags", "plugins", "include", "docs")
SUFFIXES = {".py", ".sql", ".md", ".json", ".yml", ".yaml", ".txt"}

SECTION_REF = re.compile("(" + "|".join(re.escape(s) for s in sorted(INDEX, key=len, reverse=True)) + ") > ")
NUMBERED = re.compile(r"(?i)\brunbook\s+(?:section\s+)?\d|\bsection\s+\d+\.\d|\(section \d")
QUOTED = re.compile(r"""(?i)\brunbook:?\s+"([^"\n]+)\"""")
ALERT_REF = re.compile(r"\bAlert: ([A-Za-z]+)")
TITLES = set(INDEX) | {h for hs in INDEX.values() for h in hs} | HEADINGS


def flatten(text: str) -> str:
    """One line per file: Python's implicit string concatenation and comment wraps joined."""
    text = re.sub(r"""["']\s*\n\s*f?["']""", "", text)
    text = re.sub(r"\n\s*#\s*", " ", text)
    return re.sub(r"\s+", " ", text)


def problems(text: str) -> list[str]:
    """What in `text` cites the runbook by something that is not one of its headings."""
    found = [f"numbered reference {m.group(0)!r}" for m in NUMBERED.finditer(text)]
    flat = flatten(text)
    for m in SECTION_REF.finditer(flat):
        rest = flat[m.end():]
        if not any(re.match(re.escape(h) + r"(?![\w])", rest) for h in INDEX[m.group(1)]):
            found.append(f"not a heading of {m.group(1)!r}: {flat[m.start():m.end() + 50]!r}")
    found += [f"quoted {m.group(1)!r} is no section or heading" for m in QUOTED.finditer(flat)
              if m.group(1) not in TITLES]
    found += [f"no runbook alert {m.group(1)!r}" for m in ALERT_REF.finditer(flat) if m.group(1) not in ALERTS]
    return found


def scanned_files() -> list[Path]:
    files = [REPO / "README.md"]
    for top in SCANNED:
        files += [p for p in sorted((REPO / top).rglob("*")) if p.suffix in SUFFIXES and "__pycache__" not in p.parts]
    return files


@pytest.mark.parametrize("path", scanned_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_runbook_reference_is_a_heading(path):
    assert problems(path.read_text(errors="replace")) == []


def test_the_scan_sees_the_files_that_cite_the_runbook():
    texts = {p.relative_to(REPO).as_posix(): p.read_text() for p in scanned_files()}
    assert "dags/maintenance_tasks.py" in texts and "plugins/streamflow_ops/registry.py" in texts
    # the deadline's Slack text is one of the citations the scan reads
    assert "Maintenance Windows > Daily Maintenance (03:00 UTC)" in flatten(texts["dags/maintenance_tasks.py"])


@pytest.mark.parametrize("bad", [
    "see runbook section 2.2",
    "(runbook 2.5)",
    "check the window (runbook section 2) now",
    "Runbook: Maintenance Windows > Nightly Maintenance",
    "Alert Response Procedures > Alert: KafkaLagHigh",
    "Alert Response Procedures > Alert: KafkaBrokerDownNow",
    'runbook "Restart a crashed service"',
    "'(runbook: Maintenance Windows > Daily '\n    'Maintenance (03:30 UTC))'",
])
def test_a_wrong_citation_is_found(bad):
    assert problems(bad)


@pytest.mark.parametrize("good", [
    "runbook: Maintenance Windows > Daily Maintenance (03:00 UTC).",
    '"(runbook: Maintenance Windows > Daily "\n                "Maintenance (03:00 UTC))"',
    "Alert Response Procedures > Alert: FlinkJobNotRunning / Alert: FlinkCheckpointFailing",
    'runbook "Backup and Recovery"',
    "The TaskManager count to set (runbook: 2; more when the job lags).",
])
def test_a_real_citation_passes(good):
    assert problems(good) == []


def test_the_index_is_names_only():
    assert "Alert Response Procedures > Alert: KafkaConsumerLagHigh" in HEADINGS
    assert len(ALERTS) == 9 and len(HEADINGS) == sum(len(h) for h in INDEX.values())
    assert not any("\n" in h or "kubectl" in h or len(h) > 80 for h in HEADINGS)
