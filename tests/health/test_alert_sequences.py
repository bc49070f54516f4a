"""The pure alert state machine (alerting/state.py) against a small model of what people were told, over
generated sequences of sweeps: any mix of ok/warning/critical/unknown/skipped/absent answers, Alertmanager
answers (silent, unknown, firing at warning or critical), failed PagerDuty and Slack deliveries, task
retries, dry runs, PostgreSQL outages (the sweep then runs from the Airflow ledger, alerting/ledger.py),
channels configured and removed, and a check retired from the registry.

The model knows only what was acknowledged (PagerDuty incidents open, the status Slack last heard, flapping
notes told) and the last answer of each check; the invariants of issue 22 are written against it, not
against the product's own helpers. Derandomized with a fixed budget: the same sequences on every run.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from streamflow_ops import registry
from streamflow_ops.alerting import slack
from streamflow_ops.alerting.ledger import Carried, dumps, loads, offline_states, resume
from streamflow_ops.alerting.run import ALERT_NAMES, KNOWN_CHECKS
from streamflow_ops.alerting.state import (CHANGE, FLAPPING, PAGERDUTY, RESOLVE, SLACK, TRIGGER, Policy, advance,
                                           delivery_failed, page_delivered, slack_delivered)
from streamflow_ops.results import CheckResult, Status

C, W, U, O, S = Status.CRITICAL, Status.WARNING, Status.UNKNOWN, Status.OK, Status.SKIPPED
AM = registry.MONITORING_ALERTMANAGER.name
LAG = "kafka.consumer_lag"
LEGACY = "postgres.legacy_check"  # a check of an earlier release, retired by the `retire` rule
SINGLE = ["postgres.connections", "business.fraud_rate", LEGACY]  # one subject each
KEYS = [(name, "") for name in SINGLE] + [(LAG, "g1"), (LAG, "g2")]
RETIRED = "retired"
T0 = datetime(2026, 12, 1, tzinfo=timezone.utc)

single_status = st.sampled_from([O, W, C, U, S, None])  # None: absent from the sweep
lag_answer = st.sampled_from([O, W, C, None])
lag_mode = st.sampled_from(["answers", "answers", "unknown", "skipped"])
firing = st.dictionaries(st.sampled_from(["PostgresHighConnections", "HighFraudRate", "KafkaBrokerDown"]),
                         st.sampled_from(["warning", "critical", "info"]), max_size=3)
alertmanager = st.one_of(st.none(), st.just("unknown"), firing)


def am_result(answer) -> CheckResult | None:
    if answer is None:
        return None
    if answer == "unknown":
        return CheckResult(AM, U, "Alertmanager did not answer")
    by_severity: dict[str, list[str]] = {}
    for name, severity in answer.items():
        by_severity.setdefault(severity, []).append(f"{name} (namespace=streamflow-data): summary")
    status = C if "critical" in by_severity else W if "warning" in by_severity else O
    return CheckResult(AM, status, "firing", details={"alertnames": sorted(answer), "firing": by_severity})


class AlertSequences(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.table: dict = {}  # ops.alert_state
        self.ledger = Carried()  # the Airflow ledger (JSON round trip on every write)
        self.outage = False
        self.channels = frozenset({PAGERDUTY, SLACK})
        self.known = KNOWN_CHECKS | {LEGACY}
        self.n = 0
        self.last: tuple | None = None  # the last real sweep's inputs, for a retry
        # The model: what people were told (acknowledged), and each check's last answer.
        self.incident: dict = {}
        self.told: dict = {}
        self.flap_told: dict = {}
        self.answer: dict = {}
        self.rows: dict = {}  # the rows as the last real sweep left them
        self.stamped: set = set()  # forgotten during an outage, kept in the ledger (healthy, nothing owed)

    # --- rules --------------------------------------------------------------------------------------

    @rule(singles=st.tuples(single_status, single_status, single_status), mode=lag_mode,
          lag=st.tuples(lag_answer, lag_answer), am=alertmanager, pd_fails=st.sets(st.sampled_from(KEYS + [(AM, "")])),
          slack_ok=st.booleans(), dry_run=st.sampled_from([False, False, False, True]))
    def sweep(self, singles, mode, lag, am, pd_fails, slack_ok, dry_run):
        self.n += 1
        results, answers = self.results(singles, mode, lag, am)
        sweep = (f"scheduled__{self.n}", T0 + timedelta(hours=self.n), results, answers)
        self.run(sweep, pd_fails, slack_ok, dry_run, retry=False)
        if not dry_run:
            self.last = sweep

    @precondition(lambda self: self.last is not None)
    @rule(pd_fails=st.sets(st.sampled_from(KEYS + [(AM, "")])), slack_ok=st.booleans())
    def retry(self, pd_fails, slack_ok):
        """Airflow retries the last real sweep's alert task: same sweep id, same results."""
        self.run(self.last, pd_fails, slack_ok, dry_run=False, retry=True)

    @rule()
    def postgres_goes_down_or_comes_back(self):
        self.outage = not self.outage

    @rule(channels=st.sets(st.sampled_from([PAGERDUTY, SLACK])))
    def reconfigure(self, channels):
        self.channels = frozenset(channels)

    @precondition(lambda self: LEGACY in self.known)
    @rule()
    def retire(self):
        self.known = KNOWN_CHECKS

    # --- one sweep ----------------------------------------------------------------------------------

    def results(self, singles, mode, lag, am) -> tuple[list[CheckResult], dict]:
        """The sweep's results, and each key's answer as the model reads them (None: no answer)."""
        results, answers = [], {}
        for name, status in zip(SINGLE, singles):
            if status is None or (name == LEGACY and LEGACY not in self.known):
                continue
            results.append(CheckResult(name, status, f"{name} {status.value}"))
            if status in (O, W, C):
                answers[(name, "")] = status
        if mode == "unknown":
            results.append(CheckResult(LAG, U, "the lag probe failed"))
        elif mode == "skipped":
            results.append(CheckResult(LAG, S, "no Kafka connection"))
        else:
            for subject, status in zip(("g1", "g2"), lag):
                if status is not None:
                    results.append(CheckResult(LAG, status, f"{subject} {status.value}", subject=subject))
            if any(status is not None for status in lag):  # the check answered: an absent subject is ok
                for subject, status in zip(("g1", "g2"), lag):
                    answers[(LAG, subject)] = status or O
        am_answer = am_result(am)
        if am_answer is not None:
            results.append(am_answer)
            if am_answer.status in (O, W, C):
                answers[(AM, "")] = am_answer.status
        answered = {name for name, _ in answers}
        return results, {"answers": answers, "answered": answered, "am": am if isinstance(am, dict) else None}

    def run(self, sweep, pd_fails, slack_ok, dry_run: bool, retry: bool) -> None:
        sweep_id, ordered_at, results, read = sweep
        if self.outage:
            base, adopted = resume(None, self.ledger)
        else:
            base, adopted = resume(self.table, self.ledger)
        policy = Policy(channels=self.channels)
        step = advance(base, results, sweep_id, ordered_at, policy, ALERT_NAMES, AM, self.known)
        plan = offline_states(step, base, sweep_id, ordered_at) if self.outage else step.merged(base)
        last = dict(self.answer)
        if not retry:
            last.update(read["answers"])
            for key in plan.keys() | base.keys():
                if key[0] not in self.known:
                    last[key] = RETIRED
                elif key[0] in read["answered"] and key not in read["answers"]:
                    last[key] = O  # its check answered without it: resolved
            for key in step.deleted:  # forgotten: it starts afresh
                last.pop(key, None)
        self.check_plan(plan, read, last, retry, set(step.deleted), self.stamped - last.keys())
        if dry_run:
            return  # nothing sent, nothing stored: the next real sweep owes it all
        self.answer = last
        rows = self.deliver(plan, pd_fails, slack_ok)
        self.rows = rows
        if self.outage:
            self.ledger = loads(dumps(rows.values(), offline=True))
        else:
            self.table = rows
            self.ledger = loads(dumps(rows.values(), offline=False))
        for key in list(self.flap_told):
            if key not in rows or not rows[key].flapping:
                del self.flap_told[key]
        for key in list(self.answer):  # a forgotten row (healthy, nothing owed) starts afresh
            if key not in rows:
                del self.answer[key]
        self.stamped = {k for k in self.stamped | set(step.deleted) if k in rows and k not in self.answer}

    def deliver(self, plan: dict, pd_fails, slack_ok: bool) -> dict:
        at = T0 + timedelta(hours=self.n, minutes=1)
        rows = dict(plan)
        for key, row in plan.items():
            if row.pending_page:
                if key in pd_fails:
                    rows[key] = delivery_failed(row, "500", at)
                else:
                    self.incident[key] = row.pending_page == TRIGGER
                    rows[key] = page_delivered(row, row.pending_page, at)
        message = slack.build_message([r for r in rows.values() if r.pending_slack], C, {}, "x")
        if message is not None and slack_ok:
            for key, items in message.carried.items():
                if CHANGE in items:
                    self.told[key] = rows[key].status
                if FLAPPING in items:
                    self.flap_told[key] = True
                rows[key] = slack_delivered(rows[key], items, at)
        return rows

    # --- the invariants (issue 22, point 2) ---------------------------------------------------------

    def check_plan(self, plan: dict, read: dict, last: dict, retry: bool, forgotten: set, stamped: set) -> None:
        pd, sl = PAGERDUTY in self.channels, SLACK in self.channels
        for key in forgotten:  # healthy, nothing open or owed (an outage keeps it in the ledger, stamped)
            assert not self.incident.get(key) and (key not in plan or not plan[key].owes), (key, plan.get(key))
        for key, row in plan.items():
            if key in forgotten:
                continue
            # Only configured channels are owed.
            assert pd or row.pending_page is None, (key, row)
            assert sl or not row.pending_slack, (key, row)
            # Nothing resolves without an answer: a status moves only by an answer (or the retirement note).
            expected = last.get(key)
            if key in stamped:  # kept by an outage after it was forgotten: its last answer is on the row
                pass
            elif isinstance(expected, Status):
                assert row.status is expected, (key, row.status, expected)
            elif expected == RETIRED:
                assert row.status is O and "no longer exists" in row.result.message, (key, row)
            else:
                assert row.status is None, (key, row)
            if row.pending_page == RESOLVE:
                assert expected in (O, RETIRED), (key, expected)
            # A delivered item is never owed again.
            if row.pending_page == TRIGGER:
                assert not self.incident.get(key), (key, "trigger owed again")
            if row.pending_page == RESOLVE:
                assert self.incident.get(key), (key, "resolve owed without an open incident")
            if CHANGE in row.pending_slack:
                assert row.status is not (self.told.get(key) or O), (key, "change owed that Slack was told")
            if FLAPPING in row.pending_slack:
                assert not self.flap_told.get(key), (key, "flapping told twice")
            # An incident is open until its check answers ok or is retired with a note.
            if pd and self.incident.get(key) and expected in (O, RETIRED) and not row.flapping:
                assert row.pending_page == RESOLVE, (key, row)
        for key, open_ in self.incident.items():
            if open_:
                assert key in plan, (key, "an open incident was forgotten")
        if retry:
            return
        # A page is owed in the sweep where a check first turns critical, unless Alertmanager fires the
        # same-named alert at critical (a warning never stands in for our page).
        fired = read["am"] or {}
        for key, status in read["answers"].items():
            if key[0] == AM or status is not C or self.incident.get(key) or not pd:
                continue
            alert = ALERT_NAMES.get(key[0])
            if fired.get(alert) == "critical":
                assert plan[key].pending_page is None, (key, "paged although Alertmanager pages")
            else:
                assert plan[key].pending_page == TRIGGER, (key, plan[key])

    @invariant()
    def stored_rows_agree_with_what_was_told(self):
        for key, row in self.rows.items():
            assert row.incident_open is bool(self.incident.get(key)), (key, row.incident_open)


AlertSequences.TestCase.settings = settings(max_examples=120, stateful_step_count=25, derandomize=True,
                                            deadline=None, database=None,
                                            suppress_health_check=[HealthCheck.too_slow])
test_alert_sequences = AlertSequences.TestCase
