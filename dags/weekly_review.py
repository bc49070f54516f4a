"""The weekly review (Sunday 02:00 UTC): the runbook's weekly manual tasks prepared as a report with charts."""
from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from streamflow_ops.dag_defaults import COMMON_DAG_ARGS, dry_run_param
from streamflow_ops.review import run

TASK_ARGS = {"retry_delay": timedelta(minutes=1)}


@dag(
    dag_id="weekly_review",
    schedule="0 2 * * 0",
    **COMMON_DAG_ARGS,
    dagrun_timeout=timedelta(hours=1),
    tags=["streamflow", "review", "weekly"],
    params={"dry_run": dry_run_param(False, "the report and charts are written to the reports folder, but not "
                                            "stored in ops.weekly_review and nothing is posted to Slack")},
    doc_md="""
### Weekly review (Sunday 02:00 UTC)
The runbook's *Maintenance Windows > Weekly Maintenance (Sunday 02:00 UTC)* tasks, prepared: the week is
the 7 days before the run's reference time (its logical date; a logical date later than run_after is
refused), last week the 7 days before that.

1. **prepare**: alert history per check (Slack messages, pages, incidents still open, median time to
   resolve, flapping; the noisiest checks) from `ops.health_check_results` and `ops.alert_state`; fraud
   alerts per rule this week and last from `silver.fraud_alerts`, and both weeks' fraud rates; the rules
   whose count moved by more than `review.rule_change_ratio`; capacity: PVC usage and days until full,
   CPU and memory per namespace against requests (Prometheus, `streamflow_prometheus`; without it those
   parts read "not gathered: reason"), bronze and silver rows per day, table sizes and the Kafka lag
   headroom. Writes `report.md`, `report.json` and the PNG charts under
   `<reports.folder>/weekly/<week_start>/` and stores the report in `ops.weekly_review`.
2. **post**: the summary and the worst findings to `slack_streamflow_alerts`; the charts uploaded with
   the optional Slack API connection `slack_streamflow_api`. What got through is recorded in the stored
   report, so a retry sends only the rest.

**dry_run**: write the files only: nothing stored, nothing posted.
""",
)
def weekly_review():
    prepared = task(run.prepare_task, task_id="prepare", execution_timeout=timedelta(minutes=20), **TASK_ARGS)()
    task(run.post_task, task_id="post", execution_timeout=timedelta(minutes=5), **TASK_ARGS)(prepared)


weekly_review()
