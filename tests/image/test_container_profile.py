"""`python -m sandbox start --for-containers`: services Airflow in containers can reach.

Containers reach the host as host.docker.internal, never as 127.0.0.1, so the services must listen on
every interface, and Kafka must advertise an address that both the containers and this machine reach
(a client bootstraps, then connects to the advertised address). Each test uses its own ports next to
the session's profile (base + 3 / + 4: PostgreSQL base+35/36, Kafka base+95/96) and stops what it started.

Test traffic stays on loopback: "every interface" is tested through the alias 127.0.0.2, which a service
bound to 0.0.0.0 answers and one bound to 127.0.0.1 does not; never through the machine's network address.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import psycopg
import yaml
from confluent_kafka.admin import AdminClient

from sandbox import flink, kafka, postgres
from sandbox.proc import Layout
from tests.image.astro_runtime import REPO


ALIAS = "127.0.0.2"  # another loopback address: reached only by a service that listens on every interface


def _reachable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, port)) == 0


def _sandbox(layout: Layout, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "STREAMFLOW_SANDBOX_DIR": str(layout.root),
           "STREAMFLOW_SANDBOX_PORT_BASE": str(layout.port_base)}
    return subprocess.run([sys.executable, "-m", "sandbox", *args], check=False, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def _brokers(layout: Layout) -> set[tuple[str, int]]:
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap(layout), "socket.timeout.ms": 3000})
    return {(b.host, b.port) for b in admin.list_topics(timeout=10).brokers.values()}


def test_kafka_for_containers_listens_everywhere_and_advertises_the_given_host(tmp_path, sandbox_layout):
    address = ALIAS
    loopback = Layout(root=tmp_path / "loopback", port_base=sandbox_layout.port_base + 3)
    shared = Layout(root=tmp_path / "containers", port_base=sandbox_layout.port_base + 4)
    try:
        started = _sandbox(loopback, "start", "--only", "kafka")
        assert started.returncode == 0, started.stderr
        assert _brokers(loopback) == {("127.0.0.1", loopback.kafka_port)}
        assert _reachable("127.0.0.1", loopback.kafka_port) and not _reachable(address, loopback.kafka_port)

        started = _sandbox(shared, "start", "--for-containers", "--advertise-host", address, "--only", "kafka")
        assert started.returncode == 0, started.stderr
        assert _brokers(shared) == {(address, shared.kafka_port)}
        assert _reachable(address, shared.kafka_port)
        # The host side still works through the advertised address: the start seeded every topic.
        admin = AdminClient({"bootstrap.servers": f"{address}:{shared.kafka_port}"})
        assert set(kafka.TOPICS) <= set(admin.list_topics(timeout=10).topics)
    finally:
        for layout in (shared, loopback):
            stopped = _sandbox(layout, "stop", "--only", "kafka")
            assert "kafka (tansu): stopped" in stopped.stdout, stopped.stderr


def test_postgres_for_containers_accepts_password_logins_on_another_address(tmp_path, sandbox_layout):
    address = ALIAS
    layout = Layout(root=tmp_path, port_base=sandbox_layout.port_base + 4).for_containers(address)
    base = postgres._paths(layout)[0]
    try:
        postgres.start(layout)
        dsn = postgres.dsn(layout).replace("@127.0.0.1:", f"@{address}:")
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            server_address = conn.execute("select host(inet_server_addr())").fetchone()[0]
        assert server_address == address
    finally:
        postgres.stop(layout)
        if base.is_relative_to("/var/tmp"):  # the fallback folder when the postgres user cannot reach tmp_path
            shutil.rmtree(base.parent, ignore_errors=True)


def test_flink_for_containers_binds_every_interface_and_keeps_its_own_addresses(tmp_path, sandbox_layout):
    loopback = Layout(root=tmp_path / "loopback", port_base=sandbox_layout.port_base + 4)
    shared = Layout(root=tmp_path / "containers", port_base=sandbox_layout.port_base + 4).for_containers(ALIAS)
    confs = {name: yaml.safe_load((flink._write_conf(layout, flink.flink_home()) / "config.yaml").read_text())
             for name, layout in (("loopback", loopback), ("containers", shared))}

    def binds(config: dict) -> tuple:
        return (config["jobmanager"]["bind-host"], config["taskmanager"]["bind-host"], config["rest"]["bind-address"])

    assert binds(confs["loopback"]) == ("127.0.0.1",) * 3
    assert binds(confs["containers"]) == ("0.0.0.0",) * 3
    for config in confs.values():  # how the TaskManager and clients on this machine find the JobManager
        assert (config["jobmanager"]["rpc"]["address"], config["rest"]["address"]) == ("127.0.0.1", "127.0.0.1")
