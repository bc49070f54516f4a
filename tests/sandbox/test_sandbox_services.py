"""The sandbox scripts: idempotent start, the seeded dataset, clear errors, and nothing left behind."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from sandbox import kafka, postgres
from sandbox.proc import Layout, SandboxError, group_alive, wait_until

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def private_layout(tmp_path_factory, sandbox_layout) -> Layout:
    """A throwaway profile on its own ports inside the session's range (base + 6: PostgreSQL base+38, Kafka
    base+98, used by nothing else), so these tests never touch the shared services or another profile."""
    root = Path("/tmp") / f"sf-sandbox-{os.getpid()}-{tmp_path_factory.getbasetemp().name}"
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    return Layout(root=root, port_base=sandbox_layout.port_base + 6)


def _cli(layout: Layout, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "STREAMFLOW_SANDBOX_DIR": str(layout.root),
           "STREAMFLOW_SANDBOX_PORT_BASE": str(layout.port_base)}
    return subprocess.run([sys.executable, "-m", "sandbox", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.postgres
@pytest.mark.kafka
def test_cli_start_is_idempotent_and_stop_leaves_nothing(private_layout):
    first = _cli(private_layout, "start", "--only", "postgres,kafka")
    assert first.returncode == 0, first.stderr
    pgids = [int(p.read_text()) for p in private_layout.root.glob("*/*.pid")]
    assert len(pgids) == 2 and all(group_alive(g) for g in pgids)
    second = _cli(private_layout, "start", "--only", "postgres,kafka")
    assert second.returncode == 0, second.stderr
    assert sorted(int(p.read_text()) for p in private_layout.root.glob("*/*.pid")) == sorted(pgids)
    env = _cli(private_layout, "env").stdout
    assert f"127.0.0.1:{private_layout.postgres_port}" in env and "AIRFLOW_CONN_STREAMFLOW_KAFKA" in env
    stop = _cli(private_layout, "stop", "--only", "postgres,kafka")
    assert stop.returncode == 0, stop.stderr
    assert not any(group_alive(g) for g in pgids)
    assert not list(private_layout.root.glob("*/*.pid"))


def test_port_in_use_is_one_actionable_line(private_layout):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", private_layout.kafka_port))
        squatter.listen()
        result = _cli(private_layout, "start", "--only", "kafka")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert f"port {private_layout.kafka_port}" in result.stderr and "STREAMFLOW_SANDBOX_PORT_BASE" in result.stderr


def test_not_ready_names_the_log(tmp_path):
    log = tmp_path / "svc.log"
    log.write_text("starting\nFATAL: could not bind\n")
    started = time.monotonic()
    with pytest.raises(SandboxError) as err:
        wait_until(lambda: False, 1.2, "svc", log, interval=0.05)
    assert 1.2 <= time.monotonic() - started < 10  # it waited the whole timeout, then gave up
    assert str(err.value) == f"svc did not become ready within 1s; see its log: {log} (last line: FATAL: could not bind)"


@pytest.mark.postgres
def test_seeded_warehouse_has_what_the_runbook_scenarios_need(postgres_service):
    with psycopg.connect(postgres.dsn(postgres_service, "streamflow_template")) as conn:
        span_days = conn.execute(
            "select (max(transaction_time) - min(transaction_time)) / 86400.0 from bronze.transactions").fetchone()[0]
        unpromoted_old = conn.execute(
            "select count(*) from bronze.transactions b where transaction_time < extract(epoch from now()) - 7 * 86400"
            " and not exists (select 1 from silver.transactions_enriched s where s.transaction_id = b.transaction_id)"
        ).fetchone()[0]
        promoted_share = conn.execute(
            "select (select count(*) from silver.transactions_enriched)::float / count(*) from bronze.transactions"
        ).fetchone()[0]
        rules = {r[0] for r in conn.execute("select distinct rule_id from silver.fraud_alerts")}
        unique_indexed = {r[0] for r in conn.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "join pg_index i on i.indrelid = c.oid where n.nspname = 'gold' and c.relkind = 'm' and i.indisunique")}
        views = {r[0] for r in conn.execute("select matviewname from pg_matviews where schemaname = 'gold'")}
    assert span_days >= 8.99
    assert unpromoted_old > 0
    assert promoted_share > 0.99
    assert len(rules) == 4
    assert unique_indexed and views - unique_indexed


@pytest.mark.kafka
def test_kafka_seed_leaves_the_known_lag(kafka_service):
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": kafka.bootstrap(kafka_service), "group.id": kafka.GROUP})
    try:
        parts = [TopicPartition(kafka.GROUP_TOPIC, p) for p in range(kafka.PARTITIONS)]
        committed = consumer.committed(parts, timeout=10)
        ends = [consumer.get_watermark_offsets(p, timeout=10)[1] for p in parts]
    finally:
        consumer.close()
    assert sum(e - c.offset for e, c in zip(ends, committed)) == kafka.KNOWN_LAG
