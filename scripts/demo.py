"""`make demo`: start the sandbox with its live pipeline flowing, run the maintenance window, the
verification of its backup, a restore drill, a health sweep and the weekly review (on a week of Prometheus
history), print their reports and what the pipeline wrote meanwhile, stop.

It uses its own sandbox profile (.sandbox/demo, ports 45600+) with freshly seeded data, runs each DAG
with `dag.test()` in a fresh interpreter and judges it by the run's state, never by `airflow dags test`'s
exit code (apache/airflow#73428; full logs under .sandbox/demo/logs/), prints the DAGs' `report` XComs and
stops every service it started, whatever happens.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("STREAMFLOW_SANDBOX_DIR", str(REPO / ".sandbox" / "demo"))
os.environ.setdefault("STREAMFLOW_SANDBOX_PORT_BASE", "45600")

import psycopg  # noqa: E402

from sandbox import connections, flink, kafka, monitoring, pipeline, postgres, weekly_series  # noqa: E402
from sandbox.__main__ import seed_postgres  # noqa: E402
from sandbox.proc import Layout, SandboxError  # noqa: E402

# (dag_id, conf, the task whose XCom is the report): the window for real; its pg_dump's verification right
# after it (in production the backup's asset schedules it); the Sunday restore drill of that backup; then
# a sweep that sends nothing, and the weekly review.
RUNS = [
    ("maintenance_tasks", {"dry_run": False}, "report"),
    ("postgres_backup_verify", {"dry_run": False}, "verify"),
    ("restore_drill", {"dry_run": False}, "drill_pg_dump"),
    ("platform_health_sweep", {"dry_run": True}, "summarize"),
    ("weekly_review", {"dry_run": False}, "prepare"),
]
SERVICES = (postgres, kafka, flink, monitoring)


def _airflow_env(layout: Layout) -> dict[str, str]:
    home = layout.service_dir("airflow_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    env.update(connections.airflow_env(layout))
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__FERNET_KEY": "Q8PBtMoYn6TbjCHuFmlM2U1nuHOzBsVY6TJt6RbVJgI=",
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
    })
    return env


# Runs one DAG with dag.test(). A DAG file that exposes build(deadline=...) is built without its
# Deadline Alert: on Airflow 3.3.2 dag.test() crashes on a successful DAG that has one (apache/airflow#73428).
_RUN_DAG = """
import importlib.util, json, sys
dag_id, conf = sys.argv[1], json.loads(sys.argv[2])
spec = importlib.util.spec_from_file_location(dag_id, f"dags/{dag_id}.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
# Each DAG file's @dag function is named like its dag_id.
dag = module.build(deadline=None) if hasattr(module, "build") else getattr(module, dag_id)()
sys.exit(0 if dag.test(run_conf=conf).state == "success" else 1)
"""


def _report_xcom(env: dict[str, str], dag_id: str, task_id: str) -> tuple[str, str | None]:
    """The newest run's state and report (a task's XCom, or its "report" key), from the demo's own metadata DB."""
    code = (
        "import json,sys\n"
        "from airflow.models import DagRun\n"
        "from airflow.models.xcom import XComModel\n"
        "from airflow.utils.session import create_session\n"
        "with create_session() as s:\n"
        f"    run = s.query(DagRun).filter(DagRun.dag_id=={dag_id!r}).order_by(DagRun.id.desc()).first()\n"
        f"    row = s.query(XComModel).filter(XComModel.dag_id=={dag_id!r}, XComModel.run_id==run.run_id,\n"
        f"        XComModel.task_id=={task_id!r}, XComModel.key=='return_value').first()\n"
        "    print(json.dumps({'state': str(run.state), 'report': row.value if row else None}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    report = data["report"]
    if isinstance(report, str):
        try:
            report = json.loads(report)
        except json.JSONDecodeError:
            pass
    if isinstance(report, dict) and "report" in report:
        report = report["report"]
    return data["state"], report if report is None or isinstance(report, str) else json.dumps(report, indent=2)


def _warehouse_counts(layout: Layout) -> dict[str, int]:
    with psycopg.connect(postgres.dsn(layout)) as conn:
        return dict(zip(("seeded_bronze", "live_bronze", "live_silver"), conn.execute(
            "select (select count(*) from bronze.transactions where transaction_id not like 'live-%%'),"
            " (select count(*) from bronze.transactions where transaction_id like 'live-%%'),"
            " (select count(*) from silver.transactions_enriched where transaction_id like 'live-%%')").fetchone()))


def _pipeline_line(layout: Layout, before: dict, before_stats: dict) -> str:
    """What the window deleted and what the pipeline wrote while it ran, from the warehouse itself."""
    after, stats = _warehouse_counts(layout), pipeline.stats(layout, "consumer")
    # The consumer keeps its slowest write since it started: only a new maximum happened meanwhile.
    peak, earlier = stats.get("max_write_s", 0), before_stats.get("max_write_s", 0)
    slowest = f"slowest write {peak:.3f} s" if peak > earlier else f"no write slower than {earlier:.3f} s"
    return (f"pipeline meanwhile: +{after['live_bronze'] - before['live_bronze']:,} bronze and "
            f"+{after['live_silver'] - before['live_silver']:,} silver rows, "
            f"+{stats.get('alerts', 0) - before_stats.get('alerts', 0):,} fraud alerts, "
            f"{stats.get('error_count', 0) - before_stats.get('error_count', 0)} write errors, {slowest}; "
            f"older bronze rows deleted: {before['seeded_bronze'] - after['seeded_bronze']:,}")


def main() -> int:
    layout = Layout.from_env()
    started = time.monotonic()
    failures = 0
    try:
        # A week of PVC and resource history for the weekly review, loaded before Prometheus starts; the
        # demo's Prometheus starts empty each time, so two demos' weeks never overlap.
        shutil.rmtree(monitoring.tsdb_dir(layout), ignore_errors=True)
        weekly_series.load(layout)
        for service in SERVICES:
            t0 = time.monotonic()
            service.start(layout)
            print(f"{service.status(layout)}  [{time.monotonic() - t0:.1f}s]", flush=True)
        print(f"postgres: seeded {seed_postgres(layout, fresh=True)} bronze rows", flush=True)
        pipeline.start(layout)
        print(pipeline.status(layout), flush=True)
        env = _airflow_env(layout)
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True,
                       capture_output=True)
        logs = layout.service_dir("logs")
        for dag_id, conf, report_task in RUNS:
            t0 = time.monotonic()
            before, before_stats = _warehouse_counts(layout), pipeline.stats(layout, "consumer")
            log_file = logs / f"{dag_id}.log"
            with open(log_file, "w") as log:
                rc = subprocess.run([sys.executable, "-c", _RUN_DAG, dag_id, json.dumps(conf)], cwd=REPO,
                                    env=env, stdout=log, stderr=subprocess.STDOUT).returncode
            state, report = _report_xcom(env, dag_id, report_task)
            failures += rc != 0
            print(f"\n##### {dag_id} {json.dumps(conf)}: run {state} in {time.monotonic() - t0:.1f}s "
                  f"(full log: {log_file})")
            print(report or "(no report was produced: see the log)", flush=True)
            print(_pipeline_line(layout, before, before_stats), flush=True)
    except SandboxError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        failures += 1
    finally:
        pipeline.stop(layout)
        for service in reversed(SERVICES):
            service.stop(layout)
        print(f"\nsandbox stopped ({pipeline.status(layout)}, {', '.join(s.status(layout) for s in SERVICES)}); "
              f"demo took {time.monotonic() - started:.0f}s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
