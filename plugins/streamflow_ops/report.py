"""Readable plain-text reports for task logs, XCom and `make demo`."""
from __future__ import annotations

from typing import Iterable

from streamflow_ops.results import CheckResult, worst

_MARK = {"critical": "CRIT", "warning": "WARN", "unknown": "UNKN", "ok": " OK ", "skipped": "SKIP"}


def format_checks(title: str, results: Iterable[CheckResult]) -> str:
    """One line per check, worst first, under a headline with the overall status."""
    results = sorted(results, key=lambda r: (-r.status.severity, r.check_name, r.subject))
    overall = worst(r.status for r in results).value if results else "unknown"
    lines = [f"== {title}: {overall.upper()} ({len(results)} checks) =="]
    for r in results:
        subject = f"[{r.subject}] " if r.subject else ""
        lines.append(f"[{_MARK[r.status.value]}] {r.check_name} {subject}- {r.message}")
        if r.status.severity >= 3 and r.runbook:
            lines.append(f"        -> {r.runbook}")
    return "\n".join(lines)
