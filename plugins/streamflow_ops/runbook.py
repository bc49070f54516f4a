"""The operations runbook's headings, as an index of names, and the heading a check or action cites.

The runbook (RUNBOOK.md of StreamFlow Analytics) belongs to the platform team and is not part of this
repository. What the package cites of it is kept here as facts: its level-2 sections, each with its
level-3 headings, and the alert names of "Alert Response Procedures". Names only, never its text.
Everything the package cites (the registry, DAG docs, Slack texts) is "Section > Heading" from this
index, and tests/unit/test_runbook_citations.py holds dags/, plugins/ and include/ to it. When the
runbook changes its headings, change them here first: the tests then name every stale citation.

`section` is a lookup into `streamflow_ops.registry`, for callers that hold a name rather than its
CheckSpec (names built at run time, such as `maintenance.<capability>`). An undeclared name raises
KeyError: there is no generic fallback text to hide a typo.
"""
from __future__ import annotations

from streamflow_ops.registry import heading as section

ALERT_SECTION = "Alert Response Procedures"

# Section -> its headings, in the runbook's order (transcribed 2026-12-03).
INDEX: dict[str, tuple[str, ...]] = {
    "Overview": (),
    "Quick Reference": ("Critical Commands", "Emergency Contacts"),
    "Service Health Checks": (
        "1. Kafka Cluster (streamflow-kafka namespace)",
        "2. Flink Cluster (streamflow-processing namespace)",
        "3. PostgreSQL Cluster (streamflow-data namespace)",
        "4. Airflow (streamflow-orchestration namespace)",
        "5. Monitoring Stack (streamflow-monitoring namespace)",
    ),
    "Kafka Operations": ("Check Consumer Lag", "Restart Kafka Broker", "Increase Kafka Retention",
                         "Rebalance Consumer Groups"),
    "Flink Operations": ("Check Job Status", "Restart Flink Job", "Checkpoint Recovery", "Scale TaskManagers"),
    "PostgreSQL Operations": ("Check Connection Count", "Check Table Sizes", "Manual Vacuum", "Backup and Restore",
                              "Replication Status (N/A for Single-Node)"),
    "Airflow Operations": ("Check DAG Status", "Clear Failed Tasks", "Trigger Manual Run",
                           "Restart Airflow Scheduler"),
    ALERT_SECTION: tuple(f"Alert: {name}" for name in (
        "KafkaConsumerLagHigh", "KafkaBrokerDown", "FlinkJobNotRunning", "FlinkCheckpointFailing",
        "PostgresHighConnections", "PostgresPVCNearlyFull", "HighFraudRate", "PipelineLatencyHigh",
        "AirflowDAGFailure")),
    "Scaling Guide": ("Current Resource Allocation", "Vertical Scaling Procedures", "Horizontal Scaling (Multi-Node)"),
    "Backup and Recovery": ("Automated Backups", "Manual Backup Procedures", "Recovery Procedures"),
    "Maintenance Windows": ("Daily Maintenance (03:00 UTC)", "Weekly Maintenance (Sunday 02:00 UTC)"),
    "Emergency Procedures": ("Full Platform Restart", "Data Recovery (Bronze Layer Corruption)"),
    "Appendix: Useful Commands": ("Kubernetes", "PostgreSQL", "Kafka", "Monitoring"),
    "Document Revision History": (),
    "Support": (),
}

HEADINGS: frozenset[str] = frozenset(f"{s} > {h}" for s, hs in INDEX.items() for h in hs)
"""Every citable "Section > Heading"."""

ALERTS: tuple[str, ...] = tuple(h.removeprefix("Alert: ") for h in INDEX[ALERT_SECTION])
"""The runbook's alert names (its "Alert: <name>" headings)."""

__all__ = ["ALERTS", "ALERT_SECTION", "HEADINGS", "INDEX", "section"]
