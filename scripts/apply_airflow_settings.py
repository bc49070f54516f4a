"""Apply an Astro CLI airflow_settings.yaml (connections, pools, variables) where there is no Astro CLI.

Usage: python -m scripts.apply_airflow_settings [airflow_settings.yaml]. Idempotent: entries are
created or overwritten; nothing else in the metadata database is touched.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

CONN_FIELDS = {"conn_type": "conn_type", "conn_host": "host", "conn_schema": "schema", "conn_login": "login",
               "conn_password": "password", "conn_port": "port"}


def apply(settings: dict) -> str:
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    section = settings.get("airflow") or {}
    with create_session() as session:
        for item in section.get("connections") or []:
            if item.get("conn_uri"):
                conn = Connection(conn_id=item["conn_id"], uri=item["conn_uri"])
            else:
                fields = {attr: item.get(key) for key, attr in CONN_FIELDS.items()}
                extra = item.get("conn_extra")
                conn = Connection(conn_id=item["conn_id"], extra=json.dumps(extra) if extra else None, **fields)
            session.query(Connection).filter(Connection.conn_id == conn.conn_id).delete()
            session.add(conn)
        for item in section.get("pools") or []:
            Pool.create_or_update_pool(item["pool_name"], item["pool_slot"], item.get("pool_description", ""),
                                       include_deferred=False, session=session)
        for item in section.get("variables") or []:
            Variable.set(item["variable_name"], item["variable_value"], session=session)
    return (f"applied {len(section.get('connections') or [])} connections, {len(section.get('pools') or [])} "
            f"pools, {len(section.get('variables') or [])} variables")


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "airflow_settings.yaml")
    print(apply(yaml.safe_load(path.read_text())))
