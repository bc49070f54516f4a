"""The hourly health sweep's steps, shared by the platform_health_sweep DAG and the benchmark.

run_family -> (all families) -> finish: persist, summarise, report -> alert on change -> push metrics.
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

from streamflow_ops import registry
from streamflow_ops.airflow_api import checks as _airflow  # noqa: F401
from streamflow_ops.alerting.run import AlertOutcome, alert, ops_connection, standing_alerts
from streamflow_ops.alerting.store import load_states
from streamflow_ops.business import checks as _business  # noqa: F401
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.diagnosis.gather import diagnose
from streamflow_ops.flink import checks as _flink  # noqa: F401
from streamflow_ops.kafka import checks as _kafka  # noqa: F401
from streamflow_ops.kubernetes import checks as _kubernetes  # noqa: F401
from streamflow_ops.connections import connection_defined, warehouse_connection
from streamflow_ops.metrics import push_alert_metrics, push_sweep_metrics
from streamflow_ops.monitoring import checks as _monitoring  # noqa: F401
from streamflow_ops.postgres import checks as _postgres  # noqa: F401
from streamflow_ops.report import format_checks
from streamflow_ops.results import CheckResult, Status, describe_error, worst
from streamflow_ops.sqlfiles import load_sql
from streamflow_ops.store import ensure_ops_schema, write_results
from streamflow_ops.timeutil import utcnow

log = logging.getLogger(__name__)

# The families (task id suffix and check-name prefix), from the registry: no module paths as strings.
FAMILIES: tuple[str, ...] = registry.FAMILY_NAMES
# A family gets this long before its checks are reported unknown; the task's execution_timeout is a
# backstop above it. Both stay under the sweep's 60 s budget.
FAMILY_BUDGET_S = 40
FAMILY_TASK_TIMEOUT = timedelta(seconds=55)


def _unknown(family: str, message: str) -> list[CheckResult]:
    return [CheckResult(f"{family}.sweep", Status.UNKNOWN, message, runbook=registry.FAMILY_RUNBOOK[family])]


def load_families() -> dict[str, registry.CheckFamily]:
    """Every family, registered by the imports at the top of this module (each family's checks.py calls
    registry.register). The families import their provider hooks inside their probes, so the sweep DAG
    file still parses cold well under budget (tests/dags measures it)."""
    return registry.FAMILIES


def run_family(family: str, config: StreamflowOpsConfig, now: datetime | None = None,
               budget_s: float = FAMILY_BUDGET_S) -> list[CheckResult]:
    """One family's checks within its time budget; a crash, a missing module or a hang is `unknown`."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["results"] = load_families()[family].run(config, now)
        except Exception as exc:  # noqa: BLE001 - isolation: one family never takes the sweep down
            log.warning("family %s failed", family, exc_info=True)
            outcome["error"] = f"{type(exc).__name__}: {exc}"

    # A daemon thread: a probe that ignores its own timeout cannot hold the task past the budget.
    worker = threading.Thread(target=target, name=f"sweep-{family}", daemon=True)
    worker.start()
    worker.join(budget_s)
    if worker.is_alive():
        return _unknown(family, f"{family} checks did not finish within {budget_s:g} s: state unknown")
    if "error" in outcome:
        return _unknown(family, f"{family} checks could not run: {outcome['error']}"[:1000])
    return outcome["results"]


def missing_families(outputs: dict[str, list[dict] | None]) -> list[CheckResult]:
    """Families whose task produced nothing (killed, timed out, failed): unknown, never silent."""
    return [r for family, out in outputs.items() if out is None
            for r in _unknown(family, f"the check_{family} task produced no results (failed or timed out)")]


def collect(outputs: dict[str, list[dict] | None]) -> list[CheckResult]:
    results = [CheckResult.from_dict(d) for out in outputs.values() if out for d in out]
    return results + missing_families(outputs)


def counts(results: Iterable[CheckResult]) -> dict[str, int]:
    tally = {s.value: 0 for s in Status}
    for r in results:
        tally[r.status.value] += 1
    return tally


def ensure_ops_tables(config: StreamflowOpsConfig) -> None:
    """Create or migrate the ops tables, outside the alert path (the DAG's ensure_ops_tables task), waiting
    at most `warehouse.schema_lock_timeout_s` for a lock: an analyst's open transaction fails this step
    fast, and the sweep still stores (when it can) and alerts."""
    with warehouse_connection(config.warehouse, lock_timeout_s=config.warehouse.schema_lock_timeout_s) as conn:
        ensure_ops_schema(conn, config.warehouse.ops_schema)


def persist(config: StreamflowOpsConfig, sweep_id: str, results: list[CheckResult], checked_at: datetime) -> None:
    """Store the sweep; re-storing the same sweep (a retried task) replaces it. No DDL: ensure_ops_tables."""
    ops = config.warehouse.ops_schema
    with ops_connection(config) as conn:
        with conn.transaction():
            conn.execute(load_sql("health_delete_sweep.sql", ops=ops), {"sweep_id": sweep_id})
            write_results(conn, sweep_id, results, checked_at=checked_at, ops_schema=ops)


def summarize(config: StreamflowOpsConfig, sweep_id: str, results: list[CheckResult], started_at: datetime,
              checked_at: datetime | None = None, run_after: datetime | None = None) -> dict:
    """Persist, then the sweep's status and readable report (persistence failing is itself reported). The
    report ends with the PagerDuty incidents still open and the orphans (ops.alert_state, read only)."""
    checked_at = utcnow(checked_at)
    status = worst(r.status for r in results)
    summary: dict[str, Any] = {"sweep_id": sweep_id, "status": status.value, "counts": counts(results),
                               "checked_at": checked_at.isoformat(), "persisted": True, "notes": [],
                               # orders ops.alert_state (the scheduler's clock; without it, the database's)
                               "run_after": run_after.isoformat() if run_after else None}
    summary["diagnosed"] = diagnose(config, results)  # the runbook's diagnosis on warning/critical results
    try:
        persist(config, sweep_id, results, checked_at)
    except Exception as exc:  # noqa: BLE001 - still report and alert; say the history has a gap
        summary["persisted"] = False
        summary["notes"].append(f"results not stored in {config.warehouse.ops_schema}.health_check_results: "
                                f"{type(exc).__name__}: {exc}"[:500])
    summary["duration_s"] = round((datetime.now(timezone.utc) - started_at).total_seconds(), 2)
    report = format_checks(f"platform health sweep {sweep_id}", results)
    if summary["persisted"]:
        try:
            report += "".join(f"\n{line}" for line in
                              standing_alerts(config, results, sweep_id, run_after).lines(owed=False))
        except Exception as exc:  # noqa: BLE001 - the alert task reports them too
            summary["notes"].append(f"open incidents and orphans unavailable: {describe_error(exc)}")
    if summary["notes"]:
        report += "\n" + "\n".join(f"NOTE: {n}" for n in summary["notes"])
    summary["report"] = report
    summary["results"] = [r.to_dict() for r in results]
    return summary


def push_metrics(config: StreamflowOpsConfig, summary: dict) -> list[str]:
    """The sweep's metrics, then what ops.alert_state still owes (streamflow_ops_alert_owed_deliveries), to the
    Pushgateway when that connection is defined. It runs after alerting, so a Pushgateway that refuses never
    holds back a page; a refusal (or ops.alert_state unreadable) raises: the alert task fails after delivering,
    and is retried (sweep_tasks.alert_on_changes)."""
    if not connection_defined(config.monitoring.pushgateway_conn_id):
        return [f"metrics not pushed: Airflow connection '{config.monitoring.pushgateway_conn_id}' is not defined"]
    results = [CheckResult.from_dict(d) for d in summary["results"]]
    outcomes = [push_sweep_metrics(config, results, summary["duration_s"])]
    with ops_connection(config) as conn:
        states = load_states(conn, config.warehouse.ops_schema)
    outcomes.append(push_alert_metrics(config, list(states.values())))
    return outcomes


def run_sweep(config: StreamflowOpsConfig, sweep_id: str, dry_run: bool = False,
              families: Iterable[str] = FAMILIES) -> tuple[dict, AlertOutcome]:
    """The whole sweep in one process, families in parallel as the DAG's tasks are (benchmark, tests)."""
    started = datetime.now(timezone.utc)
    families = list(families)
    try:
        ensure_ops_tables(config)
    except Exception:  # noqa: BLE001 - as in the DAG: the sweep still stores what it can and alerts
        log.warning("ops tables not created or migrated", exc_info=True)
    with ThreadPoolExecutor(max_workers=len(families)) as pool:
        futures = {f: pool.submit(run_family, f, config) for f in families}
        outputs = {f: [r.to_dict() for r in fut.result()] for f, fut in futures.items()}
    summary = summarize(config, sweep_id, collect(outputs), started)
    outcome = alert(config, summary, dry_run)
    for line in push_metrics(config, summary):
        log.info(line)
    return summary, outcome
