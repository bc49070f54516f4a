"""What changed since the previous sweep, decided purely from stored statuses and current results.

Rules, chosen so that people are woken for real changes only:
- A check is compared with its last *known* status (critical, warning or ok). `unknown` (our probe
  failed) and `skipped` (not configured) carry no news: critical -> unknown -> critical is one incident,
  not two pages, and critical -> unknown never resolves an incident we can no longer see.
- `unknown` never pages. A probe failing two sweeps in a row is announced once in Slack (a blind spot),
  so a single flaky probe is silent and a broken one is not missed.
- A problem whose subject is no longer reported (a dropped table, a removed consumer group) is resolved,
  but only if its family answered this sweep; a family that failed is no news.
- PagerDuty (critical only): trigger when a check becomes critical, resolve when it leaves critical.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Mapping, Sequence

from streamflow_ops.results import CheckResult, Status

Key = tuple[str, str]  # (check_name, subject)
PROBLEMS = (Status.CRITICAL, Status.WARNING)
KNOWN = (Status.CRITICAL, Status.WARNING, Status.OK)


class ChangeKind(str, Enum):
    NEW = "new problem"
    ESCALATION = "escalation"
    DEESCALATION = "de-escalation"
    RESOLUTION = "resolution"
    BLIND = "probe failing"


@dataclass(frozen=True)
class History:
    """A check's stored past: the last two earlier sweeps' statuses and its last known status."""

    last: Status | None = None
    before_last: Status | None = None
    last_known: Status | None = None
    in_previous_sweep: bool = True


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    result: CheckResult
    previous: Status | None  # the last known status it changed from

    @property
    def key(self) -> Key:
        return (self.result.check_name, self.result.subject)

    @property
    def page_action(self) -> str | None:
        """The PagerDuty Events v2 action this change calls for, if any."""
        if self.result.status is Status.CRITICAL and self.kind in (ChangeKind.NEW, ChangeKind.ESCALATION):
            return "trigger"
        if self.previous is Status.CRITICAL and self.kind in (ChangeKind.DEESCALATION, ChangeKind.RESOLUTION):
            return "resolve"
        return None

    def to_dict(self) -> dict:
        return {"kind": self.kind.value, "previous": self.previous.value if self.previous else None,
                "page_action": self.page_action, "result": self.result.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "Change":
        return cls(ChangeKind(data["kind"]), CheckResult.from_dict(data["result"]),
                   Status(data["previous"]) if data["previous"] else None)


def _kind(previous: Status | None, current: Status) -> ChangeKind | None:
    if current is previous:
        return None
    if current in PROBLEMS and previous in (None, Status.OK):
        return ChangeKind.NEW
    if current is Status.CRITICAL and previous is Status.WARNING:
        return ChangeKind.ESCALATION
    if current is Status.WARNING and previous is Status.CRITICAL:
        return ChangeKind.DEESCALATION
    if current is Status.OK and previous in PROBLEMS:
        return ChangeKind.RESOLUTION
    return None


def detect_changes(history: Mapping[Key, History], current: Sequence[CheckResult]) -> list[Change]:
    """Changes worth telling people about, worst first."""
    changes: list[Change] = []
    for result in current:
        past = history.get((result.check_name, result.subject), History())
        if result.status in KNOWN:
            kind = _kind(past.last_known, result.status)
            if kind:
                changes.append(Change(kind, result, past.last_known))
        elif (result.status is Status.UNKNOWN and past.last is Status.UNKNOWN
              and past.before_last is not Status.UNKNOWN):
            changes.append(Change(ChangeKind.BLIND, result, past.last_known))
    reported = {(r.check_name, r.subject) for r in current}
    answering = {r.component for r in current if r.status in KNOWN}
    for (check_name, subject), past in history.items():
        if ((check_name, subject) not in reported and past.in_previous_sweep and past.last_known in PROBLEMS
                and check_name.split(".", 1)[0] in answering):
            gone = CheckResult(check_name, Status.OK, subject=subject,
                               message=f"no longer reported (was {past.last_known.value}); treated as resolved")
            changes.append(Change(ChangeKind.RESOLUTION, gone, past.last_known))
    return sorted(changes, key=lambda c: (-c.result.status.severity, c.result.check_name, c.result.subject))


def dedup_key(check_name: str, subject: str) -> str:
    """One PagerDuty alert per check and subject, stable across sweeps."""
    return f"streamflow-ops/{check_name}/{subject}" if subject else f"streamflow-ops/{check_name}"
