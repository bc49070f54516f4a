"""One typed, validated configuration: the runbook's defaults, overridden key by key by a Variable.

The Airflow Variable `streamflow_ops_config` holds a JSON object shaped like `StreamflowOpsConfig`;
every key is optional. Unknown keys, wrong types and unsafe identifiers are refused with the key named.
"""
from __future__ import annotations

import json
from typing import Annotated, Any, Literal

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
    model_config = ConfigDict(extra="forbid", frozen=True)


class WarehouseConfig(Section):
    """Where the StreamFlow data lives (reference schema of SPEC.md by default)."""

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


class BackupConfig(Section):
    method: Literal["cnpg", "pg_dump"] = "pg_dump"
    schemas: list[Identifier] = ["gold"]
    folder: str = "/tmp/streamflow-backups"
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

    @model_validator(mode="after")
    def _bands_ordered(self) -> "KafkaConfig":
        if self.lag_warning >= self.lag_critical:
            raise ValueError("lag_warning must be below lag_critical")
        return self


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

    @model_validator(mode="after")
    def _bands_ordered(self) -> "FlinkConfig":
        if self.checkpoint_warning_s >= self.checkpoint_critical_s:
            raise ValueError("checkpoint_warning_s must be below checkpoint_critical_s")
        return self


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
    # Each check's query gets this statement_timeout, so one slow catalog query cannot stall the sweep.
    statement_timeout_s: PositiveInt = 10


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

    @model_validator(mode="after")
    def _bands_ordered(self) -> "AirflowApiConfig":
        if self.heartbeat_warning_s >= self.heartbeat_critical_s:
            raise ValueError("heartbeat_warning_s must be below heartbeat_critical_s")
        return self


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


class AlertingConfig(Section):
    slack_conn_id: ConnId = "slack_streamflow_alerts"
    pagerduty_conn_id: ConnId = "pagerduty_streamflow"
    slack_channel: str = "#streamflow-alerts"


class StreamflowOpsConfig(Section):
    warehouse: WarehouseConfig = WarehouseConfig()
    retention: RetentionConfig = RetentionConfig()
    vacuum: VacuumConfig = VacuumConfig()
    gold_refresh: GoldRefreshConfig = GoldRefreshConfig()
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


def get_config() -> StreamflowOpsConfig:
    """The config for a running task: defaults plus the Variable. Bad config fails without retries."""
    from airflow.sdk.exceptions import AirflowFailException
    from airflow.sdk import Variable

    try:
        return load_config(Variable.get(VARIABLE_KEY, default=None))
    except ConfigError as exc:
        raise AirflowFailException(str(exc)) from None
