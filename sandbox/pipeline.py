"""A live pipeline for the sandbox: card transactions flow while the window and the sweep run.

Two processes, each in its own process group with a pid file under `<profile>/pipeline/`:
- the producer (the runbook's generate_events.py role) writes JSON transactions to transactions.raw at
  `rate` events/s, one message per request (Tansu miscounts batched produces);
- the consumer (FraudDetectionJob's role) reads them as group flink-fraud-detector with assign() (a
  group join is slow on Tansu, and Flink's source assigns too), writes bronze, then silver and the
  fraud alerts, each batch in its own short transaction under lock_timeout, and commits its offsets
  every `commit_interval_s` like Flink's checkpoints: lag moves in a sawtooth.

The consumer records every write's latency and every error in `consumer.json`, so a test can prove
the window never made the writer wait or fail. Faults the runbook troubleshoots are injected through
`control.json` (pause, slow) or by stopping the producer's group (an idle topic).

`python -m sandbox.pipeline {producer,consumer}` is what the spawned processes run.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

from sandbox import kafka, postgres
from sandbox.proc import (
    REPO,
    Layout,
    SandboxError,
    running_group,
    spawn,
    stop_group,
    wait_until,
)

TOPIC = kafka.GROUP_TOPIC
GROUP = kafka.GROUP
FRAUD_SCORE_THRESHOLD = 0.7  # BusinessConfig.fraud_score_threshold's default
RULES = ("velocity_check", "amount_threshold", "geo_anomaly", "blacklist_match")
CITIES = ("Berlin", "Paris", "Madrid", "Rome", "Lisbon")


def default_rate() -> float:
    return float(os.environ.get("STREAMFLOW_SANDBOX_RATE", "20"))


@dataclass(frozen=True)
class Settings:
    """What both processes need; written once by start()."""

    dsn: str
    bootstrap: str
    rate: float
    commit_interval_s: float = 3.0
    lock_timeout_s: float = 5.0  # RetentionConfig.lock_timeout_s: the writer never waits longer than the window
    batch_max: int = 50


@dataclass(frozen=True)
class Control:
    """The consumer's injected faults: paused (reads and commits nothing) or slowed (seconds per event)."""

    paused: bool = False
    delay_per_event_s: float = 0.0


class Files:
    def __init__(self, layout: Layout):
        self.dir = layout.service_dir("pipeline")
        self.settings = self.dir / "settings.json"
        self.control = self.dir / "control.json"

    def pid(self, role: str) -> Path:
        return self.dir / f"{role}.pid"

    def log(self, role: str) -> Path:
        return self.dir / f"{role}.log"

    def stats(self, role: str) -> Path:
        return self.dir / f"{role}.json"


def _write_json(path: Path, data: dict) -> None:
    """Atomic replace: a reader never sees half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


# --- control (the parent side) ---------------------------------------------------------------------
def start(layout: Layout, dsn: str | None = None, rate: float | None = None, timeout: float = 30) -> None:
    """Start producer and consumer (idempotent); wait until the consumer has written to silver."""
    files = Files(layout)
    settings = Settings(dsn=dsn or postgres.dsn(layout), bootstrap=kafka.bootstrap(layout),
                        rate=rate if rate is not None else default_rate())
    if running_group(files.pid("consumer")) is None:
        _write_json(files.settings, asdict(settings))
        _write_json(files.control, asdict(Control()))
        files.stats("consumer").unlink(missing_ok=True)
        _spawn(files, "consumer")
    start_producer(layout)
    wait_until(lambda: stats(layout, "consumer").get("silver_rows", 0) > 0, timeout, "pipeline consumer",
               files.log("consumer"), files.pid("consumer"))


def _spawn(files: Files, role: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    spawn([sys.executable, "-m", "sandbox.pipeline", role, str(files.dir)], files.pid(role), files.log(role),
          env=env, cwd=REPO)


def start_producer(layout: Layout) -> None:
    files = Files(layout)
    if not files.settings.exists():
        raise SandboxError("pipeline: not started; run `python -m sandbox start --live`")
    if running_group(files.pid("producer")) is None:
        _spawn(files, "producer")


def stop_producer(layout: Layout) -> bool:
    return stop_group(Files(layout).pid("producer"), grace=10)


def stop(layout: Layout) -> bool:
    files = Files(layout)
    was = stop_producer(layout)
    return stop_group(files.pid("consumer"), grace=10) or was


def set_control(layout: Layout, paused: bool = False, delay_per_event_s: float = 0.0) -> Control:
    control = Control(paused=paused, delay_per_event_s=delay_per_event_s)
    _write_json(Files(layout).control, asdict(control))
    return control


def pause(layout: Layout) -> Control:
    return set_control(layout, paused=True)


def resume(layout: Layout) -> Control:
    return set_control(layout)


def slow(layout: Layout, events_per_s: float) -> Control:
    """The consumer keeps consuming, at most events_per_s: below the producer's rate, lag grows slowly."""
    return set_control(layout, delay_per_event_s=1.0 / events_per_s)


def stats(layout: Layout, role: str) -> dict:
    return _read_json(Files(layout).stats(role))


def lag(layout: Layout) -> int | None:
    """The group's lag on transactions.raw (log end minus committed), None before any commit."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": kafka.bootstrap(layout), "group.id": GROUP,
                         "enable.auto.commit": False})
    try:
        parts = [TopicPartition(TOPIC, p) for p in range(kafka.PARTITIONS)]
        committed = consumer.committed(parts, timeout=5)
        ends = [consumer.get_watermark_offsets(tp, timeout=5)[1] for tp in parts]
    finally:
        consumer.close()
    if all(c.offset < 0 for c in committed):
        return None
    return sum(max(0, end - c.offset) for end, c in zip(ends, committed) if c.offset >= 0)


def status(layout: Layout) -> str:
    files = Files(layout)
    producer, consumer = running_group(files.pid("producer")), running_group(files.pid("consumer"))
    if producer is None and consumer is None:
        return "pipeline: stopped"
    control = Control(**_read_json(files.control))
    p, c = stats(layout, "producer"), stats(layout, "consumer")
    mode = "paused" if control.paused else (f"slowed to {1 / control.delay_per_event_s:g}/s"
                                            if control.delay_per_event_s else "running")
    lines = [
        f"pipeline: producer {'running' if producer else 'stopped'} ({p.get('rate_per_s', 0):.1f} events/s, "
        f"{p.get('produced', 0):,} produced), consumer {mode if consumer else 'stopped'} "
        f"({c.get('rate_per_s', 0):.1f} events/s, {c.get('silver_rows', 0):,} silver rows, "
        f"{c.get('error_count', 0)} write errors, slowest write {c.get('max_write_s', 0):.3f} s)",
    ]
    try:
        lines.append(f"pipeline: lag of {GROUP} on {TOPIC}: {lag(layout)}")
    except Exception as exc:  # noqa: BLE001 - status reports, it does not fail
        lines.append(f"pipeline: lag unknown ({exc})")
    try:
        newest = _newest_silver(Settings(**_read_json(files.settings)).dsn)
        lines.append(f"pipeline: newest silver row {newest}")
    except Exception as exc:  # noqa: BLE001
        lines.append(f"pipeline: newest silver row unknown ({exc})")
    return "\n".join(lines)


def _newest_silver(dsn: str) -> str:
    import psycopg

    with psycopg.connect(dsn, connect_timeout=3) as conn:
        row = conn.execute("select transaction_id, to_timestamp(transaction_time), "
                           "round(extract(epoch from now()) - transaction_time) "
                           "from silver.transactions_enriched order by transaction_time desc limit 1").fetchone()
    return "none" if row is None else f"{row[0]} at {row[1]:%Y-%m-%d %H:%M:%S %Z} ({row[2]:.0f} s old)"


# --- the processes -----------------------------------------------------------------------------------
class _Stopping:
    """SIGTERM/SIGINT end the loop at the next iteration (a clean flush/commit), not mid-write."""

    def __init__(self):
        self.requested = False
        signal.signal(signal.SIGTERM, self._set)
        signal.signal(signal.SIGINT, self._set)

    def _set(self, *_):
        self.requested = True


def make_event(seq: int, now: float, tag: str) -> dict:
    """Pure: one card transaction, a row of bronze.transactions."""
    return {"transaction_id": f"live-{tag}-{seq}", "customer_id": f"c-{seq * 7 % 5000}",
            "merchant_id": f"m-{seq % 300}", "amount": round(5 + (seq * 7919) % 50000 / 100.0, 2),
            "currency": "EUR", "location": CITIES[seq % len(CITIES)], "transaction_time": int(now),
            "payload": {"channel": ("web", "pos", "app")[seq % 3]}}


def fraud_score(transaction_id: str) -> float:
    """Pure and deterministic: 1 in 40 transactions scores >= 0.7, the rest below."""
    h = zlib.crc32(transaction_id.encode())
    return round(0.7 + (h % 30) / 100, 3) if h % 40 == 0 else round((h % 690) / 1000, 3)


def run_producer(folder: Path) -> None:
    from confluent_kafka import Producer

    files_dir = Path(folder)
    settings = Settings(**_read_json(files_dir / "settings.json"))
    stopping = _Stopping()
    producer = Producer({"bootstrap.servers": settings.bootstrap, "batch.num.messages": 1, "linger.ms": 0})
    tag, seq, started = f"{int(time.time())}{os.getpid()}", 0, time.monotonic()
    last_stats, last_seq = started, 0
    while not stopping.requested:
        due = started + seq / settings.rate
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, 0.5))
            continue
        event = make_event(seq, time.time(), tag)
        producer.produce(TOPIC, key=event["customer_id"], value=json.dumps(event).encode(),
                         partition=seq % kafka.PARTITIONS)
        producer.poll(0)
        seq += 1
        if time.monotonic() - last_stats >= 1:
            rate = (seq - last_seq) / (time.monotonic() - last_stats)
            last_stats, last_seq = time.monotonic(), seq
            _write_json(files_dir / "producer.json", {"produced": seq, "rate_per_s": rate, "at": time.time()})
    producer.flush(10)
    _write_json(files_dir / "producer.json", {"produced": seq, "rate_per_s": 0.0, "at": time.time()})


class _Writer:
    """Bronze, then silver and alerts, each batch in its own short transaction; latencies and errors kept."""

    def __init__(self, settings: Settings):
        import psycopg

        self.conn = psycopg.connect(settings.dsn, autocommit=True, application_name="sandbox-pipeline-consumer")
        self.conn.execute(f"set lock_timeout = '{int(settings.lock_timeout_s * 1000)}ms'")
        self.stats = {"bronze_rows": 0, "silver_rows": 0, "alerts": 0, "writes": 0, "error_count": 0,
                      "errors": [], "max_write_s": 0.0, "max_write_at": None}

    def _timed(self, statement_rows: list[tuple[str, list]]) -> None:
        started = time.monotonic()
        with self.conn.transaction(), self.conn.cursor() as cur:
            for statement, rows in statement_rows:
                if rows:
                    cur.executemany(statement, rows)
        elapsed = time.monotonic() - started
        self.stats["writes"] += 1
        if elapsed > self.stats["max_write_s"]:
            self.stats["max_write_s"], self.stats["max_write_at"] = round(elapsed, 4), time.time()

    def write(self, events: list[dict]) -> None:
        """Retries a failed batch until it lands: the error is recorded, no event is lost."""
        bronze = [(e["transaction_id"], e["customer_id"], e["merchant_id"], e["amount"], e["currency"],
                   e["location"], e["transaction_time"], json.dumps(e["payload"])) for e in events]
        scored = [(e, fraud_score(e["transaction_id"])) for e in events]
        silver = [(e["transaction_id"], e["customer_id"], e["amount"], s, e["transaction_time"]) for e, s in scored]
        alerts = [(e["transaction_id"], e["customer_id"], RULES[zlib.crc32(e["customer_id"].encode()) % 4], s)
                  for e, s in scored if s >= FRAUD_SCORE_THRESHOLD]
        for step in (
            [("insert into bronze.transactions (transaction_id, customer_id, merchant_id, amount, currency, "
              "location, transaction_time, payload) values (%s, %s, %s, %s, %s, %s, %s, %s) "
              "on conflict do nothing", bronze)],
            [("insert into silver.transactions_enriched (transaction_id, customer_id, amount, fraud_score, "
              "transaction_time, enriched_at) values (%s, %s, %s, %s, %s, now()) on conflict do nothing", silver),
             ("insert into silver.fraud_alerts (transaction_id, customer_id, rule_id, fraud_score, created_at) "
              "values (%s, %s, %s, %s, now())", alerts)],
        ):
            while True:
                try:
                    self._timed(step)
                    break
                except Exception as exc:  # noqa: BLE001 - recorded for the tests, then retried
                    self.stats["error_count"] += 1
                    self.stats["errors"] = (self.stats["errors"] + [f"{time.time():.3f} {exc}"])[-20:]
                    time.sleep(0.5)
        self.stats["bronze_rows"] += len(bronze)
        self.stats["silver_rows"] += len(silver)
        self.stats["alerts"] += len(alerts)


def run_consumer(folder: Path) -> None:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    files_dir = Path(folder)
    settings = Settings(**_read_json(files_dir / "settings.json"))
    stopping = _Stopping()
    consumer = Consumer({"bootstrap.servers": settings.bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    parts = [TopicPartition(TOPIC, p) for p in range(kafka.PARTITIONS)]
    committed = consumer.committed(parts, timeout=10)
    consumer.assign([TopicPartition(TOPIC, c.partition, c.offset if c.offset >= 0 else OFFSET_BEGINNING)
                     for c in committed])
    writer = _Writer(settings)
    positions: dict[int, int] = {}
    consumed, commits, last_consumed = 0, 0, 0
    last_commit = last_stats = time.monotonic()
    control, control_mtime = Control(), None

    def commit() -> None:
        nonlocal commits
        if positions:
            consumer.commit(offsets=[TopicPartition(TOPIC, p, o) for p, o in positions.items()], asynchronous=False)
            commits += 1

    while not stopping.requested:
        mtime = (files_dir / "control.json").stat().st_mtime_ns
        if mtime != control_mtime:
            control, control_mtime = Control(**_read_json(files_dir / "control.json")), mtime
        if control.paused:
            time.sleep(0.2)
        else:
            # Slowed: one event at a time, so a resume takes effect within one event's delay.
            messages = consumer.consume(num_messages=1 if control.delay_per_event_s else settings.batch_max,
                                        timeout=0.5)
            events = []
            for message in messages:
                if message.error():
                    continue
                try:
                    event = json.loads(message.value())
                except ValueError:
                    event = None
                if isinstance(event, dict) and "transaction_id" in event:
                    events.append(event)  # the static seed's messages are not transactions: skipped
                positions[message.partition()] = message.offset() + 1
            if events:
                writer.write(events)
            consumed += len(messages)
            if control.delay_per_event_s and messages:
                time.sleep(control.delay_per_event_s * len(messages))
            if time.monotonic() - last_commit >= settings.commit_interval_s:
                commit()
                last_commit = time.monotonic()
        if time.monotonic() - last_stats >= 1:
            rate = (consumed - last_consumed) / (time.monotonic() - last_stats)
            last_stats, last_consumed = time.monotonic(), consumed
            _write_json(files_dir / "consumer.json",
                        {**writer.stats, "consumed": consumed, "commits": commits, "paused": control.paused,
                         "rate_per_s": rate, "at": time.time()})
    commit()
    _write_json(files_dir / "consumer.json", {**writer.stats, "consumed": consumed, "commits": commits,
                                              "paused": control.paused, "rate_per_s": 0.0, "at": time.time()})
    consumer.close()


if __name__ == "__main__":
    role, folder = sys.argv[1], Path(sys.argv[2])
    {"producer": run_producer, "consumer": run_consumer}[role](folder)
