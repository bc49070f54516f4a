"""The nightly maintenance window (runbook section 2)."""
from __future__ import annotations

from airflow.sdk import dag, task

from streamflow_ops.dag_defaults import DEFAULT_ARGS, START_DATE, dry_run_param


@dag(
    dag_id="maintenance_tasks",
    schedule="0 3 * * *",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["streamflow", "maintenance"],
    params={"dry_run": dry_run_param(False, "every step only reports")},
    doc_md="""
### Nightly maintenance window (03:00 UTC)
Replaces the runbook's manual nightly routine (section 2).

1. **preflight**: connects to PostgreSQL, Kafka and Flink and reports each.
""",
)
def maintenance_tasks():
    @task
    def preflight() -> list[dict]:
        from streamflow_ops.config import get_config
        from streamflow_ops.preflight import service_checks

        return [r.to_dict() for r in service_checks(get_config())]

    @task
    def report(results: list[dict]) -> str:
        from streamflow_ops.report import format_checks
        from streamflow_ops.results import CheckResult

        text = format_checks("maintenance preflight", [CheckResult.from_dict(r) for r in results])
        print(text)
        return text

    report(preflight())


maintenance_tasks()
