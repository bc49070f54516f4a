"""The hourly platform health sweep: every runbook check, stored, reported, alerts on change."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.sdk import TriggerRule, dag, task

from streamflow_ops.dag_defaults import COMMON_DAG_ARGS, dry_run_param
from streamflow_ops.sweep import FAMILIES, FAMILY_TASK_TIMEOUT

# A family task that dies is retried quickly, so that the sweep still ends within its minute.
FAMILY_ARGS = {"execution_timeout": FAMILY_TASK_TIMEOUT, "retry_delay": timedelta(seconds=5),
               "retry_exponential_backoff": False}


@dag(
    dag_id="platform_health_sweep",
    schedule="@hourly",
    **COMMON_DAG_ARGS,
    dagrun_timeout=timedelta(minutes=15),
    tags=["streamflow", "health", "alerting"],
    params={"dry_run": dry_run_param(False, "checks run and their results are stored, but no Slack or "
                                            "PagerDuty alert is sent")},
    doc_md="""
### Platform health sweep (hourly)
Runs every health check of the operations runbook and tells people what **changed**.

1. **check_&lt;family&gt;** (in parallel): Kafka, Flink, PostgreSQL, Kubernetes, Airflow (REST API),
   monitoring (Prometheus, Alertmanager, Grafana) and business (fraud rate, pipeline latency).
   Each family has a 40 s budget; a family that fails, hangs or is not installed reports `unknown`,
   and one whose connection is not defined reports `skipped`. Nothing reads as healthy by default.
2. **summarize**: stores every result in `ops.health_check_results`, computes the sweep status (the
   worst check), pushes metrics when `streamflow_pushgateway` is defined, and logs a readable
   report (also its XCom).
3. **alert**: compares with the previous sweeps. Slack (`slack_streamflow_alerts`) gets one Block Kit
   message only when something changed (new problem, escalation, de-escalation, resolution, or a probe
   failing twice in a row); PagerDuty (`pagerduty_streamflow`) gets `trigger` when a check turns
   critical and `resolve` when it clears (dedup key per check and subject). `unknown` never pages.
   A delivery failure is in the XCom `delivery` and fails the task, which is retried.

**dry_run**: check and record, send no alert (the alert task lists what it would have sent).
""",
)
def platform_health_sweep():
    def family_task(family: str):
        @task(task_id=f"check_{family}", **FAMILY_ARGS)
        def check() -> list[dict]:
            from streamflow_ops.config import get_config
            from streamflow_ops.sweep import run_family

            return [r.to_dict() for r in run_family(family, get_config())]

        return check()

    @task(trigger_rule=TriggerRule.ALL_DONE, execution_timeout=timedelta(seconds=60),
          retry_delay=timedelta(seconds=10))
    def summarize(outputs: dict[str, list[dict] | None]) -> dict:
        from airflow.sdk import get_current_context

        from streamflow_ops.config import get_config
        from streamflow_ops.sweep import collect, summarize as summarize_sweep

        context = get_current_context()
        started = context["dag_run"].start_date or datetime.now(timezone.utc)
        summary = summarize_sweep(get_config(), context["run_id"], collect(outputs), started)
        print(summary["report"])
        return summary

    @task(execution_timeout=timedelta(minutes=2), retry_delay=timedelta(seconds=30))
    def alert(summary: dict) -> dict:
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowException

        from streamflow_ops.config import get_config
        from streamflow_ops.sweep import alert as alert_on_changes

        context = get_current_context()
        outcome = alert_on_changes(get_config(), summary, dry_run=context["params"]["dry_run"]).to_dict()
        print(outcome["text"])
        if outcome["delivery"]["errors"]:
            context["ti"].xcom_push(key="delivery", value=outcome)
            raise AirflowException("alert delivery failed: " + "; ".join(outcome["delivery"]["errors"]))
        return outcome

    alert(summarize({family: family_task(family) for family in FAMILIES}))


platform_health_sweep()
