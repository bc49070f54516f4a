"""Where destructive steps are routed: Airflow's default queue unless a deployment names a dedicated one.

A queue that no worker serves leaves the nightly window queued, so the package must not invent one.
"""
from __future__ import annotations

from streamflow_ops.dag_defaults import MAINTENANCE_POOL, maintenance_task_args


def test_destructive_steps_use_the_default_queue_unless_configured(monkeypatch):
    monkeypatch.delenv("AIRFLOW__STREAMFLOW_OPS__MAINTENANCE_QUEUE", raising=False)
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_QUEUE", "team-default")
    assert maintenance_task_args() == {"queue": "team-default", "pool": MAINTENANCE_POOL}


def test_a_dedicated_maintenance_queue_is_honoured(monkeypatch):
    monkeypatch.setenv("AIRFLOW__STREAMFLOW_OPS__MAINTENANCE_QUEUE", "maintenance")
    monkeypatch.setenv("AIRFLOW__STREAMFLOW_OPS__MAINTENANCE_POOL", "warehouse_writers")
    assert maintenance_task_args() == {"queue": "maintenance", "pool": "warehouse_writers"}
