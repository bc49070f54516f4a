"""The alert state kept outside PostgreSQL, in Airflow (an Airflow Variable): a copy of ops.alert_state as
the last sweep left it, and what alerting told while that table could not be used (PostgreSQL
unreachable, a lock held, a table not ours).

- While the table cannot be used, the sweep pages from its own results, starting from the ledger (what
  was last known, and told since): a retry of that alert task, or the next sweep while PostgreSQL is
  still down, never posts the same Slack message nor owes the same page again. Each acknowledgement is
  written to the ledger at once, marked `offline`.
- Once the table can be used, the offline rows newer than the table's are recorded there (an incident
  paged meanwhile is then resolved when its check answers ok), and the ledger becomes a copy again.
A copy is never recorded back (only `offline` rows are): a row the table forgot is not brought back.
Airflow's own metadata database holds it: it is not the PostgreSQL that is down.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Iterable, Mapping, Protocol

from streamflow_ops.alerting.state import Advance, AlertState, Key

VARIABLE_KEY = "streamflow_ops_alert_ledger"
_TIMES = ("status_since", "notified_at", "last_attempt_at", "checked_at")
_EPOCH = datetime.min.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Carried:
    offline: bool = False  # written while ops.alert_state could not be used: to be recorded there
    states: Mapping[Key, AlertState] = field(default_factory=dict)


class Ledger(Protocol):
    def load(self) -> Carried: ...

    def store(self, states: Iterable[AlertState], offline: bool) -> None: ...


def resume(stored: Mapping[Key, AlertState] | None, carried: Carried) -> tuple[dict[Key, AlertState],
                                                                              list[AlertState]]:
    """Where a sweep starts (pure), and the ledger rows to record in ops.alert_state. `stored`: the table's
    rows, None when it cannot be used."""
    if stored is None:
        return dict(carried.states), []
    if not carried.offline:
        return dict(stored), []
    # Not older: a retry while the table could not be used acknowledges deliveries of the same sweep.
    adopted = [s for k, s in carried.states.items() if s != stored.get(k)
               and (k not in stored or (stored[k].checked_at or _EPOCH) <= (s.checked_at or _EPOCH))]
    return {**stored, **{s.key: s for s in adopted}}, adopted


def offline_states(step: Advance, start: Mapping[Key, AlertState], sweep_id: str,
                   ordered_at: datetime) -> dict[Key, AlertState]:
    """The rows a sweep keeps in the ledger while the table cannot be used (pure). A row it forgets (healthy,
    or never answered and gone) is kept, stamped with this sweep and owing nothing: the table may still hold
    an older state of it, which this one overwrites once recorded (the next sweep that can use the table
    then forgets it there)."""
    kept = step.merged(start)
    for key in step.deleted:
        kept[key] = replace(start[key], pending_slack=(), pending_page=None, last_sweep_id=sweep_id,
                            checked_at=ordered_at)
    return kept


def dumps(states: Iterable[AlertState], offline: bool) -> str:
    rows = []
    for state in sorted(states, key=lambda s: s.key):
        row = state.to_row()
        row.update({name: row[name].isoformat() if row[name] else None for name in _TIMES})
        rows.append(row)
    return json.dumps({"offline": offline, "rows": rows})


def loads(text: str | None) -> Carried:
    data = json.loads(text) if text else {}
    states = {}
    for row in data.get("rows", []):
        row.update({name: datetime.fromisoformat(row[name]) if row[name] else None for name in _TIMES})
        state = AlertState.from_row(row)
        states[state.key] = state
    return Carried(bool(data.get("offline")), states)


class VariableLedger:
    """The ledger as one Airflow Variable (JSON), read and written through the Task SDK."""

    def __init__(self, key: str = VARIABLE_KEY):
        self.key = key

    def load(self) -> Carried:
        from airflow.sdk import Variable

        return loads(Variable.get(self.key, default=None))

    def store(self, states: Iterable[AlertState], offline: bool) -> None:
        from airflow.sdk import Variable

        Variable.set(self.key, dumps(states, offline),
                     description="platform_health_sweep: the alert state outside PostgreSQL (alerting/ledger.py)")
