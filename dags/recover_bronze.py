"""Targeted bronze replay from Kafka (SPEC "Recovery"); the runbook's bronze recovery without its TRUNCATE.

Runbook: Emergency Procedures > Data Recovery (Bronze Layer Corruption).
"""
from __future__ import annotations

from airflow.sdk import Param, dag

from streamflow_ops.dag_defaults import COMMON_DAG_ARGS, dry_run_param
from streamflow_ops.recovery.bronze import KAFKA_TOPIC, ZONED_DATETIME
from streamflow_ops.recovery.operators import RecoverBronzeOperator

_WHEN = "ISO-8601 with its zone, e.g. 2026-12-01T10:00:00Z (a time without a zone is refused)"


@dag(
    dag_id="recover_bronze",
    schedule=None,
    **COMMON_DAG_ARGS,
    tags=["streamflow", "recovery", "manual"],
    params={
        # dry_run first: a trigger's conf is judged in this order, and a bad dry_run must be named as such.
        "dry_run": dry_run_param(True, "read Kafka and count the missing rows it would insert"),
        "start": Param(type="string", pattern=ZONED_DATETIME, title="Start (inclusive)",
                       description=f"First instant of the range to recover, by transaction_time. {_WHEN}."),
        "end": Param(type="string", pattern=ZONED_DATETIME, title="End (exclusive)",
                     description=f"End of the range, after start and at most recovery.max_range_hours (72) "
                                 f"later. {_WHEN}."),
        "topic": Param("transactions.raw", type="string", pattern=KAFKA_TOPIC, title="Topic",
                       description="The topic to read back: one of kafka.topics (the raw transactions by default)."),
    },
    doc_md="""
### recover_bronze (manual; runbook: Emergency Procedures > Data Recovery (Bronze Layer Corruption))
Puts back the `bronze.transactions` rows of `[start, end)` (by `transaction_time`) that are missing,
reading them from `topic` again. Unlike the runbook's procedure it truncates nothing, stops nothing and
never moves `flink-fraud-detector`: the consumer is assigned partitions, joins no group and commits
nothing. It finds each partition's offsets by message timestamp (offsets_for_times, checked against the
messages around the answer; a binary search over timestamps where the broker answers wrongly), inserts
only rows whose `transaction_id` is absent (never updates or deletes), and is idempotent: a second run
inserts nothing. **Dry run by default**: it reads and reports exactly what it would insert.

The report (log and XCom) gives per partition the offsets read, rows in range, malformed messages
(counted and skipped, one example shown), rows missing and inserted; and the part of the range Kafka no
longer holds (older than a partition's first message), with the newest verified or completed backup to
restore instead. One `ops.maintenance_audit` row (`action='recover_bronze'`, `rows_affected` = rows
inserted, or that would be). Retried on Kafka/PostgreSQL errors (idempotent); bad params are refused at
trigger time, or fail without retries naming the param. docs/recovery.md has the on-call steps.
""",
)
def recover_bronze():
    RecoverBronzeOperator(task_id="recover_bronze")


recover_bronze()
