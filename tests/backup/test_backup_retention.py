"""Retention of backup folders: exact folders kept and removed; the newest VERIFIED backup of each kind
(method and schemas) always stays."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from streamflow_ops.backup.retention import BackupEntry, plan_retention, remove_planned, scan

NOW = datetime(2026, 3, 10, 3, 0, tzinfo=timezone.utc)


GOLD, FULL = "gold_export:gold", "pg_dump:bronze,gold,silver"


def entry(days_ago: float, verified: bool = True, kind: str = GOLD) -> BackupEntry:
    taken = NOW - timedelta(days=days_ago)
    return BackupEntry(f"streamflow-backup-{taken:%Y%m%dT%H%M%SZ}", taken, verified, kind)


def test_keeps_n_days_and_removes_the_rest():
    entries = [entry(d) for d in (0.5, 3, 6.9, 7.1, 12, 30)]
    plan = plan_retention(entries, NOW, keep_days=7)
    assert plan.remove == [e.name for e in (entries[5], entries[4], entries[3])]
    assert plan.keep == [e.name for e in (entries[2], entries[1], entries[0])]


def test_newest_verified_is_kept_even_when_newer_unverified_ones_exist():
    entries = [entry(20), entry(15), entry(10, verified=False), entry(9, verified=False)]
    plan = plan_retention(entries, NOW, keep_days=7)
    assert plan.newest_verified == {GOLD: entries[1].name}
    assert plan.keep == [entries[1].name]
    assert plan.remove == [entries[0].name, entries[2].name, entries[3].name]


def test_recent_unverified_backups_do_not_count_as_the_newest_verified_one():
    entries = [entry(8), entry(1, verified=False)]
    plan = plan_retention(entries, NOW, keep_days=7)
    assert plan.keep == [entries[0].name, entries[1].name] and plan.remove == []


def test_a_newer_gold_export_never_lets_the_last_verified_full_dump_go():
    """A gold export cannot restore silver or bronze: each kind keeps its newest verified backup."""
    entries = [entry(30, kind=FULL), entry(20, kind=FULL), entry(12, kind=FULL, verified=False),
               entry(10), entry(9), entry(1, kind=FULL, verified=False)]
    plan = plan_retention(entries, NOW, keep_days=7)
    assert plan.newest_verified == {FULL: entries[1].name, GOLD: entries[4].name}
    assert plan.remove == [entries[0].name, entries[2].name, entries[3].name]
    assert plan.keep == [entries[1].name, entries[4].name, entries[5].name]


def test_on_disk_only_our_folders_are_touched_and_dry_run_changes_nothing(tmp_path):
    def make(name, status):
        (tmp_path / name).mkdir()
        if status:
            (tmp_path / name / "manifest.json").write_text(json.dumps({"status": status, "method": "gold_export",
                                                                        "schemas": ["gold"]}))

    make("streamflow-backup-20260101T030000Z", "verified")   # 68 days old, not the newest verified one
    make("streamflow-backup-20260201T030000Z", "verified")   # newest verified one, old: kept
    make("streamflow-backup-20260203T030000Z", "unverified")  # newer but verify=false, old: removed
    make("streamflow-backup-20260204T030000Z", "dumped")     # killed mid-verify, old: removed
    make("streamflow-backup-20260305T030000Z", "failed")     # recent, failed: kept (inside keep_days)
    make("streamflow-backup-20260202T030000Z", None)         # crashed mid-dump, old: removed
    make("somebody-elses-folder", None)                      # not ours: never touched
    (tmp_path / "streamflow-backup-20250101T030000Z.tar").write_text("")  # not a folder of ours

    before = sorted(p.name for p in tmp_path.iterdir())
    plan = plan_retention(scan(tmp_path), NOW, keep_days=7)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert plan.remove == ["streamflow-backup-20260101T030000Z", "streamflow-backup-20260202T030000Z",
                           "streamflow-backup-20260203T030000Z", "streamflow-backup-20260204T030000Z"]

    remove_planned(tmp_path, plan)
    assert plan.removed == plan.remove
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "somebody-elses-folder", "streamflow-backup-20250101T030000Z.tar",
        "streamflow-backup-20260201T030000Z", "streamflow-backup-20260305T030000Z"]
