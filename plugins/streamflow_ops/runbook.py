"""Which section of the StreamFlow operations runbook each check and action maps to."""
from __future__ import annotations

SECTIONS: dict[str, str] = {
    "kafka.broker_reachable": "Runbook 4.1 Kafka: KafkaBrokerDown - check Strimzi broker pods and listeners",
    "kafka.topics_present": "Runbook 4.2 Kafka: recreate missing topics (KafkaTopic CRs)",
    "kafka.partition_leaders": "Runbook 4.3 Kafka: partitions without leader - broker restart / preferred election",
    "kafka.under_replicated": "Runbook 4.3 Kafka: under-replicated partitions - check broker disks and ISR",
    "kafka.consumer_lag": "Runbook 4.4 Kafka: consumer lag - check the Flink job, then scale or drain",
    "flink.job_running": "Runbook 5.1 Flink: FlinkJobNotRunning - restart from the last checkpoint",
    "flink.checkpoint_age": "Runbook 5.2 Flink: FlinkCheckpointFailing - inspect checkpoint failures",
    "flink.checkpoint_failures": "Runbook 5.2 Flink: FlinkCheckpointFailing - inspect checkpoint failures",
    "flink.backpressure": "Runbook 5.3 Flink: high backpressure - find the slow vertex, scale out",
    "flink.taskmanagers": "Runbook 5.4 Flink: missing TaskManagers - check pods and resources",
    "postgres.reachable": "Runbook 6.1 PostgreSQL: database down - check the CNPG cluster and primary",
    "postgres.connections": "Runbook 6.2 PostgreSQL: too many connections - find idle sessions / pooler",
    "postgres.replication_lag": "Runbook 6.3 PostgreSQL: replication lag - check replica pods and WAL",
    "postgres.dead_tuples": "Runbook 6.4 PostgreSQL: table bloat - run postgres_vacuum",
    "postgres.long_running_queries": "Runbook 6.5 PostgreSQL: long-running queries - pg_stat_activity",
    "postgres.txid_wraparound": "Runbook 6.6 PostgreSQL: transaction ID wraparound - VACUUM (FREEZE)",
    "postgres.backup_age": "Runbook 6.7 PostgreSQL: stale backups - run postgres_backup",
    "airflow.scheduler_heartbeat": "Runbook 7.1 Airflow: scheduler down - check the scheduler pod",
    "airflow.failed_dag_runs": "Runbook 7.2 Airflow: failing DAG runs - read the task logs, clear and rerun",
    "kubernetes.pods": "Runbook 3.1 Kubernetes: unhealthy pods - kubectl describe / logs",
    "kubernetes.strimzi_kafka": "Runbook 3.2 Kubernetes: Strimzi Kafka CR not Ready",
    "kubernetes.cnpg_cluster": "Runbook 3.3 Kubernetes: CloudNativePG cluster unhealthy",
    "kubernetes.flink_deployment": "Runbook 3.4 Kubernetes: FlinkDeployment not ready",
    "monitoring.prometheus_targets": "Runbook 8.1 Monitoring: Prometheus targets down",
    "monitoring.alertmanager": "Runbook 8.2 Monitoring: firing alerts in Alertmanager",
    "monitoring.grafana": "Runbook 8.3 Monitoring: Grafana unreachable",
    "business.fraud_rate": "Runbook 9.1 Business: fraud-rate spike - check rules and upstream data",
    "business.pipeline_latency": "Runbook 9.2 Business: pipeline latency - check Flink, Kafka lag, silver writers",
    "maintenance.bronze_retention": "Runbook 2.2 Maintenance: bronze retention (7 days)",
    "maintenance.vacuum": "Runbook 2.1 Maintenance: vacuum",
    "maintenance.gold_refresh": "Runbook 2.3 Maintenance: gold materialized views",
    "maintenance.backup": "Runbook 2.4 Maintenance: backups (CloudNativePG, pg_dump)",
    "maintenance.housekeeping": "Runbook 2.5 Maintenance: Airflow log and metadata cleanup",
    "maintenance.lock": "Runbook 2 Maintenance: one window at a time - wait for the other run or check who holds the lock",
    "maintenance.preflight": "Runbook 2 Maintenance: the window's preflight - fix the blocker, then clear the step",
}


def section(name: str) -> str:
    return SECTIONS.get(name, "Runbook: see the StreamFlow operations runbook")
