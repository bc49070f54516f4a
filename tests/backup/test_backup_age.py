"""postgres.backup_age counts verified backups only; an unverified or slow newest backup is a warning (pure)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from streamflow_ops.backup.outcome import backup_step_result
from streamflow_ops.config import load_config
from streamflow_ops.postgres.evaluators import evaluate_backup_age
from streamflow_ops.results import Status

NOW = datetime(2026, 3, 10, 3, 30, tzinfo=timezone.utc)
CFG = load_config().postgres_checks


def latest(hours_ago: float, outcome: str, duration_s: float = 120) -> dict:
    return {"finished_at": NOW - timedelta(hours=hours_ago), "outcome": outcome, "duration_s": duration_s,
            "target": f"/backups/streamflow-backup-{hours_ago}"}


def age(verified_hours_ago: float | None, newest: dict | None):
    verified = None if verified_hours_ago is None else NOW - timedelta(hours=verified_hours_ago)
    return evaluate_backup_age({"ops.maintenance_audit": verified}, {}, NOW, CFG, newest)


@pytest.mark.parametrize("hours, expected", [(25.99, Status.OK), (26, Status.WARNING), (50, Status.WARNING),
                                             (50.01, Status.CRITICAL)])
def test_bands_26_hours_exactly_is_a_warning(hours, expected):
    assert age(hours, latest(hours, "verified")).status is expected


def test_a_newer_unverified_backup_warns_and_does_not_reset_the_age():
    result = age(20, latest(1, "unverified"))
    assert result.status is Status.WARNING and result.value == 20.0
    assert "the newest backup (2026-03-10 02:30 UTC, /backups/streamflow-backup-1) is unverified" in result.message
    assert age(1, latest(1, "verified")).status is Status.OK  # the same backup, verified: ok
    # Only unverified backups: there is no restorable backup at all.
    none = age(None, latest(1, "unverified"))
    assert none.status is Status.CRITICAL and "no verified or completed backup recorded" in none.message
    assert "unverified" in none.message


def test_a_backup_longer_than_ten_minutes_warns():
    assert age(2, latest(2, "verified", duration_s=600)).status is Status.OK
    slow = age(2, latest(2, "verified", duration_s=601))
    assert slow.status is Status.WARNING and "took 601 s, longer than the runbook's 600 s" in slow.message
    assert age(40, latest(40, "verified", duration_s=900)).status is Status.WARNING  # stays a warning
    assert age(60, latest(60, "verified", duration_s=900)).status is Status.CRITICAL  # age decides


def test_the_window_step_reports_unverified_and_slow_backups_as_warnings():
    base = {"method": "gold_export", "location": "/backups/x", "size_bytes": 10, "duration_s": 3.0}
    assert backup_step_result({**base, "outcome": "verified"}, 600).status is Status.OK
    pruned = backup_step_result({**base, "outcome": "verified", "removed": ["backup-a", "backup-b"]}, 600)
    assert pruned.status is Status.OK and "retention removed 2 older backup(s): backup-a, backup-b" in pruned.message
    assert "retention" not in backup_step_result({**base, "outcome": "verified", "removed": []}, 600).message
    unverified = backup_step_result({**base, "outcome": "unverified"}, 600)
    assert unverified.status is Status.WARNING and "NOT verified" in unverified.message
    slow = backup_step_result({**base, "outcome": "verified", "duration_s": 700.0}, 600)
    assert slow.status is Status.WARNING and "took 700 s" in slow.message
    assert backup_step_result(None, 600).status is Status.OK  # a CNPG dry run: nothing created


@pytest.mark.postgres
def test_audit_rows_decide_and_rows_from_before_the_upgrade_still_count(warehouse_db, monkeypatch):
    """The real query: verified rows count, unverified ones warn; a pre-upgrade 'success' row counts by its
    details.verified (no page right after deploying this version)."""
    import psycopg

    from streamflow_ops.postgres.checks import run_checks
    from streamflow_ops.store import AuditRecord, ensure_ops_schema, write_audit

    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_KUBERNETES", raising=False)
    now = datetime.now(timezone.utc)

    def record(hours_ago: float, outcome: str, **details) -> None:
        finished = now - timedelta(hours=hours_ago)
        with psycopg.connect(warehouse_db, autocommit=True) as conn:
            ensure_ops_schema(conn)
            write_audit(conn, AuditRecord("postgres_backup", "r", "backup.dump", "backup", f"/backups/{hours_ago}",
                                          dry_run=False, started_at=finished - timedelta(minutes=2),
                                          finished_at=finished, outcome=outcome, details=details))

    def backup_age():
        [result] = [r for r in run_checks(load_config()) if r.check_name == "postgres.backup_age"]
        return result

    record(30, "success", verified=True, duration_s=100)  # written by the previous version
    assert backup_age().status is Status.WARNING and backup_age().value == 30.0
    record(5, "verified", duration_s=100)
    assert backup_age().status is Status.OK and backup_age().value == 5.0
    record(4, "failed", error="boom")  # a failure neither counts nor hides the verified one
    assert backup_age().status is Status.OK
    record(2, "unverified", duration_s=100)
    result = backup_age()
    assert result.status is Status.WARNING and result.value == 5.0 and "/backups/2) is unverified" in result.message


def test_a_completed_cnpg_backup_counts_and_a_newer_pending_dump_warns():
    """SPEC: backup_age counts `verified` and `completed`; before, a completed (CNPG) newest backup read as
    unverified and warned. A window's dump whose verification is pending is unverified until it passes."""
    assert age(3, latest(3, "completed")).status is Status.OK
    pending = age(20, latest(1, "unverified"))
    assert pending.status is Status.WARNING and "is unverified (verify=false, or its verification after the " \
                                                  "window has not passed yet)" in pending.message
    none = age(None, latest(1, "completed"))  # the audit's newest good one is what the probe passes as verified
    assert none.status is Status.CRITICAL and "unverified" not in none.message


def test_the_window_step_reports_a_pending_verification_as_ok_and_says_so():
    base = {"method": "pg_dump", "location": "/backups/x", "size_bytes": 10, "duration_s": 3.0}
    pending = backup_step_result({**base, "outcome": "unverified", "verification": "pending"}, 600)
    assert pending.status is Status.OK and "NOT verified" not in pending.message
    assert "restore verification pending: postgres_backup_verify runs it after the window" in pending.message
    skipped = backup_step_result({**base, "outcome": "unverified", "verification": "skipped (verify=false)"}, 600)
    assert skipped.status is Status.WARNING and "NOT verified" in skipped.message
    completed = backup_step_result({**base, "method": "cnpg", "outcome": "completed"}, 600)
    assert completed.status is Status.OK
