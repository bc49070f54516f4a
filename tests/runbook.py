"""RUNBOOK.md's headings, parsed by the tests themselves (never by the product), to check citations."""
from __future__ import annotations

from pathlib import Path

RUNBOOK_MD = Path(__file__).resolve().parents[2] / "shared" / "RUNBOOK.md"


def runbook_headings() -> set[str]:
    """Every "Section > Heading" of RUNBOOK.md: a level-3 heading under its level-2 section. Lines that
    start with '#' inside code fences are shell comments, not headings."""
    headings, section, fenced = set(), None, False
    for line in RUNBOOK_MD.read_text().splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("## "):
            section = line[3:].strip()
        elif not fenced and line.startswith("### ") and section:
            headings.add(f"{section} > {line[4:].strip()}")
    return headings


HEADINGS = runbook_headings()
