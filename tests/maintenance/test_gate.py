"""The maintenance gate's pure evaluation: what blocks destructive steps, and why."""
from __future__ import annotations

from streamflow_ops.config import load_config
from streamflow_ops.preflight import GateSnapshot, blocking_reason, evaluate_gate

CFG = load_config().postgres_checks
QUIET = {"used": 10, "max_connections": 100, "superuser_reserved": 3}
MB = 1024 * 1024


def reason(**changes) -> str | None:
    return blocking_reason(evaluate_gate(GateSnapshot(**{"connections": QUIET, **changes}), CFG))


def test_a_quiet_server_does_not_block():
    assert reason() is None
    assert reason(connections={**QUIET, "used": 94}) is None  # warning band: maintenance still runs
    assert reason(replicas=[{"replica": "r1", "state": "streaming", "lag_bytes": 100 * MB}]) is None


def test_each_blocker_is_named():
    assert "postgres.connections" in reason(connections={**QUIET, "used": 95})
    assert "postgres.replication_lag" in reason(replicas=[{"replica": "r1", "state": "streaming",
                                                             "lag_bytes": 100 * MB + 1}])
    assert "holds the advisory lock: window-run" in reason(lock_holder="window-run")
    assert "a backup is running: pg_dump of gold" in reason(backup="pg_dump of gold")
    assert "cannot tell whether a backup is running" in reason(backup_error="TimeoutError: k8s")
