"""Airflow connection and variable environment for a sandbox profile (AIRFLOW_CONN_*, AIRFLOW_VAR_*)."""
from __future__ import annotations

import json

from sandbox import kafka, postgres
from sandbox.proc import Layout

# The sandbox runs one TaskManager (the runbook's production default is 2), and of the DAGs the
# production sweep watches only this package's own exist here.
SANDBOX_CONFIG = {"flink": {"expected_taskmanagers": 1},
                  "airflow_api": {"watched_dags": ["platform_health_sweep"], "expected_dags": ["platform_health_sweep"]}}


def sandbox_config(layout: Layout) -> dict:
    """The streamflow_ops_config overrides for a sandbox profile: its own backup and log folders."""
    return {
        **SANDBOX_CONFIG,
        "backup": {"folder": str(layout.root / "backups")},
        "housekeeping": {"log_folder": str(layout.root / "airflow_home" / "logs")},
        "reports": {"folder": str(layout.root / "reports")},
    }


def airflow_env(layout: Layout) -> dict[str, str]:
    return {
        "AIRFLOW_CONN_STREAMFLOW_POSTGRES": postgres.dsn(layout),
        "AIRFLOW_CONN_STREAMFLOW_KAFKA": json.dumps({
            "conn_type": "kafka",
            "extra": {"bootstrap.servers": kafka.bootstrap(layout), "socket.timeout.ms": 5000},
        }),
        "AIRFLOW_CONN_STREAMFLOW_FLINK": json.dumps({
            "conn_type": "http", "host": "127.0.0.1", "port": layout.flink_rest_port, "schema": "http",
        }),
        "AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG": json.dumps(sandbox_config(layout)),
        **monitoring_env(layout),
    }


def monitoring_env(layout: Layout) -> dict[str, str]:
    """streamflow_prometheus, streamflow_alertmanager and streamflow_pushgateway: the sandbox's monitoring stack."""
    return {f"AIRFLOW_CONN_STREAMFLOW_{service.upper()}": json.dumps({
        "conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http"})
        for service, port in (("prometheus", layout.prometheus_port), ("alertmanager", layout.alertmanager_port),
                              ("pushgateway", layout.pushgateway_port))}
