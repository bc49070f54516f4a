"""Offset samples in ops.kafka_offset_samples: the memory that lets an hourly sweep judge a window."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from streamflow_ops.kafka.model import GroupOffsets, OffsetSample
from streamflow_ops.sqlfiles import load_sql


def store_samples(conn, reads: Iterable[GroupOffsets], ops_schema: str = "ops") -> int:
    """Insert every partition sample of the successful reads, in one transaction."""
    rows = [{"sampled_at": s.sampled_at, "group": s.group, "topic": s.topic, "partition": s.partition,
             "committed": s.committed, "log_end": s.log_end}
            for read in reads if read.error is None for s in read.samples]
    if rows:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(load_sql("kafka_insert_offset_samples.sql", ops=ops_schema), rows)
    return len(rows)


def load_samples(conn, group: str, since: datetime, until: datetime, ops_schema: str = "ops") -> list[OffsetSample]:
    rows = conn.execute(load_sql("kafka_load_offset_samples.sql", ops=ops_schema),
                        {"group": group, "since": since, "until": until}).fetchall()
    return [OffsetSample(*row) for row in rows]


def prune_samples(conn, before: datetime, ops_schema: str = "ops") -> int:
    """Delete samples older than `before` (the configured horizon); returns how many went."""
    with conn.transaction():
        return conn.execute(load_sql("kafka_prune_offset_samples.sql", ops=ops_schema), {"before": before}).rowcount
