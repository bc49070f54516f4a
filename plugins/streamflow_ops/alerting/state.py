"""What people were told and what is still owed to them, per (check, subject): the pure state machine
behind `ops.alert_state`.

A sweep's results move each row forward (`advance`); deliveries then acknowledge what got through
(`page_delivered`, `slack_delivered`) or record why not (`delivery_failed`). Rules:
- Only an answer (ok, warning, critical) moves a status. `unknown` and `skipped` resolve nothing: a
  subject keeps its last status, and after `not_measured_after` failed sweeps in a row Slack hears once
  that it is not measured. A subject absent from the sweep resolves only when its own check answered
  and had no probe failure this sweep (a per-family probe failure is one `unknown` with an empty subject,
  which must not resolve the check's other subjects).
- What is owed is derived from the row, never queued: Slack owes a "change" while the answered status
  differs from what Slack last acknowledged, and PagerDuty owes `trigger`/`resolve` while the wanted
  incident differs from the open one (wanted from critical until the check answers ok: a de-escalation to
  warning keeps the incident open). A delivery that failed is therefore retried by the next attempt in
  its newest form, and one made moot meanwhile (critical, then ok before anybody was told) vanishes.
- Flap damping: more than `flap_threshold` flips within the last `flap_window` answers turns a row
  flapping: one Slack note with its history, no further change lines or pages until the last
  `flap_window` answers agree. Damping never holds back a first page: a flapping row with no open
  incident that turns critical is paged (and told) in that sweep; the incident is then held open.
- Alertmanager deferral: a critical row whose runbook alert Alertmanager already fires (firing, not
  silenced, not inhibited) at severity critical in this very sweep is not paged by us; Slack says who
  pages. A warning-severity alert never stands in for our page. When Alertmanager does not answer, the
  deferral lapses and we page.
- Only a configured channel is owed anything (`Policy.channels`): without PagerDuty nothing is owed to it,
  without Slack nothing to Slack. Defining the connection later owes the current state, folded.
- Retired checks: a row whose check no longer exists (renamed or removed: not in `known_checks`) is
  resolved with a note saying why (its incident gets a `resolve`), then forgotten once nothing is owed.
- Orphans: a row with a problem (and so, when critical, an open incident) whose check is now `skipped`
  (its connection was removed) is told once in Slack with the dedup key to close it by hand, and listed
  in every report.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Collection, Iterable, Mapping, Sequence

from streamflow_ops.results import CheckResult, Status

Key = tuple[str, str]  # (check_name, subject)
PAGERDUTY, SLACK = "pagerduty", "slack"
CHANNELS = frozenset({PAGERDUTY, SLACK})
ANSWERS = (Status.CRITICAL, Status.WARNING, Status.OK)
PROBLEMS = (Status.CRITICAL, Status.WARNING)

# Owed Slack items of a row.
CHANGE, NOT_MEASURED, FLAPPING, ORPHAN = "change", "not_measured", "flapping", "orphan"
TRIGGER, RESOLVE = "trigger", "resolve"


class ChangeKind(str, Enum):
    NEW = "new problem"
    ESCALATION = "escalation"
    DEESCALATION = "de-escalation"
    RESOLUTION = "resolution"


@dataclass(frozen=True)
class Policy:
    flap_threshold: int = 3
    flap_window: int = 6
    defer_to_alertmanager: bool = True
    not_measured_after: int = 2
    channels: frozenset[str] = CHANNELS  # the channels whose connection is defined

    @classmethod
    def from_config(cls, alerting, channels: Collection[str]) -> "Policy":
        return cls(alerting.flap_threshold, alerting.flap_window, alerting.defer_to_alertmanager,
                   alerting.not_measured_after, frozenset(channels))


@dataclass(frozen=True)
class AlertState:
    """One row of ops.alert_state."""

    check_name: str
    subject: str = ""
    status: Status | None = None  # the last answered status (None: never answered)
    status_since: datetime | None = None
    notified_status: Status | None = None  # what Slack last acknowledged (None: nothing, reads as ok)
    notified_at: datetime | None = None
    incident_open: bool = False  # a PagerDuty trigger was acknowledged and no resolve since
    deferred_to: str | None = None  # the Alertmanager alert that pages for this instead of us
    pending_page: str | None = None  # owed PagerDuty action
    pending_slack: tuple[str, ...] = ()  # owed Slack items
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    unmeasured_sweeps: int = 0  # sweeps in a row without an answer for this subject
    unmeasured_reason: str | None = None
    recent: tuple[str, ...] = ()  # the last flap_window answered statuses, oldest first
    flapping: bool = False
    orphan: bool = False
    last_result: dict | None = None  # the last answered CheckResult (to_dict), rendered in later sweeps
    last_sweep_id: str | None = None
    checked_at: datetime | None = None

    @property
    def key(self) -> Key:
        return (self.check_name, self.subject)

    @property
    def result(self) -> CheckResult:
        if self.last_result:
            return CheckResult.from_dict(self.last_result)
        return CheckResult(self.check_name, Status.UNKNOWN, self.unmeasured_reason or "never measured",
                           subject=self.subject)

    @property
    def owes(self) -> bool:
        return bool(self.pending_page or self.pending_slack)

    @property
    def change_kind(self) -> ChangeKind | None:
        """The Slack change this row owes: from what Slack was told to the answered status."""
        told = self.notified_status or Status.OK
        if CHANGE not in self.pending_slack or self.status is None:
            return None
        if self.status in PROBLEMS and told is Status.OK:
            return ChangeKind.NEW
        if self.status is Status.CRITICAL:
            return ChangeKind.ESCALATION
        if self.status is Status.WARNING:
            return ChangeKind.DEESCALATION
        return ChangeKind.RESOLUTION

    def to_row(self) -> dict:
        """Column values for alert_state_upsert.sql (enums as text)."""
        row = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for name in ("status", "notified_status"):
            row[name] = row[name].value if row[name] else None
        row["pending_slack"] = list(self.pending_slack)
        row["recent"] = list(self.recent)
        return row

    @classmethod
    def from_row(cls, row: Mapping) -> "AlertState":
        data = dict(row)
        data.pop("updated_at", None)
        for name in ("status", "notified_status"):
            data[name] = Status(data[name]) if data[name] else None
        data["pending_slack"] = tuple(data["pending_slack"] or ())
        data["recent"] = tuple(data["recent"] or ())
        return cls(**data)


@dataclass
class Advance:
    """A sweep's effect on alert_state: rows to write and rows to forget (healthy and gone)."""

    updated: list[AlertState] = field(default_factory=list)
    deleted: list[Key] = field(default_factory=list)

    def merged(self, states: Mapping[Key, AlertState]) -> dict[Key, AlertState]:
        out = {k: s for k, s in states.items() if k not in self.deleted}
        out.update({s.key: s for s in self.updated})
        return out


def flips(statuses: Sequence[str]) -> int:
    return sum(1 for a, b in zip(statuses, statuses[1:]) if a != b)


def _add(items: tuple[str, ...], item: str) -> tuple[str, ...]:
    return items if item in items else (*items, item)


def _drop(items: tuple[str, ...], item: str) -> tuple[str, ...]:
    return tuple(i for i in items if i != item)


def reconcile(state: AlertState, channels: Collection[str] = CHANNELS) -> AlertState:
    """Derive the owed change line and page from the row (this is what folds stale owed deliveries)."""
    told = state.notified_status or Status.OK
    if state.status is None or state.status is told:
        change = False
    elif state.flapping:  # damped: only the first critical of the stretch is told (it is also paged)
        change = state.status is Status.CRITICAL
    else:
        change = True
    pending = _add(state.pending_slack, CHANGE) if change else _drop(state.pending_slack, CHANGE)
    first_page = state.status is Status.CRITICAL and state.deferred_to is None
    if state.incident_open and state.flapping:
        wanted = True  # held open: not resolved until stable
    elif state.incident_open:
        wanted = state.status is not Status.OK  # resolved when it is ok again (SPEC), not on a de-escalation
    else:
        wanted = first_page  # flapping or not: damping never holds back a first page
    page = TRIGGER if wanted and not state.incident_open else RESOLVE if state.incident_open and not wanted else None
    if PAGERDUTY not in channels:
        page = None
    if SLACK not in channels:
        pending = ()
    return replace(state, pending_slack=pending, pending_page=page)


_SEVERITIES = {"critical": Status.CRITICAL, "warning": Status.WARNING}


def firing_alerts(results: Iterable[CheckResult], alertmanager_check: str) -> dict[str, Status | None] | None:
    """The runbook alerts Alertmanager fires now, each at its highest `severity` label (None: info, none);
    None when Alertmanager did not answer this sweep. The monitoring check lists them by severity as
    "<alertname> (<where>): <summary>" lines (monitoring/evaluators.py evaluate_alerts)."""
    for r in results:
        if r.check_name == alertmanager_check and r.status in ANSWERS:
            firing: dict[str, Status | None] = {name: None for name in r.details.get("alertnames", ())}
            for severity, lines in (r.details.get("firing") or {}).items():
                for line in lines:
                    name = line.split(" (", 1)[0].split(": ", 1)[0]
                    level = _SEVERITIES.get(severity)
                    if name in firing and level is not None and (firing[name] is None
                                                                 or level.severity > firing[name].severity):
                        firing[name] = level
            return firing
    return None


def _observe(state: AlertState, result: CheckResult, policy: Policy, firing: Mapping[str, Status | None] | None,
             alert_name: str | None, alertmanager_check: str, checked_at: datetime) -> AlertState:
    status = result.status
    recent = (*state.recent, status.value)[-policy.flap_window:]
    flapping = state.flapping
    pending = _drop(_drop(state.pending_slack, NOT_MEASURED), ORPHAN)
    if not flapping and flips(recent) > policy.flap_threshold:
        flapping, pending = True, _add(pending, FLAPPING)
    elif flapping and len(recent) == policy.flap_window and len(set(recent)) == 1:
        flapping, pending = False, _drop(pending, FLAPPING)  # stable again: an undelivered note is moot
    deferred = state.deferred_to
    if status is not Status.CRITICAL or not policy.defer_to_alertmanager:
        deferred = None
    elif result.check_name == alertmanager_check:  # its critical alerts page through Alertmanager already
        deferred = ", ".join(result.details.get("alertnames", ())) or "its critical alerts"
    else:  # only an Alertmanager that answered this sweep and fires the alert now at critical pages for us;
        # one that went silent (unknown, skipped) cannot be trusted to, nor can a warning stand in for our
        # critical page, so we page rather than risk nobody paging
        fired = firing.get(alert_name) if firing is not None and alert_name is not None else None
        deferred = alert_name if fired is Status.CRITICAL else None
    return replace(state, status=status,
                   status_since=checked_at if status is not state.status else state.status_since,
                   recent=recent, flapping=flapping, pending_slack=pending, deferred_to=deferred,
                   unmeasured_sweeps=0, unmeasured_reason=None, orphan=False, last_result=result.to_dict())


def _unmeasured(state: AlertState, reason: str, policy: Policy) -> AlertState:
    count = state.unmeasured_sweeps + 1
    pending = _add(state.pending_slack, NOT_MEASURED) if count == policy.not_measured_after else state.pending_slack
    return replace(state, unmeasured_sweeps=count, unmeasured_reason=reason[:1000], pending_slack=pending)


def _worst_per_key(results: Iterable[CheckResult]) -> dict[Key, CheckResult]:
    chosen: dict[Key, CheckResult] = {}
    for r in results:
        key = (r.check_name, r.subject)
        if key not in chosen or r.status.severity > chosen[key].status.severity:
            chosen[key] = r
    return chosen


def _retired(state: AlertState, checked_at: datetime) -> AlertState:
    """The check is gone: resolve the row with a note saying why (no answer will ever come)."""
    told = state.notified_status.value if state.notified_status else "nothing"
    note = CheckResult(state.check_name, Status.OK, subject=state.subject,
                       message=f"{state.check_name} no longer exists (renamed or removed from the registry or the "
                               f"configuration): resolved without an answer, its incident is closed (people were "
                               f"last told: {told})")
    since = state.status_since if state.status is Status.OK else checked_at
    return replace(state, status=Status.OK, status_since=since, flapping=False, deferred_to=None, orphan=False,
                   pending_slack=(), unmeasured_sweeps=0, unmeasured_reason=None, last_result=note.to_dict())


def advance(states: Mapping[Key, AlertState], results: Sequence[CheckResult], sweep_id: str,
            checked_at: datetime, policy: Policy, alert_names: Mapping[str, str | None],
            alertmanager_check: str, known_checks: Collection[str] | None = None) -> Advance:
    """Move every row by one sweep (pure). A row this sweep (or a newer one) already moved is left
    alone, so a retried alert task, or an old sweep's late retry, changes nothing twice.

    alert_names: check_name -> the runbook alert of the same name (registry CheckSpec.alert).
    known_checks: every check name that still exists (None: all do); a row of any other is retired.
    `checked_at` orders the sweeps: the run's run_after or the database's clock, never a worker's.
    """
    current = _worst_per_key(results)
    unknown_checks = {r.check_name for r in results if r.status is Status.UNKNOWN}
    answered = {r.check_name for r in results if r.status in ANSWERS} - unknown_checks
    skipped_checks = {r.check_name for r in results if r.status is Status.SKIPPED}
    failed_families = {r.component: r.message for r in results if r.check_name == f"{r.component}.sweep"}
    firing = firing_alerts(results, alertmanager_check)
    out = Advance()
    for key in sorted(set(states) | {k for k, r in current.items() if r.status is not Status.SKIPPED}):
        check_name, subject = key
        state = states.get(key) or AlertState(check_name, subject)
        if state.last_sweep_id == sweep_id or (state.checked_at and state.checked_at >= checked_at):
            again = reconcile(state, policy.channels)  # moved already; only a channel removed since changes it
            if again != state:
                out.updated.append(again)
            continue
        result = current.get(key)
        if known_checks is not None and check_name not in known_checks:
            if state.status in (None, Status.OK) and not state.incident_open and not state.owes:
                out.deleted.append(key)  # retired and told (or nothing to tell): forget it
                continue
            new = _retired(state, checked_at)
        elif result is not None and result.status in ANSWERS:
            new = _observe(state, result, policy, firing, alert_names.get(check_name), alertmanager_check, checked_at)
        elif result is None and check_name in answered:
            if state.status in (None, Status.OK) and not state.incident_open and not state.owes:
                out.deleted.append(key)  # healthy and no longer reported: nothing to remember
                continue
            gone = CheckResult(check_name, Status.OK, subject=subject,
                               message=f"no longer reported by {check_name} "
                                       f"(was {state.status.value if state.status else 'unknown'}): resolved")
            new = _observe(state, gone, policy, firing, alert_names.get(check_name), alertmanager_check, checked_at)
        elif check_name in skipped_checks:
            if state.status in PROBLEMS:  # (an incident open on an ok row owes its resolve: not an orphan)
                new = state if state.orphan else replace(state, orphan=True,
                                                         pending_slack=_add(state.pending_slack, ORPHAN))
            elif state.owes or state.incident_open:
                new = state  # e.g. the resolution of a problem whose connection was then removed: still told
                # (an incident whose resolve waits for PagerDuty to be configured again is never forgotten)
            else:
                out.deleted.append(key)  # not configured any more, and nothing open or owed: forget it
                continue
        elif result is None and state.status is None and check_name.split(".", 1)[0] not in failed_families:
            out.deleted.append(key)  # never answered and gone (a family's probe failure that passed)
            continue
        else:
            reason = result.message if result is not None else failed_families.get(
                check_name.split(".", 1)[0], f"no answer from {check_name} this sweep")
            new = _unmeasured(state, reason, policy)
        out.updated.append(replace(reconcile(new, policy.channels), last_sweep_id=sweep_id, checked_at=checked_at))
    return out


def _settled(state: AlertState) -> AlertState:
    """The last error stays on the row only while something is still owed."""
    return state if state.owes else replace(state, last_error=None)


def page_delivered(state: AlertState, action: str, at: datetime) -> AlertState:
    """PagerDuty acknowledged `action` for this row."""
    return _settled(replace(state, incident_open=action == TRIGGER, pending_page=None, last_attempt_at=at))


def slack_delivered(state: AlertState, items: Sequence[str], at: datetime) -> AlertState:
    """Slack acknowledged the message that carried `items` of this row."""
    told = replace(state, pending_slack=tuple(i for i in state.pending_slack if i not in items), last_attempt_at=at)
    if CHANGE in items:
        told = replace(told, notified_status=state.status, notified_at=at)
    return _settled(told)


def delivery_failed(state: AlertState, error: str, at: datetime) -> AlertState:
    return replace(state, last_error=error[:500], last_attempt_at=at)


def dedup_key(check_name: str, subject: str) -> str:
    """One PagerDuty alert per check and subject, stable across sweeps."""
    return f"streamflow-ops/{check_name}/{subject}" if subject else f"streamflow-ops/{check_name}"
