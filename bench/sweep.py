"""Wall time of one platform health sweep (families in parallel, as the DAG's tasks run, then persist,
summary and alert evaluation) on the healthy sandbox, and with Kafka and Flink unreachable.

Unreachable two ways: ports that refuse connections, and ports that accept TCP but never answer
(the worse case: only timeouts end the wait). Goals: healthy <= 30 s, unreachable <= 60 s.
Starts the sandbox services it needs and stops only those it started.
"""
from __future__ import annotations

import json
import os
import platform
import socket
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

RESULTS = Path(__file__).parent / "results"
GOALS_S = {"healthy": 30.0, "kafka+flink refused": 60.0, "kafka+flink silent": 60.0}


@contextmanager
def silent_port() -> Iterator[int]:
    """A listener that completes TCP handshakes (backlog) but never reads or answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unreachable_env(port: int) -> dict[str, str]:
    return {
        "AIRFLOW_CONN_STREAMFLOW_KAFKA": json.dumps({"conn_type": "kafka", "extra": {
            "bootstrap.servers": f"127.0.0.1:{port}", "socket.timeout.ms": 5000}}),
        "AIRFLOW_CONN_STREAMFLOW_FLINK": json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": port,
                                                     "schema": "http"}),
    }


def timed_sweep(name: str, config) -> dict:
    from streamflow_ops.sweep import run_sweep

    started = time.perf_counter()
    summary, outcome = run_sweep(config, f"bench__{name.replace(' ', '_')}__{int(time.time())}", dry_run=True)
    elapsed = time.perf_counter() - started
    return {"scenario": name, "seconds": round(elapsed, 2), "goal_s": GOALS_S[name],
            "met": elapsed <= GOALS_S[name], "status": summary["status"], "counts": summary["counts"],
            "changes": len(outcome.changes),
            "problems": [f"{r['status']} {r['check_name']}{'[' + r['subject'] + ']' if r['subject'] else ''}"
                         for r in summary["results"] if r["status"] in ("critical", "warning")]}


def take_nightly_backup(config) -> None:
    """A real verified backup, as the nightly window leaves one: the healthy sandbox has a recent backup."""
    from streamflow_ops.backup.request import check_file_backup_ready, resolve_request
    from streamflow_ops.backup.runner import run_file_backup
    from streamflow_ops.store import Actor
    from streamflow_ops.connections import warehouse_connection

    request = resolve_request({}, config, kubernetes_defined=False)
    with warehouse_connection(config.warehouse) as conn:
        dump_schemas = check_file_backup_ready(request, config, conn)
    run_file_backup(config, request, dump_schemas, Actor("bench", "bench_sweep", "backup"))


def main() -> None:

    from sandbox import connections, flink, kafka, monitoring, postgres
    from sandbox.__main__ import seed_postgres
    from sandbox.proc import Layout
    from streamflow_ops.config import load_config

    layout = Layout.from_env()
    # monitoring: the sweep's connections include the sandbox's Prometheus, Alertmanager and Pushgateway
    services = (postgres, kafka, flink, monitoring)
    started = [m for m in services if not m.status(layout).split(":", 1)[1].strip().startswith("running")]
    for module in services:
        module.start(layout)
    saved = dict(os.environ)
    rows = []
    try:
        os.environ.update(connections.airflow_env(layout))
        seed_postgres(layout)  # seeds a new sandbox, or makes an existing one's pipeline look live
        config = load_config(connections.sandbox_config(layout))
        take_nightly_backup(config)
        rows.append(timed_sweep("healthy", config))
        os.environ.update(unreachable_env(closed_port()))
        rows.append(timed_sweep("kafka+flink refused", config))
        with silent_port() as port:
            os.environ.update(unreachable_env(port))
            rows.append(timed_sweep("kafka+flink silent", config))
    finally:
        os.environ.clear()
        os.environ.update(saved)
        for module in reversed(started):
            module.stop(layout)
    write(rows)


def write(rows: list[dict]) -> None:
    RESULTS.mkdir(exist_ok=True)
    meta = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "python": platform.python_version(),
            "cpus": os.cpu_count(), "note": "one run each; wall time of run_sweep (parallel families, dry run)"}
    (RESULTS / "sweep.json").write_text(json.dumps({"meta": meta, "runs": rows}, indent=2))
    lines = ["# platform_health_sweep wall time", "",
             f"{meta['when']}, Python {meta['python']}, {meta['cpus']} CPUs (shared). {meta['note']}.", "",
             "| scenario | seconds | goal | met | sweep status | critical / warning / unknown |",
             "|---|---:|---:|---|---|---|"]
    lines += [f"| {r['scenario']} | {r['seconds']:.2f} | <= {r['goal_s']:.0f} | {'yes' if r['met'] else 'NO'} | "
              f"{r['status']} | {r['counts']['critical']} / {r['counts']['warning']} / {r['counts']['unknown']} |"
              for r in rows]
    lines += ["", "Warnings and criticals per scenario (expected: the faults injected, and nothing else):"]
    lines += [f"- {r['scenario']}: {', '.join(r['problems']) or 'none'}" for r in rows]
    (RESULTS / "sweep.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
