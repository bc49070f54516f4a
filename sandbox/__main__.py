"""python -m sandbox {start,stop,status,env,seed} [--only postgres,kafka,flink]"""
from __future__ import annotations

import argparse
import importlib
import shlex
import sys

from sandbox.connections import airflow_env
from sandbox.proc import Layout, SandboxError

SERVICES = ("postgres", "kafka", "flink")


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status", "env", "seed"])
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
        if args.command == "start":
            for name in services:
                _module(name).start(layout)
                print(_module(name).status(layout))
            if "postgres" in services:
                print(f"postgres: warehouse seeded (+{seed_postgres(layout)} bronze rows)")
        elif args.command == "stop":
            for name in reversed(services):
                _module(name).stop(layout)
                print(_module(name).status(layout))
        elif args.command == "status":
            for name in services:
                print(_module(name).status(layout))
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
