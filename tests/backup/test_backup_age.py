"""postgres.backup_age counts verified backups only; an unverified or slow newest backup is a warning (pure)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from streamflow_ops.backup.outcome import backup_step_result
from streamflow_ops.config import load_config
from streamflow_ops.postgres.checks import evaluate_backup_age
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
    assert none.status is Status.CRITICAL and "no verified backup recorded" in none.message and "unverified" in none.message


def test_a_backup_longer_than_ten_minutes_warns():
    assert age(2, latest(2, "verified", duration_s=600)).status is Status.OK
    slow = age(2, latest(2, "verified", duration_s=601))
    assert slow.status is Status.WARNING and "took 601 s, longer than the runbook's 600 s" in slow.message
    assert age(40, latest(40, "verified", duration_s=900)).status is Status.WARNING  # stays a warning
    assert age(60, latest(60, "verified", duration_s=900)).status is Status.CRITICAL  # age decides


def test_the_window_step_reports_unverified_and_slow_backups_as_warnings():
    base = {"method": "gold_export", "location": "/backups/x", "size_bytes": 10, "duration_s": 3.0}
    assert backup_step_result({**base, "outcome": "verified"}, 600).status is Status.OK
    unverified = backup_step_result({**base, "outcome": "unverified"}, 600)
    assert unverified.status is Status.WARNING and "NOT verified" in unverified.message
    slow = backup_step_result({**base, "outcome": "verified", "duration_s": 700.0}, 600)
    assert slow.status is Status.WARNING and "took 700 s" in slow.message
    assert backup_step_result(None, 600).status is Status.OK  # a CNPG dry run: nothing created
