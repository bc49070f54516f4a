"""The weekly_review DAG's two task bodies (the DAG file only wires them).

`prepare` gathers the week, writes report.md, report.json and the charts under
`<reports.folder>/weekly/<week_start>/` and stores the report in ops.weekly_review (a re-run of the
same week replaces it). `post` sends the summary to the Slack webhook and uploads the charts with the
optional Slack API connection; each delivery that got through is recorded in the stored report at once,
so a retry sends only what did not. A dry run writes the files, stores nothing and posts nothing.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from streamflow_ops.alerting.slack import send
from streamflow_ops.config import StreamflowOpsConfig, get_config
from streamflow_ops.connections import connection_defined, warehouse_connection
from streamflow_ops.dag_defaults import reference_time
from streamflow_ops.results import describe_error
from streamflow_ops.review import charts
from streamflow_ops.review.gather import gather
from streamflow_ops.alerting.slack import upload_charts
from streamflow_ops.review.report import findings, markdown, slack_message
from streamflow_ops.sqlfiles import load_sql
from streamflow_ops.store import ensure_ops_schema

log = logging.getLogger(__name__)


def report_folder(config: StreamflowOpsConfig, week_start: str) -> Path:
    return Path(config.reports.folder) / "weekly" / week_start


def prepare(config: StreamflowOpsConfig, reference: datetime, dry_run: bool) -> dict[str, Any]:
    """Gather, draw, write and (unless dry run) store the week before `reference`; returns the report."""
    report, pvcs = gather(config, reference)
    folder = report_folder(config, report["week_start"])
    folder.mkdir(parents=True, exist_ok=True)
    report["charts"] = charts.draw_all(report, pvcs, folder)
    report["worst_findings"] = findings(report, config.kubernetes.pvc_warning_ratio, config.review.top_n)
    report["folder"] = str(folder)
    report["dry_run"] = dry_run
    (folder / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (folder / "report.md").write_text(markdown(report, report["charts"]))
    if not dry_run:
        with warehouse_connection(config.warehouse) as conn:
            ensure_ops_schema(conn, config.warehouse.ops_schema)
            conn.execute(load_sql("review_store.sql", ops=config.warehouse.ops_schema),
                         {"week_start": report["week_start"], "report": Jsonb(report)})
    log.info("weekly review of %s written to %s%s", report["week_start"], folder, " (dry run: not stored)" * dry_run)
    return report


def post(config: StreamflowOpsConfig, week_start: str, dry_run: bool) -> dict[str, str]:
    """Send what the stored report of `week_start` has not yet delivered; a dry run sends nothing."""
    if dry_run:
        return {"webhook": "dry run: nothing sent", "charts": "dry run: nothing uploaded"}
    ops = config.warehouse.ops_schema
    with warehouse_connection(config.warehouse) as conn:
        report = conn.execute(load_sql("review_load.sql", ops=ops), {"week_start": week_start}).fetchone()[0]
        delivery: dict[str, str] = dict(report.get("delivery") or {})

        def record(channel: str, outcome: str) -> None:
            delivery[channel] = outcome
            conn.execute(load_sql("review_delivery.sql", ops=ops), {"week_start": week_start,
                                                                    "delivery": Jsonb(delivery)})

        errors = []
        webhook, api = config.alerting.slack_conn_id, config.review.slack_api_conn_id
        if delivery.get("webhook") != "sent":
            if not connection_defined(webhook):
                record("webhook", f"not configured (connection {webhook} not defined)")
            else:
                try:
                    send(webhook, slack_message(report, report["worst_findings"], report["folder"]),
                         config.alerting.request_timeout_s)
                    record("webhook", "sent")
                except Exception as exc:  # noqa: BLE001 - recorded, then the task fails and is retried
                    errors.append(f"webhook {webhook}: {describe_error(exc)}")
        if not delivery.get("charts", "").startswith("uploaded"):
            files = {Path(report["folder"]) / name: what for name, what in report["charts"].items()}
            if not connection_defined(api):
                record("charts", f"not uploaded: connection {api} not defined (the charts are in {report['folder']})")
            elif not files:
                record("charts", "not uploaded: no chart had data")
            else:
                try:
                    ids = upload_charts(api, config.alerting.slack_channel, files,
                                        f"Weekly review: week of {week_start}", config.alerting.request_timeout_s)
                    record("charts", f"uploaded {len(ids)} file(s): {', '.join(ids)}")
                except Exception as exc:  # noqa: BLE001
                    errors.append(f"charts via {api}: {describe_error(exc)}")
    if errors:
        raise RuntimeError("weekly review not fully delivered (a retry sends only what is missing): "
                           + "; ".join(errors))
    return delivery


def prepare_task() -> dict[str, Any]:
    """The DAG's `prepare`: the week before the run's reference time; logs report.md; XCom: where it is."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    report = prepare(get_config(), reference_time(context), context["params"]["dry_run"])
    text = Path(report["folder"], "report.md").read_text()
    print(text)
    return {"report": text, **{key: report[key] for key in ("week_start", "folder", "charts", "worst_findings")}}


def post_task(prepared: dict[str, Any]) -> dict[str, str]:
    """The DAG's `post`: what the stored report has not delivered yet (dry run: nothing)."""
    from airflow.sdk import get_current_context

    return post(get_config(), prepared["week_start"], get_current_context()["params"]["dry_run"])
