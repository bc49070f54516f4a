"""Wall time of the health sweep and the nightly window on a real CeleryExecutor: one worker vs two.

Each configuration is its own cluster (sandbox/celery.py: Redis, fresh metadata database, scheduler,
dag-processor, triggerer, api-server, 1 or 2 workers of concurrency 2) on its own copy of the seeded
warehouse, so both windows delete the same rows. Runs are triggered and timed through the REST API
(run start_date -> end_date). Scenarios: the sweep on the healthy sandbox; the sweep with Kafka and
Flink silent (ports that accept TCP and never answer: every family then waits on I/O until its
timeout); the nightly window. Goal (issue 17): two workers >= 1.5x faster than one on the I/O-bound
sweep. Starts the sandbox services it needs and stops what it started.
"""
from __future__ import annotations

import json
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.sweep import silent_port, unreachable_env
from sandbox import flink, kafka, postgres
from sandbox.celery import CeleryCluster
from sandbox.proc import Layout

RESULTS = Path(__file__).parent / "results"
SWEEP_RUNS = 3
GOAL_SPEEDUP = 1.5


def _warehouse_copy(layout: Layout, name: str, create: bool) -> str:
    """Create (or drop) a copy of the profile's seeded warehouse for one configuration."""
    import psycopg

    with psycopg.connect(postgres.dsn(layout, "postgres"), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        if create:
            conn.execute(f'create database "{name}" template "{postgres.DATABASE}"')
    return postgres.dsn(layout, name)


def _run(api, dag_id: str, conf: dict, timeout: float = 600) -> dict:
    """Trigger, wait, and return the run's wall time and where its tasks ran."""
    while api.get(f"/dags/{dag_id}").status_code != 200:
        time.sleep(0.5)
    response = api.post(f"/dags/{dag_id}/dagRuns",
                        json={"conf": conf, "logical_date": datetime.now(timezone.utc).isoformat()})
    response.raise_for_status()
    run_id = response.json()["dag_run_id"]
    deadline = time.monotonic() + timeout
    while (run := api.get(f"/dags/{dag_id}/dagRuns/{run_id}").json())["state"] not in ("success", "failed"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{dag_id} {run_id} did not finish within {timeout:.0f}s")
        time.sleep(0.5)
    tis = api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100}).json()["task_instances"]
    wall = (datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])).total_seconds()
    hosts: dict[str, int] = {}
    for ti in tis:
        if ti["hostname"]:
            hosts[ti["hostname"]] = hosts.get(ti["hostname"], 0) + 1
    return {"state": run["state"], "wall_s": round(wall, 1), "tasks_per_worker": hosts}


def measure(layout: Layout, workers: tuple[str, ...], scenario: str) -> dict:
    copy = f"bench_dist_{len(workers)}_{scenario}"
    warehouse = _warehouse_copy(layout, copy, create=True)
    extra = {"AIRFLOW_CONN_STREAMFLOW_POSTGRES": warehouse, "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
             "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}
    with silent_port() as port:
        if scenario == "silent":
            extra.update(unreachable_env(port))
        cluster = CeleryCluster(layout, workers=workers, extra_env=extra, meta_database="airflow_meta_bench")
        started = time.monotonic()
        try:
            cluster.start(fresh=True)
            start_s = time.monotonic() - started
            with cluster.client() as api:
                sweeps = [_run(api, "platform_health_sweep", {"dry_run": True}) for _ in range(SWEEP_RUNS)]
                window = _run(api, "maintenance_tasks", {}) if scenario == "healthy" else None
        finally:
            cluster.stop()
            cluster.drop_meta_database()
            _warehouse_copy(layout, copy, create=False)
    return {"workers": len(workers), "scenario": scenario, "cluster_start_s": round(start_s, 1),
            "sweeps": sweeps, "sweep_median_s": statistics.median(s["wall_s"] for s in sweeps), "window": window}


def main() -> None:
    layout = Layout.from_env(default_dir=".sandbox/bench", default_base=45700)
    started = [m for m in (postgres, kafka, flink)
               if not m.status(layout).split(":", 1)[1].strip().startswith("running")]
    for module in (postgres, kafka, flink):
        module.start(layout)
    from sandbox.__main__ import seed_postgres

    seed_postgres(layout)
    try:
        rows = [measure(layout, w, s) for s in ("healthy", "silent") for w in (("w1",), ("w1", "w2"))]
    finally:
        for module in reversed(started):
            module.stop(layout)
    write(rows)


def write(rows: list[dict]) -> None:
    RESULTS.mkdir(exist_ok=True)
    by = {(r["scenario"], r["workers"]): r for r in rows}
    speedups = {s: round(by[(s, 1)]["sweep_median_s"] / by[(s, 2)]["sweep_median_s"], 2)
                for s in ("healthy", "silent")}
    window_speedup = round(by[("healthy", 1)]["window"]["wall_s"] / by[("healthy", 2)]["window"]["wall_s"], 2)
    data = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
            "rows": rows, "sweep_speedup": speedups, "window_speedup": window_speedup,
            "goal_sweep_speedup_io_bound": GOAL_SPEEDUP}
    (RESULTS / "distributed.json").write_text(json.dumps(data, indent=2) + "\n")
    lines = [
        "# Distributed Airflow: one Celery worker vs two",
        "",
        "`python -m bench distributed` (profile `.sandbox/bench`). Each configuration is a fresh cluster from",
        "`sandbox/celery.py` (CeleryExecutor, Redis, metadata on PostgreSQL, workers of concurrency 2, parallelism 8)",
        "on its own copy of the seeded warehouse. Wall time = the run's start_date -> end_date from the REST API.",
        f"Sweep: median of {SWEEP_RUNS} dry runs. Silent: Kafka and Flink accept TCP and never answer.",
        f"Machine: {data['machine']}, 2 shared cores; measured {data['when']}.",
        "",
        "| scenario | workers | cluster start | sweep median (runs) | window | tasks per worker (last sweep; window) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        window = r["window"]
        window_cell = f"{window['wall_s']} s ({window['state']})" if window else "-"
        sweeps = ", ".join(str(s["wall_s"]) for s in r["sweeps"])
        lines.append(
            f"| {r['scenario']} | {r['workers']} | {r['cluster_start_s']} s | {r['sweep_median_s']} s ({sweeps}) | "
            f"{window_cell} | {r['sweeps'][-1]['tasks_per_worker']}; {window['tasks_per_worker'] if window else '-'} |")
    met = "met" if speedups["silent"] >= GOAL_SPEEDUP else "**not met**"
    lines += [
        "",
        (f"- Sweep speed-up, two workers over one: healthy {speedups['healthy']}x, I/O-bound (silent) "
         f"{speedups['silent']}x (goal >= {GOAL_SPEEDUP}x on the I/O-bound sweep: {met})."),
        (f"- Window speed-up: {window_speedup}x (one run per configuration on a machine shared with other "
         "work: the steps run one after another, so the gain is in task pick-up, not in parallel steps)."),
        ("- In the silent scenario only the Kafka and Flink families wait on I/O (until their budgets); the "
         "other five answer at once. One worker's two slots already run those two waits side by side, so a "
         "second worker saves only the time the five fast families queue behind them: the issue's 1.5x "
         "assumes every family waits on I/O, which this sandbox cannot produce (PostgreSQL is local)."),
    ]
    (RESULTS / "distributed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
