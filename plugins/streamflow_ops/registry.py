"""Every check and maintenance action, declared once: name, family, connection, runbook heading, alert.

A family module refers to its checks by these constants (`registry.KAFKA_CONSUMER_LAG`), so a misspelt
name fails when the module is imported, never at 03:00. The runbook heading is a real heading of the
operations runbook (RUNBOOK.md) written as "Section > Heading"; `alert` is the runbook's alert name
where it has one (Alertmanager de-duplication reads it); `first_step` is the runbook's first diagnostic
or resolution step for a bad state, in our words, and goes into every warning/critical message.

Families register by import: each family's `checks.py` calls `register(...)` with an object of the
`CheckFamily` protocol; the sweep imports the family modules and runs what registered. `run_guarded`
is the one "skipped without connection, then guarded" opening every family shares.

This module sits in the core layer: it imports only config-free vocabulary (results, connections).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

from streamflow_ops.connections import connection_defined
from streamflow_ops.results import CheckResult, Status, describe_error, guarded, skipped

if TYPE_CHECKING:
    from streamflow_ops.config import StreamflowOpsConfig

log = logging.getLogger(__name__)

# Runbook headings ("Section > Heading") used by more than one check.
KAFKA_CLUSTER = "Service Health Checks > 1. Kafka Cluster (streamflow-kafka namespace)"
FLINK_CLUSTER = "Service Health Checks > 2. Flink Cluster (streamflow-processing namespace)"
POSTGRES_CLUSTER = "Service Health Checks > 3. PostgreSQL Cluster (streamflow-data namespace)"
AIRFLOW_SERVICE = "Service Health Checks > 4. Airflow (streamflow-orchestration namespace)"
MONITORING_STACK = "Service Health Checks > 5. Monitoring Stack (streamflow-monitoring namespace)"
FLINK_CHECKPOINTS = "Alert Response Procedures > Alert: FlinkCheckpointFailing"
KAFKA_BROKER_DOWN = "Alert Response Procedures > Alert: KafkaBrokerDown"
DAILY_MAINTENANCE = "Maintenance Windows > Daily Maintenance (03:00 UTC)"
MANUAL_VACUUM = "PostgreSQL Operations > Manual Vacuum"
BACKUPS = "Backup and Recovery > Automated Backups"

# The Service Health Checks section of each streamflow namespace (expected workloads, PVCs, pods).
NAMESPACE_SECTIONS = {
    "streamflow-kafka": KAFKA_CLUSTER,
    "streamflow-processing": FLINK_CLUSTER,
    "streamflow-data": POSTGRES_CLUSTER,
    "streamflow-orchestration": AIRFLOW_SERVICE,
    "streamflow-monitoring": MONITORING_STACK,
}


@dataclass(frozen=True)
class CheckSpec:
    """One check (or maintenance action) as the on-call engineer meets it."""

    name: str  # "<component>.<what>", the public check_name of docs/contract.md
    family: str  # the sweep family (task check_<family>) or "maintenance"
    runbook: str  # "Section > Heading" of RUNBOOK.md
    first_step: str  # the runbook's first step for a bad state, paraphrased
    connection: str | None = None  # config attribute path of the connection id, e.g. "kafka.conn_id"
    alert: str | None = None  # the runbook's alert of the same meaning, e.g. "KafkaConsumerLagHigh"
    thresholds: tuple[str, ...] = ()  # config keys of its bands, e.g. ("kafka.lag_warning", ...)
    in_sweep: bool = True  # False for maintenance actions and preflight verdicts
    # Namespace-scoped checks cite the section of the subject's namespace ("<namespace>/..." subjects).
    subject_runbooks: tuple[tuple[str, str], ...] = ()

    @property
    def component(self) -> str:
        return self.name.split(".", 1)[0]

    def conn_id(self, config: "StreamflowOpsConfig") -> str | None:
        """The connection id this check needs, read from the config (None: needs no connection)."""
        if self.connection is None:
            return None
        value = config
        for part in self.connection.split("."):
            value = getattr(value, part)
        return value

    def runbook_for(self, subject: str = "") -> str:
        """The heading for one subject: a namespace-scoped check cites its namespace's section."""
        return dict(self.subject_runbooks).get(subject.split("/", 1)[0], self.runbook)

    def result(self, status: Status, message: str, *, subject: str = "", step: str | None = None,
               **fields) -> CheckResult:
        """A CheckResult citing this spec; a warning/critical message ends with the runbook's first step
        (`step` overrides it where the evaluator knows a more specific one for that state)."""
        if status in (Status.WARNING, Status.CRITICAL):
            message = f"{message} - {step or self.first_step}"
        return CheckResult(self.name, status, message, subject=subject, runbook=self.runbook_for(subject),
                           **fields)

    def skipped(self, conn_id: str) -> CheckResult:
        return skipped(self.name, conn_id, runbook=self.runbook)

    def guarded(self, probe: Callable[[], list[CheckResult] | CheckResult], subject: str = "") -> list[CheckResult]:
        return guarded(self.name, probe, subject=subject, runbook=self.runbook_for(subject))

    def unknown(self, message: str, subject: str = "") -> CheckResult:
        return CheckResult(self.name, Status.UNKNOWN, message, subject=subject, runbook=self.runbook_for(subject))


SPECS: dict[str, CheckSpec] = {}


def _spec(name: str, family: str, runbook: str, first_step: str, **kwargs) -> CheckSpec:
    if name in SPECS:
        raise ValueError(f"check {name} declared twice")
    spec = SPECS[name] = CheckSpec(name, family, runbook, first_step, **kwargs)
    return spec


# --- Kafka ---------------------------------------------------------------------------------------
KAFKA_BROKER_REACHABLE = _spec(
    "kafka.broker_reachable", "kafka", KAFKA_BROKER_DOWN, alert="KafkaBrokerDown", connection="kafka.conn_id",
    first_step="look at the broker pod and its log (OOM, disk full, port bind), then restart the broker pod")
KAFKA_TOPICS_PRESENT = _spec(
    "kafka.topics_present", "kafka", KAFKA_CLUSTER, connection="kafka.conn_id", thresholds=("kafka.topics",),
    first_step="list the topics on the broker (kafka-topics.sh --list) and recreate the missing ones")
KAFKA_PARTITION_LEADERS = _spec(
    "kafka.partition_leaders", "kafka", KAFKA_CLUSTER, connection="kafka.conn_id",
    first_step="describe the topic (kafka-topics.sh --describe); a leaderless partition means the broker is "
               "down: check its pod, then restart it")
KAFKA_UNDER_REPLICATED = _spec(
    "kafka.under_replicated", "kafka", KAFKA_CLUSTER, connection="kafka.conn_id",
    first_step="describe the topic and compare ISR with the replicas; check the brokers' pods and disks")
KAFKA_CONSUMER_LAG = _spec(
    "kafka.consumer_lag", "kafka", "Alert Response Procedures > Alert: KafkaConsumerLagHigh",
    alert="KafkaConsumerLagHigh", connection="kafka.conn_id",
    thresholds=("kafka.lag_warning", "kafka.lag_critical", "kafka.window_minutes"),
    first_step="check Flink backpressure first, then scale up the TaskManagers (remediate_flink_taskmanagers)")
KAFKA_TOPIC_LAYOUT = _spec(
    "kafka.topic_layout", "kafka", KAFKA_CLUSTER, connection="kafka.conn_id",
    thresholds=("kafka.expected_partitions", "kafka.expected_replication_factor"),
    first_step="describe the topic (kafka-topics.sh --describe) and fix its KafkaTopic/terraform definition")

# --- Flink ---------------------------------------------------------------------------------------
FLINK_JOB_RUNNING = _spec(
    "flink.job_running", "flink", "Alert Response Procedures > Alert: FlinkJobNotRunning",
    alert="FlinkJobNotRunning", connection="flink.conn_id",
    first_step="read the JobManager log for the cause, then restart the job from its last checkpoint "
               "(remediate_flink_restart)")
FLINK_CHECKPOINT_AGE = _spec(
    "flink.checkpoint_age", "flink", FLINK_CHECKPOINTS, alert="FlinkCheckpointFailing", connection="flink.conn_id",
    thresholds=("flink.checkpoint_warning_s", "flink.checkpoint_critical_s"),
    first_step="read the job's checkpoint statistics and state size; if checkpoints expire, raise the "
               "checkpoint timeout")
FLINK_CHECKPOINT_FAILURES = _spec(
    "flink.checkpoint_failures", "flink", FLINK_CHECKPOINTS, alert="FlinkCheckpointFailing",
    connection="flink.conn_id",
    first_step="read the checkpoint statistics and the TaskManager log for state backend errors; if they "
               "expire, raise the checkpoint timeout")
FLINK_BACKPRESSURE = _spec(
    "flink.backpressure", "flink", "Flink Operations > Scale TaskManagers", connection="flink.conn_id",
    thresholds=("flink.backpressure_warning_ratio",),
    first_step="find the slow operator in the Flink UI, then scale up the TaskManagers")
FLINK_TASKMANAGERS = _spec(
    "flink.taskmanagers", "flink", FLINK_CLUSTER, connection="flink.conn_id",
    thresholds=("flink.expected_taskmanagers",),
    first_step="list the flink-taskmanager pods (kubectl get pods) and describe the missing ones")

# --- PostgreSQL ----------------------------------------------------------------------------------
POSTGRES_REACHABLE = _spec(
    "postgres.reachable", "postgres", POSTGRES_CLUSTER, connection="warehouse.conn_id",
    first_step="check the CNPG cluster status and that its primary pod is Running")
POSTGRES_CONNECTIONS = _spec(
    "postgres.connections", "postgres", "Alert Response Procedures > Alert: PostgresHighConnections",
    alert="PostgresHighConnections", connection="warehouse.conn_id",
    thresholds=("postgres_checks.connections_warning_pct", "postgres_checks.connections_critical_pct"),
    first_step="count connections per user and application, then kill the idle ones "
               "(remediate_postgres_connections)")
POSTGRES_REPLICATION_LAG = _spec(
    "postgres.replication_lag", "postgres", "PostgreSQL Operations > Replication Status (N/A for Single-Node)",
    connection="warehouse.conn_id",
    thresholds=("postgres_checks.replication_lag_warning_bytes", "postgres_checks.replication_lag_critical_bytes"),
    first_step="read pg_stat_replication on the primary (state, lag per replica) and check the replica pods")
POSTGRES_DEAD_TUPLES = _spec(
    "postgres.dead_tuples", "postgres", MANUAL_VACUUM, connection="warehouse.conn_id",
    thresholds=("postgres_checks.dead_tuples_warning",),
    first_step="vacuum the table (postgres_vacuum)")
POSTGRES_LONG_QUERIES = _spec(
    "postgres.long_running_queries", "postgres", "Alert Response Procedures > Alert: PipelineLatencyHigh",
    connection="warehouse.conn_id", thresholds=("postgres_checks.long_query_s",),
    first_step="look at the query in pg_stat_activity; a stuck one holds the pipeline back")
POSTGRES_TXID_WRAPAROUND = _spec(
    "postgres.txid_wraparound", "postgres", MANUAL_VACUUM, connection="warehouse.conn_id",
    thresholds=("postgres_checks.wraparound_warning", "postgres_checks.wraparound_critical"),
    first_step="run VACUUM (FREEZE) on the oldest tables (postgres_vacuum)")
POSTGRES_BACKUP_AGE = _spec(
    "postgres.backup_age", "postgres", BACKUPS, connection="warehouse.conn_id",
    thresholds=("postgres_checks.backup_age_warning_h", "postgres_checks.backup_age_critical_h"),
    first_step="list the backups (kubectl get backups -n streamflow-data) and take one on demand "
               "(postgres_backup)")
POSTGRES_RESTORE_DRILL_AGE = _spec(
    "postgres.restore_drill_age", "postgres", "Backup and Recovery > Recovery Procedures",
    connection="warehouse.conn_id", thresholds=("recovery.drill_warning_days", "recovery.drill_critical_days"),
    first_step="read the last restore_drill run's log and audit row (ops.maintenance_audit, action "
               "'restore_drill'), fix what it names, and trigger restore_drill")

# --- Kubernetes ----------------------------------------------------------------------------------
KUBERNETES_PODS = _spec(
    "kubernetes.pods", "kubernetes", "Appendix: Useful Commands > Kubernetes", connection="kubernetes.conn_id",
    subject_runbooks=tuple(NAMESPACE_SECTIONS.items()),
    thresholds=("kubernetes.restart_warning", "kubernetes.not_ready_grace_s"),
    first_step="describe the pod and read its events and logs (kubectl describe pod / get events)")
KUBERNETES_STRIMZI = _spec(
    "kubernetes.strimzi_kafka", "kubernetes", KAFKA_CLUSTER, connection="kubernetes.conn_id",
    first_step="read the Kafka resource's conditions (kubectl get kafka -n streamflow-kafka) and the broker pod")
KUBERNETES_CNPG = _spec(
    "kubernetes.cnpg_cluster", "kubernetes", POSTGRES_CLUSTER, connection="kubernetes.conn_id",
    first_step="read the cluster's status and current primary (kubectl get cluster -n streamflow-data)")
KUBERNETES_FLINK = _spec(
    "kubernetes.flink_deployment", "kubernetes", FLINK_CLUSTER, connection="kubernetes.conn_id",
    first_step="list the Flink deployments and pods (kubectl get deployments,pods -n streamflow-processing)")
KUBERNETES_PVC_USAGE = _spec(
    "kubernetes.pvc_usage", "kubernetes", "Alert Response Procedures > Alert: PostgresPVCNearlyFull",
    alert="PostgresPVCNearlyFull", connection="monitoring.prometheus_conn_id",
    subject_runbooks=(("streamflow-kafka", KAFKA_BROKER_DOWN),),
    thresholds=("kubernetes.pvc_warning_ratio", "kubernetes.pvc_critical_ratio"),
    first_step="find what fills it: PostgreSQL - delete old bronze data (bronze_retention) and vacuum; "
               "Kafka - delete old log segments; then expand the PVC")
KUBERNETES_EXPECTED_WORKLOADS = _spec(
    "kubernetes.expected_workloads", "kubernetes", "Quick Reference > Critical Commands",
    connection="kubernetes.conn_id", thresholds=("kubernetes.expected_workloads",),
    subject_runbooks=tuple(NAMESPACE_SECTIONS.items()),
    first_step="list the namespace's deployments and pods (kubectl get deployments,pods -n <namespace>) "
               "and describe what is missing")

# --- Airflow -------------------------------------------------------------------------------------
AIRFLOW_SCHEDULER_HEARTBEAT = _spec(
    "airflow.scheduler_heartbeat", "airflow", "Airflow Operations > Restart Airflow Scheduler",
    connection="airflow_api.conn_id", thresholds=("airflow_api.heartbeat_warning_s", "airflow_api.heartbeat_critical_s"),
    first_step="read the scheduler pod's log and its database connection, then restart the scheduler deployment")
AIRFLOW_FAILED_DAG_RUNS = _spec(
    "airflow.failed_dag_runs", "airflow", "Alert Response Procedures > Alert: AirflowDAGFailure",
    alert="AirflowDAGFailure", connection="airflow_api.conn_id",
    thresholds=("airflow_api.failed_runs_window_h", "airflow_api.consecutive_failures_critical"),
    first_step="list the failed runs and read the failed task's log, fix, then clear the run")
AIRFLOW_EXPECTED_DAGS = _spec(
    "airflow.expected_dags", "airflow", AIRFLOW_SERVICE, connection="airflow_api.conn_id",
    thresholds=("airflow_api.expected_dags",),
    first_step="list the DAGs (airflow dags list) and the import errors; unpause the paused ones")
AIRFLOW_API_SERVER = _spec(
    "airflow.api_server", "airflow", AIRFLOW_SERVICE, connection="airflow_api.conn_id",
    first_step="the API server answers 5xx: read the airflow-api-server (webserver) pod's log and restart it")

# --- Monitoring ----------------------------------------------------------------------------------
MONITORING_TARGETS = _spec(
    "monitoring.prometheus_targets", "monitoring", MONITORING_STACK, connection="monitoring.prometheus_conn_id",
    first_step="open Prometheus' targets page and check each down target's pod")
MONITORING_ALERTMANAGER = _spec(
    "monitoring.alertmanager", "monitoring", MONITORING_STACK, connection="monitoring.alertmanager_conn_id",
    first_step="open Alertmanager's alerts and follow each alert's own runbook section")
MONITORING_GRAFANA = _spec(
    "monitoring.grafana", "monitoring", MONITORING_STACK, connection="monitoring.grafana_conn_id",
    first_step="check the kube-prometheus-stack-grafana pod and its database")

# --- Business ------------------------------------------------------------------------------------
BUSINESS_FRAUD_RATE = _spec(
    "business.fraud_rate", "business", "Alert Response Procedures > Alert: HighFraudRate", alert="HighFraudRate",
    connection="warehouse.conn_id",
    thresholds=("business.fraud_rate_warning", "business.fraud_rate_critical", "business.fraud_score_threshold"),
    first_step="find out whether a known load test is running; if not, escalate to the Fraud team and check "
               "the data quality")
BUSINESS_PIPELINE_LATENCY = _spec(
    "business.pipeline_latency", "business", "Alert Response Procedures > Alert: PipelineLatencyHigh",
    alert="PipelineLatencyHigh", connection="warehouse.conn_id",
    thresholds=("business.pipeline_latency_warning_s", "business.pipeline_latency_critical_s"),
    first_step="look for stuck Airflow tasks in bronze_to_silver_pipeline and clear them, then check "
               "PostgreSQL for long-running queries")

# --- Maintenance actions and the window's verdicts -----------------------------------------------
MAINTENANCE_PREFLIGHT = _spec(
    "maintenance.preflight", "maintenance", DAILY_MAINTENANCE, in_sweep=False,
    first_step="fix what the preflight names, then clear the step")
MAINTENANCE_GATE = _spec(
    "maintenance.gate", "maintenance", POSTGRES_CLUSTER, in_sweep=False, connection="warehouse.conn_id",
    first_step="check the CNPG cluster status and that its primary pod is Running; destructive steps wait")
MAINTENANCE_LOCK = _spec(
    "maintenance.lock", "maintenance", DAILY_MAINTENANCE, in_sweep=False,
    first_step="list the recent maintenance_tasks runs (airflow dags list-runs) and wait for the other one")
MAINTENANCE_BACKUP_RUNNING = _spec(
    "maintenance.backup_running", "maintenance", BACKUPS, in_sweep=False,
    first_step="watch the running backup (kubectl get backups -n streamflow-data -w) and rerun once it ended")
MAINTENANCE_BRONZE_RETENTION = _spec(
    "maintenance.bronze_retention", "maintenance", DAILY_MAINTENANCE, in_sweep=False,
    thresholds=("retention.retention_days", "retention.batch_size"),
    first_step="read the step's log and audit rows, fix, then rerun bronze_retention (dry run first)")
MAINTENANCE_VACUUM = _spec(
    "maintenance.vacuum", "maintenance", MANUAL_VACUUM, in_sweep=False,
    thresholds=("vacuum.dead_tuples_threshold", "vacuum.dead_ratio_threshold"),
    first_step="read the step's log, then rerun postgres_vacuum for the tables it names")
MAINTENANCE_GOLD_REFRESH = _spec(
    "maintenance.gold_refresh", "maintenance", DAILY_MAINTENANCE, in_sweep=False,
    first_step="read the step's log (lock timeouts name the blocker), then rerun gold_refresh")
MAINTENANCE_BACKUP = _spec(
    "maintenance.backup", "maintenance", "Backup and Recovery > Manual Backup Procedures", in_sweep=False,
    first_step="take an on-demand backup (postgres_backup) and watch it complete")
MAINTENANCE_HOUSEKEEPING = _spec(
    "maintenance.housekeeping", "maintenance", DAILY_MAINTENANCE, in_sweep=False,
    thresholds=("housekeeping.log_retention_days", "housekeeping.metadata_retention_days"),
    first_step="read the housekeeping step's log, fix, then rerun airflow_housekeeping")
MAINTENANCE_REPORT = _spec(
    "maintenance.report", "maintenance", DAILY_MAINTENANCE, in_sweep=False,
    first_step="read the step's task log, fix, then clear the step")

# In the sweep's postgres family: it reads ops.maintenance_audit through the warehouse connection.
MAINTENANCE_LAST_SUCCESS = _spec(
    "maintenance.last_success", "postgres", DAILY_MAINTENANCE, connection="warehouse.conn_id",
    thresholds=("maintenance.last_success_warning_h", "maintenance.last_success_critical_h"),
    first_step="read the step's last maintenance_tasks run (its report and audit rows); a skip names the "
               "session or gate that held it off; then run the step's manual DAG (dry run first)")

# The sweep's families in task order; each maps to the heading a whole-family failure cites.
FAMILY_RUNBOOK = {
    "kafka": KAFKA_CLUSTER,
    "flink": FLINK_CLUSTER,
    "postgres": POSTGRES_CLUSTER,
    "kubernetes": "Appendix: Useful Commands > Kubernetes",
    "airflow": AIRFLOW_SERVICE,
    "monitoring": MONITORING_STACK,
    "business": "Alert Response Procedures > Alert: PipelineLatencyHigh",
}
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILY_RUNBOOK)
assert {s.family for s in SPECS.values() if s.in_sweep} == set(FAMILY_NAMES), "a sweep check without a family"


def family_specs(family: str) -> tuple[CheckSpec, ...]:
    return tuple(s for s in SPECS.values() if s.family == family)


def spec(name: str) -> CheckSpec:
    """The spec of a check name; an unknown name raises (there is no generic fallback text)."""
    try:
        return SPECS[name]
    except KeyError:
        raise KeyError(f"unknown check {name!r}: declare it in streamflow_ops.registry") from None


def heading(name: str) -> str:
    """The runbook heading a result of `name` cites."""
    return spec(name).runbook


class CheckFamily(Protocol):
    """What the sweep runs: a family's name, its checks and a run that never raises."""

    name: str
    specs: tuple[CheckSpec, ...]

    def run(self, config: "StreamflowOpsConfig", now: datetime | None = None) -> list[CheckResult]: ...


@dataclass(frozen=True)
class Family:
    """The CheckFamily every family module registers: its name and its run_checks function."""

    name: str
    run_checks: Callable[["StreamflowOpsConfig", datetime | None], list[CheckResult]]

    @property
    def specs(self) -> tuple[CheckSpec, ...]:
        return family_specs(self.name)

    def run(self, config: "StreamflowOpsConfig", now: datetime | None = None) -> list[CheckResult]:
        return self.run_checks(config, now)


FAMILIES: dict[str, CheckFamily] = {}


def register(family: CheckFamily) -> CheckFamily:
    """Called by each family module at import; a family the registry does not know is refused."""
    if family.name not in FAMILY_RUNBOOK:
        raise ValueError(f"unknown check family {family.name!r}: add it to registry.FAMILY_RUNBOOK")
    FAMILIES[family.name] = family
    return family


def run_guarded(config: "StreamflowOpsConfig", specs: Sequence[CheckSpec],
                run: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    """Every family's opening: skipped (each spec) when their connection is undefined, else `run`, and a
    crash of `run` is `unknown` for each spec instead of an exception. `specs` share one connection."""
    conn_id = specs[0].conn_id(config)
    if conn_id is not None and not connection_defined(conn_id):
        return [s.skipped(conn_id) for s in specs]
    try:
        return run()
    except Exception as exc:  # noqa: BLE001 - one family's bug never takes the sweep down
        log.warning("checks %s failed", ", ".join(s.name for s in specs), exc_info=True)
        return [s.unknown(f"probe failed, state unknown: {describe_error(exc, 900)}") for s in specs]
