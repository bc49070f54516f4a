"""One sweep's alerting: move ops.alert_state by the sweep's results, deliver what is owed, report.

Real run: under the alerting lock, the rows are advanced and written first (what is owed is recorded
before anything is sent), then every owed item is sent and each acknowledgement written back at once.
Dry run: the same plan in memory; ops.alert_state is not touched and the report lists what would be sent.
When PostgreSQL cannot be reached (it may be what is down), every current problem is sent from this
sweep alone, PagerDuty deduplicating by key, and the report says so.
"""
from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Iterable

from streamflow_ops import registry
from streamflow_ops.alerting.delivery import DeliveryReport, deliver
from streamflow_ops.alerting.state import Advance, AlertState, Key, Policy, advance, dedup_key
from streamflow_ops.alerting.store import alert_session, delete_state, load_states, save_state
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.results import CheckResult, Status, describe_error
from streamflow_ops.store import ensure_ops_schema
from streamflow_ops.timeutil import utcnow

log = logging.getLogger(__name__)

# check_name -> the runbook alert of the same meaning (Alertmanager fires it under that name).
ALERT_NAMES: dict[str, str | None] = {name: spec.alert for name, spec in registry.SPECS.items()}


def _label(state: AlertState) -> str:
    return state.check_name + (f" [{state.subject}]" if state.subject else "")


@dataclass
class Standing:
    """What is still owed, open or orphaned: listed in every sweep report."""

    still_owed: list[str] = field(default_factory=list)
    open_incidents: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, states: Iterable[AlertState]) -> "Standing":
        standing = cls()
        for s in sorted(states, key=lambda s: s.key):
            owed = ([f"pagerduty {s.pending_page}"] if s.pending_page else []) + [f"slack {i}" for i in s.pending_slack]
            if owed:
                standing.still_owed.append(f"{_label(s)}: {', '.join(owed)}"
                                           + (f" (last error: {s.last_error})" if s.last_error else ""))
            status = s.status.value if s.status else "unknown"
            if s.orphan:
                standing.orphans.append(f"{_label(s)} no longer checked (skipped) while {status}; PagerDuty incident "
                                        f"{'open' if s.incident_open else 'not open'}: dedup key "
                                        f"{dedup_key(s.check_name, s.subject)}")
            elif s.incident_open:
                standing.open_incidents.append(f"{dedup_key(s.check_name, s.subject)} ({status}"
                                               f"{', flapping' if s.flapping else ''})")
        return standing

    def lines(self, owed: bool = True) -> list[str]:
        return ([f"OWED: {line}" for line in self.still_owed] if owed else []) \
            + [f"ORPHAN: {line}" for line in self.orphans] + [f"open incident: {line}" for line in self.open_incidents]


@dataclass
class AlertOutcome:
    delivery: DeliveryReport
    standing: Standing
    notes: list[str] = field(default_factory=list)

    @property
    def changes(self) -> list[str]:
        """The change lines this sweep told (or, on a dry run, would tell)."""
        return self.delivery.changes

    def to_dict(self) -> dict:
        return {"delivery": self.delivery.to_dict(), "changes": self.changes, **asdict(self.standing),
                "notes": self.notes, "text": self.describe()}

    def describe(self) -> str:
        return "\n".join([self.delivery.describe(), *self.standing.lines(), *(f"NOTE: {n}" for n in self.notes)])


def ops_connection(config: StreamflowOpsConfig):
    """The warehouse connection for the ops tables (results, alert state), bounded by the checks' statement
    timeout: a sweep never hangs on a lock there."""
    return warehouse_connection(config.warehouse, statement_timeout_s=config.postgres_checks.statement_timeout_s)


def _plan(config: StreamflowOpsConfig, states: dict[Key, AlertState], results: list[CheckResult], sweep_id: str,
          checked_at: datetime) -> Advance:
    return advance(states, results, sweep_id, checked_at, Policy.from_config(config.alerting), ALERT_NAMES,
                   registry.MONITORING_ALERTMANAGER.name)


def standing_alerts(config: StreamflowOpsConfig, results: list[CheckResult], sweep_id: str,
                    checked_at: datetime) -> Standing:
    """Orphans and open incidents once this sweep is counted, for the sweep report written before alerting
    (read-only: only the alert task changes ops.alert_state)."""
    ops = config.warehouse.ops_schema
    with ops_connection(config) as conn:
        ensure_ops_schema(conn, ops)
        stored = load_states(conn, ops)
    return Standing.of(_plan(config, stored, results, sweep_id, checked_at).merged(stored).values())


def alert(config: StreamflowOpsConfig, summary: dict, dry_run: bool, now: datetime | None = None) -> AlertOutcome:
    """Advance ops.alert_state by the sweep in `summary` and deliver what is owed (dry run: only say it)."""
    now = utcnow(now)
    results = [CheckResult.from_dict(d) for d in summary["results"]]
    checked_at = datetime.fromisoformat(summary["checked_at"])
    sweep_id, ops = summary["sweep_id"], config.warehouse.ops_schema
    notes = list(summary.get("notes", []))

    def send(states: dict[Key, AlertState], save) -> tuple[DeliveryReport, dict[Key, AlertState]]:
        report, delivered = deliver(config.alerting, [s for s in states.values() if s.owes],
                                    Status(summary["status"]), summary["counts"], sweep_id, dry_run=dry_run, now=now,
                                    save=save, notes=notes)
        return report, {**states, **delivered}

    with ExitStack() as stack:
        try:
            conn = stack.enter_context(ops_connection(config))
        except Exception as exc:  # noqa: BLE001 - PostgreSQL down: tell everything current rather than nothing
            notes.append(f"ops.alert_state unreachable ({describe_error(exc)}): every current problem is sent from "
                         f"this sweep alone and repeats until PostgreSQL answers (PagerDuty deduplicates by key)")
            log.warning(notes[-1])
            report, states = send(_plan(config, {}, results, sweep_id, checked_at).merged({}), None)
            return AlertOutcome(report, Standing.of(states.values()), notes=notes)
        # Any failure from here on (a lock wait past the statement timeout, a write) fails the task: retried.
        stack.enter_context(alert_session(conn))
        ensure_ops_schema(conn, ops)
        stored = load_states(conn, ops)
        step = _plan(config, stored, results, sweep_id, checked_at)
        if dry_run:
            report, states = send(step.merged(stored), None)
        else:
            with conn.transaction():  # what is owed is recorded before anything is sent
                for key in step.deleted:
                    delete_state(conn, key, ops)
                for state in step.updated:
                    save_state(conn, state, ops)
            report, states = send(step.merged(stored), lambda s: save_state(conn, s, ops))
    # Its metrics (owed deliveries) are pushed after this, by sweep.push_metrics: a refused push never
    # holds back a page.
    return AlertOutcome(report, Standing.of(states.values()), notes=notes)
