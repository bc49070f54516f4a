"""Sandbox ports are reserved against ephemeral assignment, merged into what the kernel list holds."""
from __future__ import annotations

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
