"""python -m sandbox {start,stop,status,env,seed} [--only postgres,kafka,flink,monitoring] [--live] [--celery]

python -m sandbox pipeline {pause,resume,slow,stop-producer,start-producer} [--rate N]: faults for the live pipeline
"""
from __future__ import annotations

import argparse
import importlib
import shlex
import sys

from sandbox import pipeline
from sandbox.connections import airflow_env
from sandbox.proc import Layout, SandboxError

SERVICES = ("postgres", "kafka", "flink", "monitoring")
PIPELINE_ACTIONS = ("pause", "resume", "slow", "stop-producer", "start-producer")


def _module(name: str):
    return importlib.import_module(f"sandbox.{name}")


def seed_postgres(layout: Layout, fresh: bool = False) -> int:
    import psycopg

    from sandbox import postgres, seed

    with psycopg.connect(postgres.dsn(layout), autocommit=True) as conn:
        if fresh:
            conn.execute("drop schema if exists bronze, silver, gold, ops cascade")
        seeded = conn.execute("select to_regclass('bronze.transactions') is not null").fetchone()[0]
        if seeded:
            return seed.top_up(conn)
        return seed.seed_warehouse(conn)


def _pipeline_control(parser: argparse.ArgumentParser, layout: Layout, args) -> None:
    if args.action is None:
        parser.error("pipeline needs an action: " + ", ".join(PIPELINE_ACTIONS))
    if args.action == "slow" and not args.rate:
        parser.error("pipeline slow needs --rate <events/s> (below the producer's rate)")
    {"pause": pipeline.pause, "resume": pipeline.resume, "slow": lambda lay: pipeline.slow(lay, args.rate),
     "stop-producer": pipeline.stop_producer, "start-producer": pipeline.start_producer}[args.action](layout)
    print(pipeline.status(layout))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status", "env", "seed", "pipeline"])
    parser.add_argument("action", nargs="?", choices=PIPELINE_ACTIONS,
                        help="pipeline: pause/resume the consumer, slow it to --rate events/s, stop/start the producer")
    parser.add_argument("--live", action="store_true",
                        help="start: also run the live pipeline (producer + consumer, STREAMFLOW_SANDBOX_RATE events/s)")
    parser.add_argument("--rate", type=float, help="start --live: events/s; pipeline slow: the consumer's events/s")
    parser.add_argument("--celery", action="store_true",
                        help="start/stop/status: also a distributed Airflow (CeleryExecutor, Redis, two workers)")
    parser.add_argument("--for-containers", action="store_true",
                        help="start: bind 0.0.0.0 so Airflow in containers (astro dev start) reaches the services")
    parser.add_argument("--advertise-host",
                        help="start --for-containers: the address Kafka advertises (default: this machine's IPv4)")
    parser.add_argument("--only", default=",".join(SERVICES),
                        help="comma-separated subset of: " + ", ".join(SERVICES))
    parser.add_argument("--fresh", action="store_true", help="seed: drop and re-create the warehouse data")
    args = parser.parse_args(argv)
    services = [s for s in args.only.split(",") if s]
    unknown = set(services) - set(SERVICES)
    if unknown:
        parser.error(f"unknown service(s): {', '.join(sorted(unknown))}")
    layout = Layout.from_env()
    try:
        if args.for_containers:
            layout = layout.for_containers(args.advertise_host)
        if args.command == "start":
            layout.reserve_ports()  # the whole profile, before any service binds (or loses) one
            for name in services:
                if name == "monitoring" and _module("weekly_series").load_once(layout):
                    print("monitoring: a week of PVC and resource history loaded (sandbox/weekly_series.py)")
                _module(name).start(layout)
                print(_module(name).status(layout))
            if "postgres" in services:
                print(f"postgres: warehouse seeded (+{seed_postgres(layout)} bronze rows)")
            if args.live:
                pipeline.start(layout, rate=args.rate)
                print(pipeline.status(layout))
            if args.celery:
                print(_module("celery").start(layout).status())
        elif args.command == "stop":
            if args.celery:
                _module("celery").stop(layout)
                print(_module("celery").status(layout))
            if pipeline.stop(layout):
                print(pipeline.status(layout))
            for name in reversed(services):
                _module(name).stop(layout)
                print(_module(name).status(layout))
        elif args.command == "status":
            for name in services:
                print(_module(name).status(layout))
            print(pipeline.status(layout))
            if args.celery:
                print(_module("celery").status(layout))
        elif args.command == "pipeline":
            _pipeline_control(parser, layout, args)
        elif args.command == "seed":
            print(f"postgres: +{seed_postgres(layout, fresh=args.fresh)} bronze rows")
        else:
            for key, value in airflow_env(layout).items():
                print(f"export {key}={shlex.quote(value)}")
    except SandboxError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
