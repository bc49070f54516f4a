"""The platform_health_sweep DAG's task bodies (the DAG file only wires them).

A failed delivery, or a refused metrics push after it, fails the `alert` task so that Airflow retries it;
the retry sends only what ops.alert_state still says is owed.
"""
from __future__ import annotations

from datetime import datetime, timezone

from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowException

from streamflow_ops.config import get_config
from streamflow_ops.results import describe_error
from streamflow_ops.alerting.ledger import VariableLedger
from streamflow_ops.sweep import alert, collect, ensure_ops_tables, push_metrics, run_family, summarize


def ensure_tables() -> None:
    """Create or migrate the ops tables under a short lock timeout: the only DDL of the sweep, kept out of
    the alert path (a lock held by an analyst fails this task, never the alerting)."""
    ensure_ops_tables(get_config())


def check_family(family: str) -> list[dict]:
    """One family's results, JSON-safe for XCom."""
    return [r.to_dict() for r in run_family(family, get_config())]


def summarize_sweep(outputs: dict[str, list[dict] | None]) -> dict:
    """Store the results and log the readable report (also this task's XCom)."""
    context = get_current_context()
    started = context["dag_run"].start_date or datetime.now(timezone.utc)
    summary = summarize(get_config(), context["run_id"], collect(outputs), started,
                        run_after=context["dag_run"].run_after)
    print(summary["report"])
    return summary


def alert_on_changes(summary: dict) -> dict:
    """Advance ops.alert_state and deliver what is owed; a dry run only lists it."""
    context = get_current_context()
    outcome = alert(get_config(), summary, dry_run=context["params"]["dry_run"], ledger=VariableLedger()).to_dict()
    print(outcome["text"])
    errors = []
    if outcome["delivery"]["errors"]:
        context["ti"].xcom_push(key="delivery", value=outcome)
        errors.append("alert delivery failed, still owed in ops.alert_state: "
                      + "; ".join(outcome["delivery"]["errors"]))
    try:  # after delivering: a Pushgateway that refuses never holds back a page
        print("\n".join(push_metrics(get_config(), summary)))
    except Exception as exc:  # noqa: BLE001 - fails the task below, with the Pushgateway's answer
        errors.append(f"metrics not pushed (the retry sends nothing twice): {describe_error(exc)}")
    if errors:
        raise AirflowException("; ".join(errors))
    return outcome
