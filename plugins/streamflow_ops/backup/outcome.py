"""The backup step's verdict for a run's report: a CheckResult, so an unverified or slow backup is a warning."""
from __future__ import annotations

from typing import Any

from streamflow_ops import registry
from streamflow_ops.backup.audit import UNVERIFIED
from streamflow_ops.results import CheckResult, Status

CHECK = registry.MAINTENANCE_BACKUP.name


def backup_step_result(summary: dict[str, Any] | None, duration_warning_s: float) -> CheckResult:
    """Pure: the summary a backup task returned (None: no branch ran, i.e. a CNPG dry run) -> CheckResult."""
    def result(status: Status, message: str, **kwargs) -> CheckResult:
        return registry.MAINTENANCE_BACKUP.result(status, message, details=summary or {}, **kwargs)

    if summary is None:
        return result(Status.OK,
                      "backup (dry run): nothing created (the cnpg_create log shows the Backup it would create)")
    if summary.get("dry_run"):
        return result(Status.OK, f"backup (dry run, {summary['method']}): would back up {summary['would_dump']} into "
                                 f"{summary['folder']}; retention would remove {summary['would_remove']}")
    warnings = []
    pending = summary.get("verification") == "pending"
    if summary.get("outcome") == UNVERIFIED and not pending:
        warnings.append("NOT verified (verify=false): postgres.backup_age does not count it as restorable")
    duration = summary.get("duration_s")
    if duration is not None and duration > duration_warning_s:
        warnings.append(f"took {duration:.0f} s, longer than the runbook's {duration_warning_s:g} s")
    text = (f"backup ({summary['method']}) {summary.get('outcome')}: {summary['location']}, "
            f"{summary.get('size_bytes')} bytes, {duration} s")
    if pending:  # not verified yet, and not counted as verified until postgres_backup_verify passes
        text += "; restore verification pending: postgres_backup_verify runs it after the window"
    if summary.get("removed"):  # what folder retention deleted after this verified backup (audited)
        text += f"; retention removed {len(summary['removed'])} older backup(s): {', '.join(summary['removed'])}"
    return result(Status.WARNING if warnings else Status.OK, "; ".join([text, *warnings]),
                  value=duration, threshold=f"duration warning > {duration_warning_s:g} s")
