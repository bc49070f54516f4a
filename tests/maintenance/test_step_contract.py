"""The window's one step contract: every step hands the report CheckResults, so a warning from any step
(operator, backup group, housekeeping group) reaches the window report as a warning, and a step that
returns anything else is reported critical, never `ok`. Pure: the producers' own result builders."""
from __future__ import annotations

from streamflow_ops.backup.outcome import backup_step_result
from streamflow_ops.housekeeping.taskgroups import part_results
from streamflow_ops.maintenance.operators import VacuumOperator
from streamflow_ops.maintenance.window import TITLE, step_results
from streamflow_ops.report import format_checks
from streamflow_ops.results import Status

UNVERIFIED_BACKUP = {"method": "gold_export", "outcome": "unverified", "location": "/backups/gold.dump",
                     "size_bytes": 4096, "duration_s": 12.0, "dry_run": False}
LOG_OUTCOME = {"queue": "w1", "dry_run": False, "folder": "/logs", "retention_days": 30, "removed": ["a.log"],
               "bytes": 10, "kept": 3, "unreached_queues": ["w9"]}
METADATA_OK = {"check_name": "maintenance.housekeeping", "status": "ok", "message": "metadata cleaned",
               "subject": "metadata"}


def xcoms() -> dict:
    """What each step's task pushes as return_value, built by the step's own code."""
    vacuum = VacuumOperator(task_id="vacuum").result(Status.WARNING, "bronze.transactions still 31% dead tuples")
    return {
        "vacuum": vacuum.to_dict(),  # an operator: one CheckResult dict
        "backup.result": [backup_step_result(UNVERIFIED_BACKUP, 600).to_dict()],  # a task group's leaf: a list
        "housekeeping.summary": [r.to_dict() for r in part_results({"housekeeping.task_logs_w1": LOG_OUTCOME},
                                                                   "housekeeping.metadata_cleanup", METADATA_OK)],
    }


def test_a_warning_from_every_kind_of_step_reaches_the_window_report():
    results = step_results(xcoms())
    warned = {(r.check_name, r.subject) for r in results if r.status == Status.WARNING}
    assert warned == {("maintenance.vacuum", ""), ("maintenance.backup", ""), ("maintenance.housekeeping", "w1")}
    report = format_checks(TITLE, results)
    assert report.splitlines()[0] == f"== {TITLE}: WARNING (4 checks) =="
    for needle in ("31% dead tuples", "NOT verified (verify=false)", "lists ['w9'] but this DAG has no log task"):
        [line] = [line for line in report.splitlines() if needle in line]
        assert line.startswith("[")
        assert "ok" not in line.split("]")[0].lower()


def test_a_step_breaking_the_contract_is_critical_not_ok():
    values = {"vacuum": "vacuumed 3 tables", "backup.result": [{"location": "/x"}], "gold_refresh": None,
              "bronze_retention": []}
    results = {r.check_name: r for r in step_results(values)}
    assert {name: r.status for name, r in results.items()} == dict.fromkeys(
        ("maintenance.vacuum", "maintenance.backup", "maintenance.gold_refresh", "maintenance.bronze_retention"),
        Status.CRITICAL)
    assert "returned 'vacuumed 3 tables', not CheckResults" in results["maintenance.vacuum"].message
    assert "produced no result" in results["maintenance.gold_refresh"].message


def test_housekeeping_without_unreached_queues_is_ok_and_a_missing_part_critical():
    quiet = {**LOG_OUTCOME, "unreached_queues": []}
    results = part_results({"housekeeping.task_logs_w1": quiet, "housekeeping.task_logs_w2": None},
                           "housekeeping.metadata_cleanup", None)
    assert [(r.subject, r.status) for r in results] == [
        ("w1", Status.OK), ("housekeeping.task_logs_w2", Status.CRITICAL), ("metadata", Status.CRITICAL)]
