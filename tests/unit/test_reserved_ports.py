"""Sandbox ports are reserved against ephemeral assignment, merged into what the kernel list holds."""
from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

from sandbox import proc


def test_a_port_is_added_once_and_existing_entries_are_kept(tmp_path, monkeypatch):
    sysctl = tmp_path / "ip_local_reserved_ports"
    sysctl.write_text("8080,9000-9010\n")
    monkeypatch.setattr(proc, "RESERVED_PORTS", sysctl)
    proc.reserve_port(45592)
    proc.reserve_port(45592)
    proc.reserve_port(9005)  # already inside a reserved range
    assert sysctl.read_text() == "8080,9000-9010,45592"


def test_an_empty_list_gets_the_port_alone(tmp_path, monkeypatch):
    sysctl = tmp_path / "ip_local_reserved_ports"
    sysctl.write_text("\n")
    monkeypatch.setattr(proc, "RESERVED_PORTS", sysctl)
    proc.reserve_port(45532)
    assert sysctl.read_text() == "45532"


def test_an_unwritable_sysctl_is_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(proc, "RESERVED_PORTS", tmp_path / "missing" / "ip_local_reserved_ports")
    proc.reserve_port(45532)  # best effort: the port check that follows still reports a clash
    assert not (tmp_path / "missing").exists()


def test_a_profile_reserves_its_whole_range_once(tmp_path, monkeypatch):
    sysctl = tmp_path / "ip_local_reserved_ports"
    sysctl.write_text("8080,45596\n")
    monkeypatch.setattr(proc, "RESERVED_PORTS", sysctl)
    layout = proc.Layout(root=tmp_path, port_base=45500)
    layout.reserve_ports()
    layout.reserve_ports()
    assert sysctl.read_text() == "8080,45596,45500-45599"
    proc.reserve_port(45532)  # a service start inside the reserved profile adds nothing
    assert sysctl.read_text() == "8080,45596,45500-45599"


def test_every_port_a_profile_uses_lies_in_its_reserved_range(tmp_path):
    layout = proc.Layout(root=tmp_path, port_base=45500)
    ports = {name: getattr(layout, name) for name in dir(proc.Layout)
             if name.endswith("_port") and isinstance(getattr(proc.Layout, name), property)}
    assert len(ports) >= 5, ports
    assert {name: port for name, port in ports.items()
            if not layout.port_base <= port < layout.port_base + proc.PROFILE_PORTS} == {}


def test_the_test_session_reserves_its_profile_before_any_service_starts():
    """tests/conftest.py's pytest_sessionstart, on this very session (root on this machine)."""
    reserved = proc.RESERVED_PORTS.read_text()
    layout = proc.Layout.from_env()
    if os.geteuid() == 0:
        assert all(proc._covers(reserved, port) for port in range(layout.port_base, layout.port_base + 100))
    assert hasattr(importlib.import_module("tests.conftest"), "pytest_sessionstart")


def test_no_test_starts_services_on_ports_outside_its_profile():
    """A private Layout is placed at an offset of the session's (sandbox_layout.port_base + N), never at a
    literal base: another engineer's profile, or the dev sandbox, may own that range."""
    literal = re.compile(r"port_base\s*=\s*\d")
    tests = Path(__file__).resolve().parents[1]
    found = [f"{p.relative_to(tests)}:{n}" for p in tests.rglob("*.py") if "unit" not in p.relative_to(tests).parts
             for n, line in enumerate(p.read_text().splitlines(), 1) if literal.search(line)]
    assert found == []
    assert literal.search("Layout(root=tmp_path, port_base=46100)")
