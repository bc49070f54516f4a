"""One typed, validated configuration: the runbook's defaults, overridden key by key by a Variable.

The Airflow Variable `streamflow_ops_config` holds a JSON object shaped like `StreamflowOpsConfig`;
every key is optional. Unknown keys, wrong types and unsafe identifiers are refused with the key named.
"""
from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

VARIABLE_KEY = "streamflow_ops_config"

# A PostgreSQL identifier we are willing to quote: lower-case, no quoting tricks, at most 63 bytes.
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,62}$")]
QualifiedName = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,62}\.[a-z_][a-z0-9_]{0,62}$")]
DagId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,250}$")]
ConnId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,250}$")]
KubeName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")]
Positive = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
Ratio = Annotated[float, Field(ge=0, le=1)]


class ConfigError(ValueError):
    """The merged configuration is invalid; the message names every offending key."""


class Section(BaseModel):
    """Strict: a JSON "7" is not 7 and "yes" is not true (no silent coercion of a typo'd override).
    `bands` lists (warning key, critical key) pairs of a section; warning must be below critical."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    bands: ClassVar[tuple[tuple[str, str], ...]] = ()

    @model_validator(mode="after")
    def _bands_ordered(self) -> "Section":
        for warning, critical in self.bands:
            if getattr(self, warning) >= getattr(self, critical):
                raise ValueError(f"{warning} must be below {critical} "
                                 f"({getattr(self, warning)} >= {getattr(self, critical)})")
        return self


class WarehouseConfig(Section):
    """Where the StreamFlow data lives (the reference schema of docs/contract.md by default)."""

    conn_id: ConnId = "streamflow_postgres"
    bronze_schema: Identifier = "bronze"
    silver_schema: Identifier = "silver"
    gold_schema: Identifier = "gold"
    ops_schema: Identifier = "ops"
    bronze_table: Identifier = "transactions"
    silver_table: Identifier = "transactions_enriched"
    fraud_alerts_table: Identifier = "fraud_alerts"
    id_column: Identifier = "transaction_id"
    time_column: Identifier = "transaction_time"
    fraud_score_column: Identifier = "fraud_score"
    enriched_at_column: Identifier = "enriched_at"
    connect_timeout_s: PositiveInt = 5
    statement_timeout_s: PositiveInt = 60
    # Creating or migrating the ops tables (platform_health_sweep's ensure_ops_tables, outside the alert
    # path) waits at most this long for a lock: an analyst's open transaction never queues the sweep.
    schema_lock_timeout_s: Positive = 5


class RetentionConfig(Section):
    retention_days: Annotated[int, Field(ge=1, le=365)] = 7
    batch_size: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    lock_timeout_s: PositiveInt = 5
    statement_timeout_s: PositiveInt = 30


class VacuumConfig(Section):
    schemas: list[Identifier] = ["bronze", "silver", "gold"]
    dead_tuples_threshold: PositiveInt = 100_000
    dead_ratio_threshold: Ratio = 0.2
    min_dead_tuples_for_ratio: PositiveInt = 1_000
    freeze_age_threshold: PositiveInt = 150_000_000
    lock_timeout_s: PositiveInt = 10
    statement_timeout_s: PositiveInt = 3_600


class GoldRefreshConfig(Section):
    lock_timeout_s: PositiveInt = 10
    statement_timeout_s: PositiveInt = 1_800


class MaintenanceConfig(Section):
    """The nightly window (maintenance_tasks) as a whole."""

    # The run ends by this many minutes after it started, whatever hangs (dagrun_timeout, and an
    # execution_timeout on every task with its retries inside it). Read when the DAG is parsed.
    hard_stop_minutes: Positive = 120
    # maintenance.last_success: hours since a step's last real successful run (runbook: the window is daily).
    last_success_warning_h: Positive = 26
    last_success_critical_h: Positive = 50
    bands = (("last_success_warning_h", "last_success_critical_h"),)


class BackupConfig(Section):
    # auto: cnpg when the Kubernetes connection is defined; else gold_export for schemas == [gold], else pg_dump.
    method: Literal["auto", "cnpg", "pg_dump", "gold_export"] = "auto"
    schemas: list[Identifier] = ["gold"]
    # The runbook's backup PVC; must be writable and shared by every worker that runs a backup task.
    folder: str = "/backups"
    dump_format: Literal["custom", "directory"] = "custom"
    jobs: Annotated[int, Field(ge=1, le=16)] = 2
    keep_days: Annotated[int, Field(ge=1, le=3650)] = 7
    cnpg_cluster: KubeName = "streamflow-postgres"
    cnpg_namespace: KubeName = "streamflow-data"
    cnpg_backup_method: Literal["barmanObjectStore", "volumeSnapshot", "plugin"] = "barmanObjectStore"
    cnpg_plugin_name: str | None = None
    timeout_s: PositiveInt = 3_600
    poll_interval_s: Positive = 15
    pg_bin_dir: str = "/usr/lib/postgresql/15/bin"
    # A dump of views/matviews is only restorable with what they read: add those schemas to the dump.
    include_dependencies: bool = True
    lock_wait_timeout_s: PositiveInt = 60
    statement_timeout_s: PositiveInt = 3_600
    # A restore verification that runs longer is stopped; its scratch database is stale after that.
    verify_timeout_s: PositiveInt = 3_600


class HousekeepingConfig(Section):
    log_folder: str = "/usr/local/airflow/logs"
    log_retention_days: Annotated[int, Field(ge=1, le=3650)] = 30
    metadata_retention_days: Annotated[int, Field(ge=1, le=3650)] = 90
    worker_queues: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,200}$")]] = []
    kubernetes_namespace: KubeName = "streamflow-orchestration"
    scheduler_image: str = ""
    metadata_secret: KubeName = "airflow-metadata"
    metadata_secret_key: str = "connection"
    pod_startup_timeout_s: PositiveInt = 300


class KafkaConfig(Section):
    conn_id: ConnId = "streamflow_kafka"
    topics: list[str] = ["transactions.raw", "transactions.enriched", "fraud.alerts", "fraud.scored",
                         "fraud.blacklist"]
    consumer_groups: list[str] = ["flink-fraud-detector"]
    checkpoint_committing_groups: list[str] = ["flink-fraud-detector"]
    lag_warning: PositiveInt = 1_000
    lag_critical: PositiveInt = 10_000
    # The sweep samples hourly: three samples need a window of three hours.
    window_minutes: PositiveInt = 180
    min_window_samples: Annotated[int, Field(ge=2)] = 3
    sample_horizon_hours: PositiveInt = 48
    request_timeout_s: Positive = 10
    # The runbook's topic layout (kafka-topics.sh --describe): 3 partitions, replication factor 1.
    expected_partitions: PositiveInt = 3
    expected_replication_factor: PositiveInt = 1
    bands = (("lag_warning", "lag_critical"),)


class FlinkConfig(Section):
    conn_id: ConnId = "streamflow_flink"
    job_name: str = "FraudDetectionJob"
    checkpoint_warning_s: PositiveInt = 600
    checkpoint_critical_s: PositiveInt = 1_800
    backpressure_warning_ratio: Ratio = 0.8
    expected_taskmanagers: Annotated[int, Field(ge=1)] = 2
    request_timeout_s: Positive = 10
    connect_timeout_s: Positive = 3
    # A vertex whose backpressure is not sampled yet is polled once more after this pause.
    backpressure_resample_wait_s: Annotated[float, Field(ge=0, le=30)] = 5
    bands = (("checkpoint_warning_s", "checkpoint_critical_s"),)


class PostgresChecksConfig(Section):
    connections_warning_pct: Annotated[float, Field(gt=0, le=100)] = 80
    connections_critical_pct: Annotated[float, Field(gt=0, le=100)] = 95
    replication_lag_warning_bytes: PositiveInt = 10 * 1024 * 1024
    replication_lag_critical_bytes: PositiveInt = 100 * 1024 * 1024
    dead_tuples_warning: PositiveInt = 100_000
    dead_tuples_schemas: list[Identifier] = ["bronze", "silver", "gold"]
    long_query_s: PositiveInt = 300
    wraparound_warning: PositiveInt = 500_000_000
    wraparound_critical: PositiveInt = 1_000_000_000
    backup_age_warning_h: Positive = 26
    backup_age_critical_h: Positive = 50
    # The runbook expects a backup to complete in < 10 minutes.
    backup_duration_warning_s: PositiveInt = 600
    # Each check's query gets this statement_timeout, so one slow catalog query cannot stall the sweep.
    statement_timeout_s: PositiveInt = 10
    bands = (("connections_warning_pct", "connections_critical_pct"),
             ("replication_lag_warning_bytes", "replication_lag_critical_bytes"),
             ("wraparound_warning", "wraparound_critical"),
             ("backup_age_warning_h", "backup_age_critical_h"))


class ExpectedWorkload(Section):
    """Pods the runbook expects in a namespace: `pod` is a glob on pod names ("airflow-scheduler-*")."""

    pod: Annotated[str, StringConstraints(pattern=r"^[a-z0-9*?\[\]-]{1,253}$")]
    replicas: Annotated[int, Field(ge=1, le=100)] = 1
    # Other names accepted for it (Airflow 3's airflow-api-server for the runbook's airflow-webserver).
    alternatives: list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9*?\[\]-]{1,253}$")]] = []
    # Only pods with this label ("key=value"), e.g. CloudNativePG's primary.
    label: str | None = None
    # A single-instance core workload (broker, JobManager, primary, scheduler): absent is critical.
    core: bool = False
    # Expected only under this Airflow executor (the runbook's "airflow-worker ... if CeleryExecutor").
    executor: Literal["CeleryExecutor", "KubernetesExecutor", "LocalExecutor"] | None = None
    description: str = ""


def _inventory(**namespaces: list[dict]) -> dict[str, list[ExpectedWorkload]]:
    return {ns.replace("_", "-"): [ExpectedWorkload(**w) for w in items] for ns, items in namespaces.items()}


RUNBOOK_INVENTORY = _inventory(
    streamflow_kafka=[
        {"pod": "streamflow-kafka-kafka-0", "core": True, "description": "Kafka broker"},
        {"pod": "streamflow-kafka-entity-operator-*", "description": "Strimzi entity operator"},
        {"pod": "strimzi-cluster-operator-*", "description": "Strimzi cluster operator"}],
    streamflow_processing=[
        {"pod": "flink-kubernetes-operator-*", "description": "Flink Kubernetes operator"},
        {"pod": "flink-jobmanager-*", "core": True, "description": "Flink JobManager"},
        {"pod": "flink-taskmanager-*", "replicas": 2, "description": "Flink TaskManagers"}],
    streamflow_data=[
        {"pod": "streamflow-postgres-[0-9]*", "replicas": 3, "description": "PostgreSQL instances"},
        {"pod": "streamflow-postgres-[0-9]*", "label": "cnpg.io/instanceRole=primary", "core": True,
         "description": "PostgreSQL primary"}],
    streamflow_orchestration=[
        {"pod": "airflow-scheduler-*", "core": True, "description": "Airflow scheduler"},
        {"pod": "airflow-webserver-*", "alternatives": ["airflow-api-server-*"],
         "description": "Airflow webserver / API server"},
        {"pod": "airflow-worker-*", "executor": "CeleryExecutor", "description": "Airflow Celery worker"},
        {"pod": "airflow-postgresql-*", "description": "Airflow metadata database"}],
    streamflow_monitoring=[
        {"pod": "prometheus-kube-prometheus-stack-prometheus-0", "description": "Prometheus"},
        {"pod": "kube-prometheus-stack-grafana-*", "description": "Grafana"},
        {"pod": "alertmanager-kube-prometheus-stack-alertmanager-0", "description": "Alertmanager"}],
)


class KubernetesConfig(Section):
    conn_id: ConnId = "streamflow_kubernetes"
    namespaces: list[KubeName] = ["streamflow-kafka", "streamflow-processing", "streamflow-data",
                                  "streamflow-orchestration", "streamflow-monitoring"]
    restart_warning: PositiveInt = 3
    kafka_cluster: KubeName = "streamflow-kafka"
    kafka_namespace: KubeName = "streamflow-kafka"
    cnpg_cluster: KubeName = "streamflow-postgres"
    cnpg_namespace: KubeName = "streamflow-data"
    flink_deployment: KubeName = "fraud-detection"
    flink_namespace: KubeName = "streamflow-processing"
    # Without a FlinkDeployment CR, the JobManager/TaskManager Deployments matching this selector are checked.
    flink_fallback_selector: str = "component in (jobmanager,taskmanager)"
    # Restarts count as "restarting" only while the last one is this recent; old restarts are history.
    restart_window_h: PositiveInt = 24
    # A pod must be not Ready this long before it is reported (rollouts and starts are not problems).
    not_ready_grace_s: Annotated[int, Field(ge=0)] = 300
    request_timeout_s: Positive = 10
    connect_timeout_s: Positive = 3
    # kubernetes.pvc_usage (kubelet volume statistics from Prometheus): runbook PostgresPVCNearlyFull.
    pvc_warning_ratio: Ratio = 0.80
    pvc_critical_ratio: Ratio = 0.95
    # kubernetes.expected_workloads: the runbook's "Expected pods/deployments" per namespace.
    expected_workloads: dict[KubeName, list[ExpectedWorkload]] = RUNBOOK_INVENTORY
    # Airflow's executor in the cluster: the runbook expects airflow-worker pods only with Celery.
    airflow_executor: Literal["CeleryExecutor", "KubernetesExecutor", "LocalExecutor"] = "CeleryExecutor"
    bands = (("pvc_warning_ratio", "pvc_critical_ratio"),)


class AirflowApiConfig(Section):
    conn_id: ConnId = "streamflow_airflow_api"
    watched_dags: list[DagId] = ["bronze_to_silver_pipeline", "silver_to_gold_pipeline",
                                 "fraud_detection_batch", "maintenance_tasks"]
    heartbeat_warning_s: PositiveInt = 60
    heartbeat_critical_s: PositiveInt = 300
    consecutive_failures_critical: PositiveInt = 3
    failed_runs_window_h: PositiveInt = 24
    request_timeout_s: Positive = 10
    connect_timeout_s: Positive = 3
    # The runbook's "Expected DAGs": each must exist, parse and be unpaused (airflow.expected_dags).
    expected_dags: list[DagId] = ["bronze_to_silver_pipeline", "silver_to_gold_pipeline",
                                  "fraud_detection_batch", "maintenance_tasks"]
    bands = (("heartbeat_warning_s", "heartbeat_critical_s"),)


class MonitoringConfig(Section):
    prometheus_conn_id: ConnId = "streamflow_prometheus"
    alertmanager_conn_id: ConnId = "streamflow_alertmanager"
    grafana_conn_id: ConnId = "streamflow_grafana"
    pushgateway_conn_id: ConnId = "streamflow_pushgateway"
    request_timeout_s: Positive = 10
    connect_timeout_s: Positive = 3


class BusinessConfig(Section):
    fraud_score_threshold: Ratio = 0.7
    fraud_rate_window_minutes: PositiveInt = 60
    fraud_rate_warning: Ratio = 0.10
    fraud_rate_critical: Ratio = 0.20
    pipeline_latency_warning_s: PositiveInt = 300
    pipeline_latency_critical_s: PositiveInt = 900
    bands = (("fraud_rate_warning", "fraud_rate_critical"),
             ("pipeline_latency_warning_s", "pipeline_latency_critical_s"))


class AlertingConfig(Section):
    slack_conn_id: ConnId = "slack_streamflow_alerts"
    pagerduty_conn_id: ConnId = "pagerduty_streamflow"
    slack_channel: str = "#streamflow-alerts"
    # A check whose answered status flips more than flap_threshold times within its last flap_window
    # sweeps is reported once as flapping and not paged again until stable for flap_window sweeps.
    flap_threshold: Annotated[int, Field(ge=1)] = 3
    flap_window: Annotated[int, Field(ge=2, le=100)] = 6
    # Where Alertmanager already fires the runbook alert of the same name, do not page PagerDuty twice.
    defer_to_alertmanager: bool = True
    # A subject whose probe failed this many sweeps in a row is told in Slack as "not measured" (once).
    not_measured_after: Annotated[int, Field(ge=1)] = 2
    # One PagerDuty or Slack request may take this long; what fails stays owed for the retry or next sweep.
    request_timeout_s: Positive = 20
    # Each channel gets this long per alert task in all (PagerDuty's pages go out at once, Slack in
    # parallel), so a hanging channel never starves the other inside the task's 2-minute timeout.
    channel_budget_s: Annotated[float, Field(gt=0, le=50)] = 45
    # Slack waits this long for PagerDuty's answers, to tell a refused page in the same message.
    slack_waits_for_pagerduty_s: Annotated[float, Field(ge=0, le=20)] = 5


class WorkloadRef(Section):
    """One workload a remediation may restart: `kubectl rollout restart <kind>/<name> -n <namespace>`."""

    namespace: Annotated[str, StringConstraints(pattern=r"^streamflow-[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$")]
    kind: Literal["Deployment", "StatefulSet"]
    name: KubeName


class RemediationConfig(Section):
    """The remediation DAGs (runbook "Alert Response Procedures") and the links alerts carry to them."""

    # Where people open the Airflow UI: alerts link to the remediations' trigger forms there.
    airflow_ui_url: str = "http://127.0.0.1:45480"
    # The only workloads remediate_restart_workload may restart (the runbook's "Expected pods/deployments" lists).
    restartable_workloads: list[WorkloadRef] = [
        WorkloadRef(namespace="streamflow-processing", kind="Deployment", name="flink-jobmanager"),
        WorkloadRef(namespace="streamflow-processing", kind="Deployment", name="flink-taskmanager"),
        WorkloadRef(namespace="streamflow-processing", kind="Deployment", name="flink-kubernetes-operator"),
        WorkloadRef(namespace="streamflow-orchestration", kind="Deployment", name="airflow-scheduler"),
        WorkloadRef(namespace="streamflow-orchestration", kind="Deployment", name="airflow-api-server"),
        WorkloadRef(namespace="streamflow-orchestration", kind="Deployment", name="airflow-worker"),
        WorkloadRef(namespace="streamflow-monitoring", kind="Deployment", name="kube-prometheus-stack-grafana"),
    ]
    # Without the operator's FlinkDeployment, TaskManagers are this Deployment in kubernetes.flink_namespace.
    taskmanager_deployment: KubeName = "flink-taskmanager"
    # Savepoints go here (a URI such as s3://... or file:///...); empty: Flink's state.savepoints.dir.
    flink_savepoint_dir: str = ""
    flink_savepoint_timeout_s: PositiveInt = 600
    flink_restart_timeout_s: PositiveInt = 300
    # A standalone cluster (no operator) resubmits the uploaded jar whose entry class is this, with these args.
    flink_entry_class: str = ""
    flink_program_args: list[str] = []
    # Sessions whose application_name starts with this are this package's own: never terminated.
    own_application_prefix: str = "streamflow_ops"
    statement_timeout_s: PositiveInt = 30


class ReportsConfig(Section):
    # Where reports with files (the weekly review's report.md, report.json and charts) are written; like
    # backup.folder, a volume every worker that writes or reads them shares.
    folder: str = "/usr/local/airflow/reports"


class ReviewConfig(Section):
    """weekly_review (runbook "Maintenance Windows > Weekly Maintenance (Sunday 02:00 UTC)")."""

    # A rule whose weekly alert count moved by more than this share of last week's count is flagged for review.
    rule_change_ratio: Positive = 0.5
    # Optional Slack API connection (a bot token): the charts are uploaded to alerting.slack_channel with it.
    slack_api_conn_id: ConnId = "slack_streamflow_api"
    # The checks listed as the noisiest, and the worst findings posted to Slack.
    top_n: Annotated[int, Field(ge=1, le=50)] = 5


class RecoveryConfig(Section):
    """recover_bronze (runbook "Emergency Procedures > Data Recovery (Bronze Layer Corruption)") and restore_drill."""

    # The longest range one recover_bronze run may replay (Kafka keeps 3 days).
    max_range_hours: Annotated[int, Field(ge=1, le=24 * 30)] = 72
    # Messages are read until `end` plus this much by message timestamp: a transaction whose event time is in
    # the range may reach Kafka a little after it.
    late_arrival_s: Annotated[int, Field(ge=0, le=86_400)] = 300
    # A partition that yields no message for this long while offsets remain before its stop offset fails the run.
    read_timeout_s: Positive = 30
    # Rows staged per COPY while reading (memory bound of the reader).
    stage_batch_rows: Annotated[int, Field(ge=100, le=1_000_000)] = 50_000
    statement_timeout_s: PositiveInt = 3_600
    # restore_drill's scratch CloudNativePG Cluster: how long it may take to recover and become ready, how often
    # it is polled, and where its read-write service answers ({cluster}, {namespace} filled in; CNPG names the
    # service <cluster>-rw). The drill logs in like the warehouse connection (the roles come from the backup),
    # to `drill_database`, or the warehouse connection's database when empty.
    drill_timeout_s: PositiveInt = 3_600
    drill_poll_interval_s: Positive = 30
    drill_host: str = "{cluster}-rw.{namespace}.svc"
    drill_port: Annotated[int, Field(ge=1, le=65_535)] = 5432
    drill_database: str = ""
    # A drill older than this is a warning, older than critical_days critical (postgres.restore_drill_age).
    drill_warning_days: Positive = 8
    drill_critical_days: Positive = 15
    bands = (("drill_warning_days", "drill_critical_days"),)


class StreamflowOpsConfig(Section):
    warehouse: WarehouseConfig = WarehouseConfig()
    retention: RetentionConfig = RetentionConfig()
    vacuum: VacuumConfig = VacuumConfig()
    gold_refresh: GoldRefreshConfig = GoldRefreshConfig()
    maintenance: MaintenanceConfig = MaintenanceConfig()
    backup: BackupConfig = BackupConfig()
    housekeeping: HousekeepingConfig = HousekeepingConfig()
    kafka: KafkaConfig = KafkaConfig()
    flink: FlinkConfig = FlinkConfig()
    postgres_checks: PostgresChecksConfig = PostgresChecksConfig()
    kubernetes: KubernetesConfig = KubernetesConfig()
    airflow_api: AirflowApiConfig = AirflowApiConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    business: BusinessConfig = BusinessConfig()
    alerting: AlertingConfig = AlertingConfig()
    remediation: RemediationConfig = RemediationConfig()
    recovery: RecoveryConfig = RecoveryConfig()
    reports: ReportsConfig = ReportsConfig()
    review: ReviewConfig = ReviewConfig()


def load_config(overrides: dict[str, Any] | str | None = None) -> StreamflowOpsConfig:
    """Merge overrides (a dict or its JSON text) onto the defaults and validate the result."""
    if overrides is None or overrides == "":
        return StreamflowOpsConfig()
    if isinstance(overrides, str):
        try:
            overrides = json.loads(overrides)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{VARIABLE_KEY}: not valid JSON ({exc.msg} at line {exc.lineno} "
                              f"column {exc.colno})") from None
    if not isinstance(overrides, dict):
        raise ConfigError(f"{VARIABLE_KEY}: must be a JSON object, got {type(overrides).__name__}")
    try:
        return StreamflowOpsConfig.model_validate(overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"key '{'.'.join(str(p) for p in err['loc']) or '<root>'}': {_describe(err)}"
            for err in exc.errors()
        )
        raise ConfigError(f"{VARIABLE_KEY} is invalid: {problems}") from None


def _describe(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "string_pattern_mismatch":
        return f"unsafe or invalid name {err['input']!r} (allowed: {err['ctx']['pattern']})"
    return f"{err['msg']} (got {err.get('input')!r})"


def parse_time_config() -> StreamflowOpsConfig:
    """The config a DAG file may read while it is parsed: the defaults plus the Variable only where the
    environment holds it (AIRFLOW_VAR_STREAMFLOW_OPS_CONFIG), so parsing never calls the metadata
    database or the API. Settings the scheduler enforces (the window's hard stop) come from here."""
    import os

    return load_config(os.environ.get(f"AIRFLOW_VAR_{VARIABLE_KEY.upper()}"))


def get_config() -> StreamflowOpsConfig:
    """The config for a running task: defaults plus the Variable. Bad config fails without retries."""
    from airflow.sdk.exceptions import AirflowFailException
    from airflow.sdk import Variable

    try:
        return load_config(Variable.get(VARIABLE_KEY, default=None))
    except ConfigError as exc:
        raise AirflowFailException(str(exc)) from None
