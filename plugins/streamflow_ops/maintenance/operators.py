"""The three maintenance capabilities as operators, used by their manual DAGs and by the nightly window.

Every run follows one path: validate params (no SQL) -> connect -> catalog checks -> gate (replication
lag, connections, backup) -> maintenance advisory lock -> act -> audit -> a CheckResult for the report.
Dry runs change nothing, so they skip the gate and the lock. Arguments given to the operator win over
the DAG run's params, which win over the `streamflow_ops_config` defaults.
"""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

from airflow.sdk import BaseOperator

from streamflow_ops import registry
from streamflow_ops.config import get_config, StreamflowOpsConfig
from streamflow_ops.connections import warehouse_connection
from streamflow_ops.dag_defaults import maintenance_task_args, reference_time
from streamflow_ops.store import Actor, audited, ensure_ops_schema
from streamflow_ops.maintenance.interrupted import close_interrupted, with_interrupted
from streamflow_ops.params import ParamError, bool_param, int_param, rendered, table_list
from streamflow_ops.maintenance.gold_refresh import run_refresh
from streamflow_ops.maintenance.locks import maintenance_lock
from streamflow_ops.maintenance.retention import cutoff_epoch, run_retention
from streamflow_ops.maintenance.vacuum import plan, read_stats, run_vacuum
from streamflow_ops.preflight import blocking_reason, evaluate_gate, read_gate
from streamflow_ops.results import CheckResult, Status, describe_error


class MaintenanceOperator(BaseOperator):
    """Shared shell of a maintenance step; subclasses implement validate() and act().

    :param dry_run: report what would be done and change nothing; None: the run's ``dry_run`` param,
        else false (templated: "{{ params.dry_run }}" renders).

    Every argument is templated; a rendered string ("7", "True", "['gold.x']") is read back as the
    Python literal, then judged by the same checks as the run's params (bad values fail the task
    without retries, naming the argument). Returns a CheckResult dict (XCom ``return_value``).
    """

    template_fields: Sequence[str] = ("dry_run",)
    capability = ""
    config_section = ""  # the config section whose lock_timeout_s / statement_timeout_s bound the step
    ui_color = "#e8d5b5"

    def __init__(self, *, dry_run: bool | None = None, **kwargs):
        super().__init__(**{**maintenance_task_args(), **kwargs})
        self.dry_run = dry_run

    def arg(self, context, name: str, default: Any = None) -> Any:
        """Operator argument (rendered), else the run's param, else default."""
        value = rendered(getattr(self, name, None))
        return value if value is not None else context["params"].get(name, default)

    def timeouts(self, config: StreamflowOpsConfig) -> dict:
        section = getattr(config, self.config_section)
        return {"lock_timeout_s": section.lock_timeout_s, "statement_timeout_s": section.statement_timeout_s}

    def validate(self, context, config: StreamflowOpsConfig) -> dict:
        """Pure checks of the params; raise ParamError."""
        return {}

    def act(self, conn, context, config: StreamflowOpsConfig, actor: Actor, args: dict, dry_run: bool) -> CheckResult:
        raise NotImplementedError

    def result(self, status: Status, message: str, **details) -> CheckResult:
        """The step's verdict citing its runbook section; a warning/critical ends with the first step."""
        return registry.spec(f"maintenance.{self.capability}").result(status, message, details=details)

    def execute(self, context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        config = get_config()
        try:
            dry_run = bool_param("dry_run", self.arg(context, "dry_run", False))
            args = self.validate(context, config)
        except ParamError as exc:
            raise AirflowFailException(str(exc)) from None
        result = self._run(context, config, dry_run, args)
        self.log.info("%s: %s", result.status.value.upper(), result.message)
        return result.to_dict()

    def _run(self, context, config: StreamflowOpsConfig, dry_run: bool, args: dict) -> CheckResult:
        from airflow.sdk.exceptions import AirflowFailException

        ti = context["ti"]
        actor = Actor(ti.dag_id, ti.run_id, ti.task_id, config.warehouse.ops_schema)
        with ExitStack() as stack:
            try:
                conn = stack.enter_context(warehouse_connection(config.warehouse, **self.timeouts(config)))
            except Exception as exc:  # noqa: BLE001 - unreachable: skip with the reason, change nothing
                return self.result(Status.SKIPPED, f"skipped: PostgreSQL ({config.warehouse.conn_id}) is "
                                                   f"unreachable: {describe_error(exc)}")
            ensure_ops_schema(conn, config.warehouse.ops_schema)
            try:
                args = self.check_catalog(conn, config, args)
            except ParamError as exc:
                raise AirflowFailException(str(exc)) from None
            if dry_run:
                return self.act(conn, context, config, actor, args, dry_run)
            reason = blocking_reason(evaluate_gate(read_gate(conn, config, with_lock_holder=False),
                                                   config.postgres_checks))
            if reason is None:
                holder = stack.enter_context(maintenance_lock(conn, actor.holder_name))
                reason = holder and f"another maintenance run holds the advisory lock: {holder}"
            if reason:
                with audited(conn, actor, f"{self.capability}.skipped", self.capability, dry_run) as record:
                    record.outcome = "skipped"
                    record.details["reason"] = reason
                # A warning, not a quiet skip: the same stale lock could otherwise skip the step every night.
                return self.result(Status.WARNING, f"skipped: {reason}", skipped=True, reason=reason)
            interrupted = close_interrupted(conn, actor, self.capability)
            result = self.act(conn, context, config, actor, args, dry_run)
            return with_interrupted(result, interrupted) if interrupted else result

    def check_catalog(self, conn, config: StreamflowOpsConfig, args: dict) -> dict:
        """Checks that need the catalog (e.g. a table exists); raise ParamError."""
        return args


class BronzeRetentionOperator(MaintenanceOperator):
    """SPEC bronze retention: promoted rows older than reference - retention_days, batched or by partition.

    :param retention_days: delete promoted rows strictly older than the run's reference time minus this
        many days (1..365); None: the run's ``retention_days`` param, else ``retention.retention_days``
        (templated).
    :param batch_size: rows per delete transaction (1..1,000,000); None: the run's ``batch_size`` param,
        else ``retention.batch_size`` (templated).
    :param dry_run: see :class:`MaintenanceOperator`.
    """

    template_fields: Sequence[str] = (*MaintenanceOperator.template_fields, "retention_days", "batch_size")
    capability = "bronze_retention"
    config_section = "retention"

    def __init__(self, *, retention_days: int | None = None, batch_size: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.retention_days = retention_days
        self.batch_size = batch_size

    def validate(self, context, config):
        return {"reference": reference_time(context),  # a future logical date is refused here, before any SQL
                "retention_days": int_param("retention_days",
                                            self.arg(context, "retention_days", config.retention.retention_days), 1, 365),
                "batch_size": int_param("batch_size", self.arg(context, "batch_size", config.retention.batch_size),
                                        1, 1_000_000)}

    def act(self, conn, context, config, actor, args, dry_run):
        reference = args["reference"]
        report = run_retention(conn, config.warehouse, actor, dry_run=dry_run, batch_size=args["batch_size"],
                               cutoff=cutoff_epoch(reference, args["retention_days"]))
        self.log.info(report.summary)
        if report.warning:
            self.log.warning(report.warning)
        message = report.summary + (f". WARNING: {report.warning}" if report.warning else "")
        return self.result(Status.WARNING if report.warning else Status.OK, message,
                           reference=reference.isoformat(), retention_days=args["retention_days"],
                           **report.to_dict())


class VacuumOperator(MaintenanceOperator):
    """Targeted VACUUM (ANALYZE); FREEZE past the age threshold; FULL only when asked for.

    :param tables: "schema.table" names inside ``vacuum.schemas``; None or empty: the run's ``tables``
        param, else the tables whose dead tuples or age need it (templated).
    :param full: ``VACUUM FULL`` the listed tables (bounded by lock_timeout); None: the run's ``full``
        param, else false (templated).
    :param dry_run: see :class:`MaintenanceOperator`.
    """

    template_fields: Sequence[str] = (*MaintenanceOperator.template_fields, "tables", "full")
    capability = "vacuum"
    config_section = "vacuum"

    def __init__(self, *, tables: list[str] | None = None, full: bool | None = None, **kwargs):
        super().__init__(**kwargs)
        self.tables = tables
        self.full = full

    def validate(self, context, config):
        return {"tables": table_list("tables", self.arg(context, "tables", []), config.vacuum.schemas),
                "full": bool_param("full", self.arg(context, "full", False))}

    def check_catalog(self, conn, config, args):
        stats = read_stats(conn, config.vacuum.schemas)
        return {**args, "targets": plan(stats, config.vacuum, args["tables"], args["full"])}

    def act(self, conn, context, config, actor, args, dry_run):
        outcomes = run_vacuum(conn, config.vacuum, actor, args["targets"], dry_run)
        for o in outcomes:
            self.log.info("%s%s (%s): dead tuples %d -> %d in %.2fs", "DRY RUN: would vacuum " if dry_run else "",
                          o["table"], ", ".join(o["options"]), o["dead_before"], o["dead_after"], o["seconds"])
        verb = "would vacuum" if dry_run else "vacuumed"
        listing = ", ".join(f"{o['table']} ({o['dead_before']} -> {o['dead_after']} dead)" for o in outcomes)
        message = f"{'DRY RUN: ' if dry_run else ''}{verb} {len(outcomes)} tables" + (f": {listing}" if listing else
                                                                                    " (none needed it)")
        held = [f"{o['table']} kept {o['dead_after']} dead tuples: {o['held_back_by']}" for o in outcomes
                if o.get("held_back_by")]
        if held:
            return self.result(Status.WARNING, f"{message}. WARNING: {'; '.join(held)}", tables=outcomes)
        return self.result(Status.OK, message, tables=outcomes)


class GoldRefreshOperator(MaintenanceOperator):
    """Refresh the gold materialized views in dependency order, CONCURRENTLY where possible.

    :param dry_run: see :class:`MaintenanceOperator`; a dry run lists the views, order and method.
    """

    capability = "gold_refresh"
    config_section = "gold_refresh"

    def act(self, conn, context, config, actor, args, dry_run):
        outcomes = run_refresh(conn, config.warehouse.gold_schema, actor, dry_run)
        for o in outcomes:
            self.log.info("%s%s %s in %.2fs", "DRY RUN: would refresh " if dry_run else "refreshed ",
                          o["view"], o["method"], o["seconds"])
        schema = config.warehouse.gold_schema
        if not outcomes:  # a typo in gold_schema, or the views were dropped: nothing is fresh, say so
            return self.result(Status.WARNING, f"no materialized views found in schema '{schema}' "
                                               f"(warehouse.gold_schema): nothing was refreshed", views=[])
        listing = ", ".join(f"{o['view']} ({o['method']}, {o['seconds']:.2f}s)" for o in outcomes)
        verb = "DRY RUN: would refresh" if dry_run else "refreshed"
        return self.result(Status.OK, f"{verb} {len(outcomes)} views: {listing}", views=outcomes)
