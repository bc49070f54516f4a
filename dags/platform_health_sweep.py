"""The hourly platform health sweep: every runbook check, stored, reported, alerts on change."""
from __future__ import annotations

from datetime import timedelta

from airflow.sdk import TriggerRule, dag, task

from streamflow_ops import sweep_tasks
from streamflow_ops.dag_defaults import COMMON_DAG_ARGS, dry_run_param
from streamflow_ops.sweep import FAMILIES, FAMILY_TASK_TIMEOUT

# A family task that dies is retried quickly, so that the sweep still ends within its minute.
FAMILY_ARGS = {"execution_timeout": FAMILY_TASK_TIMEOUT, "retry_delay": timedelta(seconds=5),
               "retry_exponential_backoff": False}
# A refused delivery stays owed in ops.alert_state; the retry sends only what is still owed.
ALERT_RETRY_DELAY = timedelta(seconds=30)


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
Runs every health check of the operations runbook (runbook "Service Health Checks"; each result cites
its own heading) and tells people what **changed**.

0. **ensure_ops_tables** (in parallel with the checks): creates or migrates the `ops` tables, waiting at
   most `warehouse.schema_lock_timeout_s` for a lock. It is the sweep's only DDL: nothing in the alert
   path changes the schema, so an analyst's open transaction never stops alerting.
1. **check_&lt;family&gt;** (in parallel): Kafka, Flink, PostgreSQL, Kubernetes, Airflow (REST API),
   monitoring (Prometheus, Alertmanager, Grafana) and business (fraud rate, pipeline latency).
   Each family has a 40 s budget; a family that fails, hangs or is not installed reports `unknown`,
   and one whose connection is not defined reports `skipped`. Nothing reads as healthy by default.
2. **summarize**: stores every result in `ops.health_check_results`, computes the sweep status (the
   worst check), and logs a readable report (also its XCom).
3. **alert**: compares with what people were told (`ops.alert_state`, never the stored results). Slack
   (`slack_streamflow_alerts`) gets one Block Kit message only for news (new problem, escalation,
   de-escalation, resolution, a probe failing two sweeps in a row, a flapping check, an incident whose
   check is no longer configured); PagerDuty (`pagerduty_streamflow`) gets `trigger` when a check turns
   critical and `resolve` when it is ok again (dedup key per check and subject), unless Alertmanager already
   fires the runbook alert of the same name at critical (a warning never stands in for our page). Only an
   answer resolves: `unknown` and `skipped` never do.
   What could not be delivered stays owed: the task fails (XCom `delivery`), and its retry or the next
   sweep sends what is still owed, never twice. Then, whatever was delivered, it pushes the sweep's metrics
   and the deliveries still owed to a configured channel to `streamflow_pushgateway` when defined (the
   rules of `include/prometheus/`, docs/monitoring.md); a refused push fails the task after the pages went
   out, and its retry sends nothing twice. PagerDuty and Slack are delivered at the same time, each within
   `alerting.channel_budget_s`. When `ops.alert_state` cannot be used, it pages from this sweep's results
   and keeps what it told in the Airflow Variable `streamflow_ops_alert_ledger` until PostgreSQL answers.

**dry_run**: check and record results, send nothing and leave `ops.alert_state` untouched (the alert
task lists what it would have sent).
""",
)
def platform_health_sweep():
    checks = {family: task(sweep_tasks.check_family, task_id=f"check_{family}", **FAMILY_ARGS)(family)
              for family in FAMILIES}
    tables = task(sweep_tasks.ensure_tables, task_id="ensure_ops_tables", execution_timeout=timedelta(seconds=30),
                  retry_delay=timedelta(seconds=5), retry_exponential_backoff=False)()
    summary = task(sweep_tasks.summarize_sweep, task_id="summarize", trigger_rule=TriggerRule.ALL_DONE,
                   execution_timeout=timedelta(seconds=60), retry_delay=timedelta(seconds=10))(checks)
    tables >> summary
    task(sweep_tasks.alert_on_changes, task_id="alert", execution_timeout=timedelta(minutes=2),
         retry_delay=ALERT_RETRY_DELAY)(summary)


platform_health_sweep()
