"""The health-check vocabulary shared by every evaluator, the sweep, the store and the alerts."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Callable, Iterable

log = logging.getLogger(__name__)


class Status(str, Enum):
    CRITICAL = "critical"
    WARNING = "warning"
    UNKNOWN = "unknown"  # the probe itself failed: never read as healthy
    OK = "ok"
    SKIPPED = "skipped"  # not configured

    @property
    def severity(self) -> int:
        """Higher is worse: critical 4, warning 3, unknown 2, ok 1, skipped 0."""
        return _SEVERITY[self]


_SEVERITY = {Status.CRITICAL: 4, Status.WARNING: 3, Status.UNKNOWN: 2, Status.OK: 1, Status.SKIPPED: 0}


def worst(statuses: Iterable[Status | str]) -> Status:
    """The worst status of a sweep; an empty sweep says nothing, so it is unknown."""
    statuses = [Status(s) for s in statuses]
    return max(statuses, key=lambda s: s.severity) if statuses else Status.UNKNOWN


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict on one subject, with what the on-call engineer needs to act on it."""

    check_name: str  # e.g. "kafka.consumer_lag"
    status: Status
    message: str
    subject: str = ""
    value: float | None = None
    threshold: str | None = None
    runbook: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def component(self) -> str:
        return self.check_name.split(".", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (for XCom and the ops tables)."""
        data = asdict(self)
        data["status"] = self.status.value
        data["component"] = self.component
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CheckResult":
        fields = {k: v for k, v in data.items() if k != "component"}
        fields["status"] = Status(fields["status"])
        return cls(**fields)


def describe_error(exc: BaseException, limit: int = 300) -> str:
    """One line for a result message: the exception's type and the start of its text."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text if len(text) <= limit else text[:limit] + '...'}"


def guarded(check_name: str, probe: Callable[[], list[CheckResult] | CheckResult], subject: str = "",
            runbook: str = "") -> list[CheckResult]:
    """Run one check so that its failure becomes `unknown` and never takes the other checks down."""
    try:
        outcome = probe()
    except Exception as exc:  # noqa: BLE001 - isolation is the point
        log.warning("check %s failed: %s", check_name, exc, exc_info=True)
        return [CheckResult(check_name, Status.UNKNOWN, subject=subject, runbook=runbook,
                            message=f"probe failed, state unknown: {describe_error(exc, 900)}")]
    return outcome if isinstance(outcome, list) else [outcome]


def skipped(check_name: str, conn_id: str, runbook: str = "") -> CheckResult:
    """A check family whose connection is not defined: reported, never read as healthy."""
    return CheckResult(check_name, Status.SKIPPED, runbook=runbook,
                       message=f"not configured: Airflow connection '{conn_id}' is not defined")


def banded(value: float, warning_at: float, critical_at: float, inclusive: bool = True) -> Status:
    """Status of a higher-is-worse value against the runbook's two bands.

    inclusive=True: a value equal to a band's edge is in that band (">= 80%"); False: only above it ("> 10%").
    """
    def reached(edge: float) -> bool:
        return value >= edge if inclusive else value > edge

    if reached(critical_at):
        return Status.CRITICAL
    if reached(warning_at):
        return Status.WARNING
    return Status.OK
