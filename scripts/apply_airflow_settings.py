"""Apply an Astro CLI airflow_settings.yaml (connections, pools, variables) where there is no Astro CLI.

Usage: python -m scripts.apply_airflow_settings [airflow_settings.yaml] [--no-connections].
Idempotent: entries are created or overwritten; nothing else in the metadata database is touched.
For the sandbox's own Airflow only (`make ui`, `make celery`): it overwrites connections and the
`streamflow_ops_config` Variable with the sandbox's, so never point it at a shared or production Airflow
(docs/deploy_astro.md).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

CONN_FIELDS = {"conn_type": "conn_type", "conn_host": "host", "conn_schema": "schema", "conn_login": "login",
               "conn_password": "password", "conn_port": "port"}


def to_connection(item: dict):
    """One `airflow.connections[]` entry as an Airflow Connection (conn_extra is a mapping in the file)."""
    from airflow.models import Connection

    if item.get("conn_uri"):
        return Connection(conn_id=item["conn_id"], uri=item["conn_uri"])
    fields = {attr: item.get(key) for key, attr in CONN_FIELDS.items()}
    extra = item.get("conn_extra")
    return Connection(conn_id=item["conn_id"], extra=json.dumps(extra) if extra else None, **fields)


def apply(settings: dict, connections: bool = True) -> str:
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    section = settings.get("airflow") or {}
    conns = (section.get("connections") or []) if connections else []
    pools, variables = section.get("pools") or [], section.get("variables") or []
    with create_session() as session:
        for item in conns:
            conn = to_connection(item)
            session.query(Connection).filter(Connection.conn_id == conn.conn_id).delete()
            session.add(conn)
        for item in pools:
            Pool.create_or_update_pool(item["pool_name"], item["pool_slot"], item.get("pool_description", ""),
                                       include_deferred=False, session=session)
        for item in variables:
            Variable.set(item["variable_name"], item["variable_value"], session=session)
    return f"applied {len(conns)} connections, {len(pools)} pools, {len(variables)} variables"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m scripts.apply_airflow_settings", description=__doc__)
    parser.add_argument("path", nargs="?", default="airflow_settings.yaml", type=Path)
    parser.add_argument("--no-connections", action="store_true",
                        help="pools and variables only (the connections come from the environment)")
    args = parser.parse_args()
    print(apply(yaml.safe_load(args.path.read_text()), connections=not args.no_connections))
