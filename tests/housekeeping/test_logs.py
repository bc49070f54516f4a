"""Task log cleanup on a real temp tree: files both sides of the age line, exact files removed and kept."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from streamflow_ops.housekeeping.logs import clean_task_logs

NOW = datetime(2026, 3, 10, 3, 0, tzinfo=timezone.utc)
OLD = "dag_id=gold_refresh/run_id=scheduled__2026-01-01T03:00:00+00:00/task_id=refresh/attempt=1.log"
OLD_MAPPED = "dag_id=gold_refresh/run_id=scheduled__2026-01-01T03:00:00+00:00/task_id=each/map_index=0/attempt=2.log"
EDGE_OLD = "dag_id=bronze_retention/run_id=manual__a/task_id=delete/attempt=1.log"
EDGE_NEW = "dag_id=bronze_retention/run_id=manual__b/task_id=delete/attempt=1.log"
NEW = "dag_id=gold_refresh/run_id=scheduled__2026-03-09T03:00:00+00:00/task_id=refresh/attempt=1.log"
NOT_A_LOG = "dag_id=gold_refresh/run_id=scheduled__2026-01-01T03:00:00+00:00/task_id=refresh/notes.txt"
SCHEDULER = "scheduler/2026-01-01/gold_refresh.py.log"
DAG_PROCESSOR = "dag_processor/2026-01-01/dags-folder/x.py.log"


@pytest.fixture
def tree(tmp_path) -> Path:
    ages = {OLD: 45, OLD_MAPPED: 60, EDGE_OLD: 30 + 1 / 24, EDGE_NEW: 30 - 1 / 24, NEW: 1, NOT_A_LOG: 90,
            SCHEDULER: 90, DAG_PROCESSOR: 90}
    for rel, days in ages.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("log line\n" * 10)
        stamp = (NOW - timedelta(days=days)).timestamp()
        os.utime(path, (stamp, stamp))
    (tmp_path / "dag_id=gold_refresh" / "latest").symlink_to(tmp_path / OLD)
    return tmp_path


def files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def test_removes_exactly_the_old_task_logs(tree):
    before = files(tree)
    plan = clean_task_logs(tree, NOW, retention_days=30, dry_run=False)
    assert [f.path for f in plan.remove] == sorted([OLD, OLD_MAPPED, EDGE_OLD])
    assert files(tree) == before - {OLD, OLD_MAPPED, EDGE_OLD}
    assert plan.bytes == 3 * len("log line\n" * 10)
    # emptied run folders are pruned, the others stay
    assert not (tree / "dag_id=bronze_retention/run_id=manual__a").exists()
    assert not (tree / OLD_MAPPED).parent.exists()
    assert (tree / NOT_A_LOG).parent.exists() and (tree / "dag_id=bronze_retention").exists()


def test_dry_run_lists_and_changes_nothing(tree):
    before = {p: p.stat().st_mtime for p in tree.rglob("*") if not p.is_symlink()}
    plan = clean_task_logs(tree, NOW, retention_days=30, dry_run=True)
    assert [f.path for f in plan.remove] == sorted([OLD, OLD_MAPPED, EDGE_OLD])
    assert {p: p.stat().st_mtime for p in tree.rglob("*") if not p.is_symlink()} == before


def test_missing_log_folder_is_nothing_to_do(tmp_path):
    plan = clean_task_logs(tmp_path / "absent", NOW, retention_days=30, dry_run=False)
    assert plan.remove == [] and plan.keep == []
