"""One sweep's alerting: move ops.alert_state by the sweep's results, deliver what is owed, report.

Real run: under the alerting lock, the rows are advanced and written first (what is owed is recorded
before anything is sent), then every owed item is sent and each acknowledgement written back at once.
Dry run: the same plan in memory; ops.alert_state is not touched and the report lists what would be sent.
When ops.alert_state cannot be used (PostgreSQL down, a lock held, a table owned by another role), the
sweep pages from its own results, starting from an Airflow-held ledger (alerting/ledger.py: a copy of
the table, and what was told since): retries repeat nothing, and once PostgreSQL answers the next sweep
records it in ops.alert_state.
State is ordered by the run's run_after or the database's clock, never a worker's.
"""
from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Iterable

from streamflow_ops import registry
from streamflow_ops.alerting.delivery import DeliveryReport, configured_channels, deliver
from streamflow_ops.alerting.ledger import Carried, Ledger, offline_states, resume
from streamflow_ops.alerting.state import Advance, AlertState, Key, Policy, advance, dedup_key
from streamflow_ops.alerting.store import alert_session, delete_state, load_states, save_state
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.results import CheckResult, Status, describe_error
from streamflow_ops.sqlfiles import load_sql
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


# Every check that can still answer: a row of any other check (renamed, removed) is retired with a note.
KNOWN_CHECKS = frozenset({name for name, spec in registry.SPECS.items() if spec.in_sweep}
                         | {f"{family}.sweep" for family in registry.FAMILY_NAMES})


def _plan(config: StreamflowOpsConfig, channels: frozenset[str], states: dict[Key, AlertState],
          results: list[CheckResult], sweep_id: str, ordered_at: datetime) -> Advance:
    return advance(states, results, sweep_id, ordered_at, Policy.from_config(config.alerting, channels), ALERT_NAMES,
                   registry.MONITORING_ALERTMANAGER.name, KNOWN_CHECKS)


def run_order(summary: dict) -> datetime | None:
    """The run's run_after (set by the scheduler, not a worker's clock); None outside a DAG run."""
    return datetime.fromisoformat(summary["run_after"]) if summary.get("run_after") else None


def database_now(conn) -> datetime:
    """The database's clock: orders alert state when the sweep has no run_after."""
    return conn.execute(load_sql("alert_state_clock.sql")).fetchone()[0]


def standing_alerts(config: StreamflowOpsConfig, results: list[CheckResult], sweep_id: str,
                    ordered_at: datetime | None) -> Standing:
    """Orphans and open incidents once this sweep is counted, for the sweep report written before alerting
    (read-only: only the alert task changes ops.alert_state)."""
    with ops_connection(config) as conn:
        stored = load_states(conn, config.warehouse.ops_schema)
        ordered_at = ordered_at or database_now(conn)
    step = _plan(config, configured_channels(config.alerting), stored, results, sweep_id, ordered_at)
    return Standing.of(step.merged(stored).values())


def alert(config: StreamflowOpsConfig, summary: dict, dry_run: bool, now: datetime | None = None,
          ledger: Ledger | None = None) -> AlertOutcome:
    """Advance ops.alert_state by the sweep in `summary` and deliver what is owed (dry run: only say it).

    No DDL here: the DAG's ensure_ops_tables task creates and migrates the tables. When ops.alert_state
    cannot be used, the sweep pages from its own results and `ledger` (Airflow) keeps what it told."""
    now = utcnow(now)
    results = [CheckResult.from_dict(d) for d in summary["results"]]
    sweep_id, ops = summary["sweep_id"], config.warehouse.ops_schema
    notes = list(summary.get("notes", []))
    channels = configured_channels(config.alerting)

    def send(states: dict[Key, AlertState], save) -> tuple[DeliveryReport, dict[Key, AlertState]]:
        report, delivered = deliver(config.alerting, [s for s in states.values() if s.owes],
                                    Status(summary["status"]), summary["counts"], sweep_id, dry_run=dry_run, now=now,
                                    save=save, channels=channels, notes=notes)
        return report, {**states, **delivered}

    with ExitStack() as stack:
        try:
            conn = stack.enter_context(ops_connection(config))
            stack.enter_context(alert_session(conn))
            stored = load_states(conn, ops)
            ordered_at = run_order(summary) or database_now(conn)
        except Exception as exc:  # noqa: BLE001 - PostgreSQL down, a lock, a table not ours: page anyway
            stack.close()
            return _alert_without_table(config, summary, results, dry_run, ledger, notes, channels, send,
                                        f"{ops}.alert_state cannot be used ({describe_error(exc)})")
        carried = _load_ledger(ledger, notes)
        stored, adopted = resume(stored, carried)
        step = _plan(config, channels, stored, results, sweep_id, ordered_at)
        if dry_run:
            report, states = send(step.merged(stored), None)
        else:
            # Any failure from here on (a lock wait past the statement timeout, a write) fails the task: retried.
            with conn.transaction():  # what is owed is recorded before anything is sent
                for state in adopted:
                    save_state(conn, state, ops)
                for key in step.deleted:
                    delete_state(conn, key, ops)
                for state in step.updated:
                    save_state(conn, state, ops)
            if carried.offline:
                notes.append(f"recorded in {ops}.alert_state what was told while it could not be used "
                             f"({len(adopted)} of {len(carried.states)} rows)")
            report, states = send(step.merged(stored), lambda s: save_state(conn, s, ops))
            _keep_copy(ledger, states.values(), notes)
    # Its metrics (owed deliveries) are pushed after this, by sweep.push_metrics: a refused push never
    # holds back a page.
    return AlertOutcome(report, Standing.of(states.values()), notes=notes)


def _load_ledger(ledger: Ledger | None, notes: list[str]) -> Carried:
    if ledger is None:
        return Carried()
    try:
        return ledger.load()
    except Exception as exc:  # noqa: BLE001 - without it the sweep still alerts, possibly repeating itself
        notes.append(f"alert ledger unreadable ({describe_error(exc)}): what was told while "
                     f"ops.alert_state could not be used may be told again")
        return Carried()


def _keep_copy(ledger: Ledger | None, states: Iterable[AlertState], notes: list[str]) -> None:
    """The ledger becomes a copy of ops.alert_state (where the next outage starts from)."""
    if ledger is None:
        return
    try:
        ledger.store(states, offline=False)
    except Exception as exc:  # noqa: BLE001 - the table has it; only an outage would start from older rows
        notes.append(f"alert ledger not updated ({describe_error(exc)}): an outage would start from older rows")


def _alert_without_table(config: StreamflowOpsConfig, summary: dict, results: list[CheckResult], dry_run: bool,
                         ledger: Ledger | None, notes: list[str], channels: frozenset[str], send,
                         why: str) -> AlertOutcome:
    """Page from this sweep's own results, starting from what the ledger says was told already (a retry or
    a later sweep then repeats nothing), and keep every acknowledgement in the ledger."""
    start, _ = resume(None, _load_ledger(ledger, notes))
    kept = "kept in Airflow until PostgreSQL answers" if ledger is not None else "not kept (no ledger)"
    notes.append(f"{why}: this sweep alerts from its own results; what it tells is {kept}")
    log.warning(notes[-1])
    ordered_at = run_order(summary) or datetime.fromisoformat(summary["checked_at"])
    step = _plan(config, channels, start, results, summary["sweep_id"], ordered_at)
    states = offline_states(step, start, summary["sweep_id"], ordered_at) if ledger is not None else step.merged(start)
    if dry_run or ledger is None:
        report, states = send(states, None)
    else:
        def keep(state: AlertState) -> None:
            states[state.key] = state
            ledger.store(states.values(), offline=True)

        ledger.store(states.values(), offline=True)  # what is owed is recorded before anything is sent
        report, states = send(dict(states), keep)
    return AlertOutcome(report, Standing.of(states.values()), notes=notes)
