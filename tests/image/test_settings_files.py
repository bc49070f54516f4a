"""The settings files the Astro CLI applies from the host, and the compose override, say the same thing.

airflow_settings.yaml (Airflow on this machine) and airflow_settings_containers.yaml (Airflow in the
Astro CLI's containers) must name the same connections, pools and variables and differ only in where
the services are. Neither goes into the image (.dockerignore), so these checks live outside tests/dags.
"""
from __future__ import annotations

import json
import re

import pytest
import yaml

from scripts.apply_airflow_settings import to_connection
from tests.image.astro_runtime import REPO
from tests.image.image_check import dockerignore_patterns, is_ignored

DEV = yaml.safe_load((REPO / "airflow_settings.yaml").read_text())["airflow"]
CONTAINERS = yaml.safe_load((REPO / "airflow_settings_containers.yaml").read_text())["airflow"]
HOST_FROM_CONTAINERS = "host.docker.internal"
API_SERVER = ("api-server", 8080)  # the Astro CLI's compose service and port (AIRFLOW__API__PORT)


def _shape(conn) -> tuple:
    return (conn.conn_type, conn.host, conn.port, conn.schema, conn.login, conn.password,
            json.dumps(conn.extra_dejson, sort_keys=True))


def _moved_into_containers(shape: tuple) -> tuple:
    """A dev connection as containers must see it: the host's loopback becomes host.docker.internal."""
    return tuple(value.replace("127.0.0.1", HOST_FROM_CONTAINERS) if isinstance(value, str) else value
                 for value in shape)


def test_container_settings_differ_from_dev_settings_only_in_addresses():
    dev = {item["conn_id"]: to_connection(item) for item in DEV["connections"]}
    containers = {item["conn_id"]: to_connection(item) for item in CONTAINERS["connections"]}
    assert set(containers) == set(dev)
    for conn_id, conn in containers.items():
        if conn_id == "streamflow_airflow_api":
            assert (conn.host, conn.port) == API_SERVER
            assert _shape(conn)[4:] == _shape(dev[conn_id])[4:]
        else:
            assert _shape(conn) == _moved_into_containers(_shape(dev[conn_id])), conn_id
    assert "127.0.0.1" not in str(CONTAINERS) and "localhost" not in str(CONTAINERS)


def test_container_settings_keep_the_dev_pools_and_variables():
    assert CONTAINERS["pools"] == DEV["pools"]
    assert CONTAINERS["variables"] == DEV["variables"]


def test_compose_override_maps_the_host_into_every_airflow_container():
    override = yaml.safe_load((REPO / "docker-compose.override.yml").read_text())["services"]
    assert set(override) == {"scheduler", "dag-processor", "api-server", "triggerer"}
    for service, spec in override.items():
        assert f"{HOST_FROM_CONTAINERS}:host-gateway" in spec["extra_hosts"], service


@pytest.mark.parametrize("path", [".env", ".env.local", "logs/scheduler/x.log", ".sandbox/dev/postgres/data/PG_VERSION",
                                  ".venv/bin/python", "airflow_settings.yaml", "airflow_settings_containers.yaml",
                                  "sandbox/postgres.py", "plugins/streamflow_ops/__pycache__/config.cpython-311.pyc",
                                  "docker-compose.override.yml", ".git/HEAD", ".hypothesis/examples/x"])
def test_dockerignore_keeps_credentials_and_local_state_out_of_the_image(path):
    assert is_ignored(path, dockerignore_patterns())


@pytest.mark.parametrize("path", ["dags/platform_health_sweep.py", "plugins/.airflowignore",
                                  "plugins/streamflow_ops/config.py", "include/sql", "tests/dags/test_dag_integrity.py",
                                  ".astro/test_dag_integrity_default.py", "requirements.txt", "packages.txt",
                                  "pytest.ini"])
def test_dockerignore_lets_the_project_into_the_image(path):
    assert not is_ignored(path, dockerignore_patterns())


def test_every_pool_a_task_names_is_in_the_settings():
    """A task in a pool that does not exist stays scheduled forever, with only a scheduler log line."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.dags and not bag.import_errors
    defined = {pool["pool_name"] for pool in DEV.get("pools") or []} | {"default_pool"}
    for dag_id, dag in bag.dags.items():
        for task in dag.tasks:
            assert task.pool in defined, f"{dag_id}.{task.task_id} uses undefined pool '{task.pool}'"


def astro_settings_file(name: str) -> str:
    """The file `astro dev start -s NAME` really reads: astro-cli's InitSettings keeps the name up to its
    first dot and appends '.yaml' (so `-s airflow_settings.containers.yaml` read airflow_settings.yaml)."""
    return name.split(".", 1)[0] + ".yaml"


def test_every_settings_file_is_the_one_astro_reads():
    files = sorted(p.name for p in REPO.glob("airflow_settings*.y*ml"))
    assert files == ["airflow_settings.yaml", "airflow_settings_containers.yaml"]
    assert [astro_settings_file(name) for name in files] == files
    assert astro_settings_file("airflow_settings.containers.yaml") == "airflow_settings.yaml"  # the old name


def test_every_documented_settings_flag_names_a_file_astro_reads():
    """Every `-s FILE` in the docs and the settings files' own comments: FILE exists and survives the cut."""
    texts = [p.read_text() for p in [REPO / "README.md", *REPO.glob("docs/*.md"), *REPO.glob("airflow_settings*.yaml")]]
    named = {m for text in texts for m in re.findall(r"(?:-s|--settings-file)\s+`?([\w.]+\.ya?ml)", text)}
    assert named, "no `-s <settings file>` found in the docs"
    for name in named:
        assert (REPO / name).exists() and astro_settings_file(name) == name, name


def test_gitignore_keeps_credentials_and_local_airflow_state_out_of_git():
    patterns = [line.strip() for line in (REPO / ".gitignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert {".env", "airflow.db", "airflow.cfg"} <= set(patterns)


@pytest.mark.parametrize("path", ["airflow.db", "airflow.cfg"])
def test_dockerignore_keeps_a_local_airflows_state_out_of_the_image(path):
    assert is_ignored(path, dockerignore_patterns())


def test_packages_txt_names_a_client_every_runtime_debian_has():
    """`postgresql-client-15` exists only in Debian 12 (Debian 13 ships 17): the unversioned metapackage
    installs the release's client, which dumps older servers too."""
    packages = [line.strip() for line in (REPO / "packages.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert "postgresql-client" in packages
    assert not [p for p in packages if re.fullmatch(r"postgresql-client-\d+", p)]
