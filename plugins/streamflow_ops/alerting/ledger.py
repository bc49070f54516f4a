"""What alerting told people while ops.alert_state could not be used (PostgreSQL unreachable, a table
locked or not ours), kept in Airflow until the table can be used again.

The sweep still pages from its own results then; the rows it moved are kept here, so that
- a retry of that alert task, or the next sweep while PostgreSQL is still down, starts from what was
  already told and never posts the same Slack message again;
- once PostgreSQL answers, the next sweep records them in ops.alert_state (an incident paged meanwhile is
  then resolved when its check answers ok) and clears the ledger.
Airflow's own metadata database holds it (an Airflow Variable): it is not the PostgreSQL that is down.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Iterable, Protocol

from streamflow_ops.alerting.state import AlertState, Key

VARIABLE_KEY = "streamflow_ops_alert_ledger"
_TIMES = ("status_since", "notified_at", "last_attempt_at", "checked_at")


class Ledger(Protocol):
    def load(self) -> dict[Key, AlertState]: ...

    def store(self, states: Iterable[AlertState]) -> None: ...

    def clear(self) -> None: ...


def dumps(states: Iterable[AlertState]) -> str:
    rows = []
    for state in sorted(states, key=lambda s: s.key):
        row = state.to_row()
        row.update({name: row[name].isoformat() if row[name] else None for name in _TIMES})
        rows.append(row)
    return json.dumps(rows)


def loads(text: str | None) -> dict[Key, AlertState]:
    states = {}
    for row in json.loads(text) if text else []:
        row.update({name: datetime.fromisoformat(row[name]) if row[name] else None for name in _TIMES})
        state = AlertState.from_row(row)
        states[state.key] = state
    return states


class VariableLedger:
    """The ledger as one Airflow Variable (JSON rows), read and written through the Task SDK."""

    def __init__(self, key: str = VARIABLE_KEY):
        self.key = key

    def load(self) -> dict[Key, AlertState]:
        from airflow.sdk import Variable

        return loads(Variable.get(self.key, default=None))

    def store(self, states: Iterable[AlertState]) -> None:
        from airflow.sdk import Variable

        Variable.set(self.key, dumps(states), description="platform_health_sweep: alerts told while "
                                                          "ops.alert_state could not be used (cleared once recorded)")

    def clear(self) -> None:
        from airflow.sdk import Variable

        Variable.delete(self.key)
