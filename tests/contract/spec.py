"""The parts of the contract (docs/contract.md) that the contract tests pin.

The DAG table is parsed from docs/contract.md itself, so that a DAG the contract adds is checked the moment
it is written down. The Params are prose there ("`retention_days` (int, default 7, 1..365)"); they are
transcribed here once, and test_spec_dags checks every transcribed DAG is a row of the contract's table.
"""
from __future__ import annotations

import re
from pathlib import Path

SPEC_MD = Path(__file__).resolve().parents[2] / "docs" / "contract.md"

# The contract's schedule column in words -> the schedules that say the same thing to Airflow.
SCHEDULES = {"manual": {None}, "hourly": {"@hourly", "0 * * * *"}, "03:00 UTC daily": {"0 3 * * *"},
             "Sunday 02:00 UTC": {"0 2 * * 0", "0 2 * * SUN", "0 2 * * sun"},
             "Sunday 04:00 UTC": {"0 4 * * 0", "0 4 * * SUN", "0 4 * * sun"}}


def spec_dags() -> dict[str, str]:
    """dag_id -> the contract's schedule words, from the table under '## DAGs'."""
    text = SPEC_MD.read_text()
    section = text.split("\n## DAGs\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| ([^|]+?) \|", section, flags=re.MULTILINE)
    assert rows, f"no DAG rows found in {SPEC_MD}"
    return dict(rows)


# Param -> what docs/contract.md says about it. "default" absent: SPEC leaves the default to the product.
# "minimum"/"maximum": the bounds SPEC names; "enum_includes": values SPEC names; "type": JSON schema type
# (a Param may also allow null where SPEC says "optional" or "empty: the config's default").
DESTRUCTIVE_DRY_RUN = {"type": "boolean", "default": True}
PARAMS: dict[str, dict[str, dict]] = {
    "maintenance_tasks": {"dry_run": {"type": "boolean", "default": False}},
    "bronze_retention": {
        "dry_run": DESTRUCTIVE_DRY_RUN,
        "retention_days": {"type": "integer", "default": 7, "minimum": 1, "maximum": 365},
        "batch_size": {"type": "integer", "minimum": 1},
    },
    "postgres_vacuum": {
        "dry_run": DESTRUCTIVE_DRY_RUN,
        "tables": {"type": "array", "default": []},
        "full": {"type": "boolean", "default": False},
    },
    "gold_refresh": {"dry_run": {"type": "boolean"}},
    "postgres_backup": {
        "dry_run": {"type": "boolean"},
        "method": {"enum_includes": ["cnpg", "pg_dump", "gold_export"]},
        "schemas": {"type": "array"},
        "verify": {"type": "boolean", "default": True},
    },
    "airflow_housekeeping": {"dry_run": DESTRUCTIVE_DRY_RUN},
    "platform_health_sweep": {"dry_run": {"type": "boolean", "default": False}},
    "remediate_postgres_connections": {
        "dry_run": DESTRUCTIVE_DRY_RUN,
        "idle_minutes": {"type": "integer", "default": 30, "minimum": 1, "maximum": 1440},
        "application": {},
    },
    "remediate_flink_taskmanagers": {
        "dry_run": DESTRUCTIVE_DRY_RUN,
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
    },
    "remediate_flink_restart": {"dry_run": DESTRUCTIVE_DRY_RUN},
    "remediate_restart_workload": {
        "dry_run": DESTRUCTIVE_DRY_RUN,
        "namespace": {},
        "kind": {"enum_includes": ["Deployment", "StatefulSet"]},
        "name": {},
    },
    "weekly_review": {"dry_run": {"type": "boolean", "default": False}},
    "recover_bronze": {
        "dry_run": DESTRUCTIVE_DRY_RUN,
        "start": {},
        "end": {},
        "topic": {"default": "transactions.raw"},
    },
    "restore_drill": {"dry_run": {"type": "boolean"}},
}

# Values SPEC's bounds, types, enums and identifier rules refuse, per DAG and param.
NOT_BOOLEAN = ["true", 1, "yes"]
BAD_VALUES: dict[str, dict[str, list]] = {
    "bronze_retention": {"retention_days": [0, 366, "7", 1.5], "batch_size": [0, -1, -10_000]},
    "postgres_vacuum": {"full": NOT_BOOLEAN, "tables": [["gold.x; drop table silver.transactions_enriched"],
                                                        ["Silver.Fraud_Alerts"], ["fraud_alerts"], "silver.fraud_alerts"]},
    "postgres_backup": {"verify": NOT_BOOLEAN, "method": ["barman", "PG_DUMP", ""],
                        "schemas": [["gold; drop schema silver cascade"], ['"gold"'], "gold"]},
    "remediate_postgres_connections": {"idle_minutes": [0, 1441, "30"]},
    "remediate_flink_taskmanagers": {"replicas": [0, 11, "2"]},
    "remediate_restart_workload": {"kind": ["Pod", "deployment"]},
}
