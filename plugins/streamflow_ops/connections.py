"""Whether an Airflow connection is defined: a family without one reports `skipped`, never `ok`."""
from __future__ import annotations


def connection_defined(conn_id: str) -> bool:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return False
    return True
