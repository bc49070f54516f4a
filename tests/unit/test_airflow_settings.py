"""airflow_settings.yaml says what the dev sandbox really is: same connections as sandbox/connections.py
for the dev profile, and a valid streamflow_ops_config."""
from __future__ import annotations

import json

import yaml

from sandbox import connections
from sandbox.proc import Layout
from scripts.apply_airflow_settings import to_connection
from scripts.ui import DEV_PORT_BASE, SETTINGS_FILE
from streamflow_ops.config import VARIABLE_KEY, load_config

SETTINGS = yaml.safe_load(SETTINGS_FILE.read_text())["airflow"]


def _from_env(conn_id: str, value: str):
    from airflow.models import Connection

    if value.lstrip().startswith("{"):
        return Connection.from_json(value, conn_id=conn_id)
    return Connection(conn_id=conn_id, uri=value)


def _shape(conn) -> tuple:
    return conn.conn_type, conn.host, conn.port, conn.schema, conn.login, conn.password, conn.extra_dejson


def test_connections_match_the_dev_sandbox(tmp_path):
    env = connections.airflow_env(Layout(root=tmp_path, port_base=DEV_PORT_BASE))
    in_file = {item["conn_id"]: to_connection(item) for item in SETTINGS["connections"]}
    sandbox_ids = {key.removeprefix("AIRFLOW_CONN_").lower(): value for key, value in env.items()
                   if key.startswith("AIRFLOW_CONN_")}
    assert set(sandbox_ids) <= set(in_file)
    for conn_id, value in sandbox_ids.items():
        assert _shape(in_file[conn_id]) == _shape(_from_env(conn_id, value)), conn_id
    api = in_file["streamflow_airflow_api"]
    assert (api.host, api.port) == ("127.0.0.1", DEV_PORT_BASE + 80)  # scripts/ui.py's api-server port


def test_variable_is_the_sandbox_config_and_valid():
    [variable] = [v for v in SETTINGS["variables"] if v["variable_name"] == VARIABLE_KEY]
    assert json.loads(variable["variable_value"]) == connections.SANDBOX_CONFIG
    load_config(variable["variable_value"])
