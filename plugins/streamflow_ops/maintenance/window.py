"""The nightly window's own steps: preflight, not-yet-wired slots and the closing report."""
from __future__ import annotations

import logging
from typing import Any

from streamflow_ops import registry
from streamflow_ops.alerting.slack import SlackMessage, send
from streamflow_ops.config import AlertingConfig
from streamflow_ops.connections import connection_defined
from streamflow_ops.preflight import gate_checks, service_checks
from streamflow_ops.results import CheckResult, Status

log = logging.getLogger(__name__)
TITLE = "StreamFlow maintenance window"


def preflight_results(config) -> list[CheckResult]:
    """Service reachability plus the gate that every destructive step re-checks before acting."""
    return service_checks(config) + gate_checks(config)


def step_results(values: dict[str, Any]) -> list[CheckResult]:
    """Pure: XCom values by task id -> CheckResults, under the window's one step contract.

    Every step returns CheckResults: a CheckResult dict (an operator) or a list of them (a task group's
    leaf), so a step's warning reaches the report as a warning. A step without a result failed or never
    ran; a step that returned anything else (a bare string, a list of other things) breaks the contract
    and is reported critical, never turned into `ok`.
    """
    results: list[CheckResult] = []
    for task_id, value in values.items():
        name = f"maintenance.{task_id.split('.', 1)[0]}"
        # The step's own runbook section; a step the registry does not know cites the window's.
        runbook = registry.SPECS.get(name, registry.MAINTENANCE_REPORT).runbook
        if value is None:
            results.append(CheckResult(name, Status.CRITICAL, runbook=runbook,
                                       message=f"step {task_id} produced no result: it failed or did not run "
                                               f"(see its task log) - {registry.MAINTENANCE_REPORT.first_step}"))
            continue
        items = value if isinstance(value, list) else [value]
        if items and all(_is_check_result(item) for item in items):
            results.extend(CheckResult.from_dict(item) for item in items)
        else:
            results.append(CheckResult(name, Status.CRITICAL, runbook=runbook,
                                       message=f"step {task_id} returned {str(value)[:200]!r}, not CheckResults "
                                               f"(a CheckResult dict or a list of them): its outcome is unknown"))
    return results


def _is_check_result(item: Any) -> bool:
    return isinstance(item, dict) and {"check_name", "status", "message"} <= item.keys()


def notify_slack(alerting: AlertingConfig, text: str) -> str:
    """Post the report when the Slack connection exists; the outcome goes into the report's log."""
    conn_id = alerting.slack_conn_id
    if not connection_defined(conn_id):
        return f"slack: not sent (connection '{conn_id}' is not defined)"
    try:
        send(conn_id, SlackMessage(text=f"```{text}```", blocks=[]), alerting.request_timeout_s)
    except Exception as exc:  # noqa: BLE001 - the report itself must still reach the log and XCom
        log.warning("slack post failed: %s", exc)
        return f"slack: FAILED to send ({type(exc).__name__}: {exc})"
    return f"slack: sent to '{conn_id}'"
