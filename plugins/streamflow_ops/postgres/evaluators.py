"""PostgreSQL evaluators: pure functions from rows (as the health_*.sql queries return them) to CheckResults."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from streamflow_ops import registry
from streamflow_ops.config import MaintenanceConfig, PostgresChecksConfig, RecoveryConfig
from streamflow_ops.registry import CheckSpec
from streamflow_ops.results import CheckResult, Status, banded

REACHABLE = registry.POSTGRES_REACHABLE
CONNECTIONS = registry.POSTGRES_CONNECTIONS
REPLICATION_LAG = registry.POSTGRES_REPLICATION_LAG
DEAD_TUPLES = registry.POSTGRES_DEAD_TUPLES
LONG_QUERIES = registry.POSTGRES_LONG_QUERIES
WRAPAROUND = registry.POSTGRES_TXID_WRAPAROUND
BACKUP_AGE = registry.POSTGRES_BACKUP_AGE
RESTORE_DRILL_AGE = registry.POSTGRES_RESTORE_DRILL_AGE
LAST_SUCCESS = registry.MAINTENANCE_LAST_SUCCESS
MAINTENANCE_STEPS = ("retention", "vacuum", "gold_refresh", "backup")
MB = 1024 * 1024


def _result(spec: CheckSpec, status: Status, message: str, **kwargs: Any) -> CheckResult:
    return spec.result(status, message, **kwargs)


def evaluate_connections(used: int, max_connections: int, superuser_reserved: int,
                         cfg: PostgresChecksConfig, total: int | None = None) -> CheckResult:
    """Client backends against max_connections. The runbook's query counts every pg_stat_activity row;
    background processes take no connection slot, so counting them would raise the alarm early: the
    message gives both figures."""
    pct = 100.0 * used / max_connections
    status = banded(pct, cfg.connections_warning_pct, cfg.connections_critical_pct)
    return _result(CONNECTIONS, status, value=round(pct, 1),
                   threshold=f"warning >= {cfg.connections_warning_pct:g}%, critical >= {cfg.connections_critical_pct:g}%",
                   message=f"{used} client connections of max_connections={max_connections} ({pct:.0f}%; "
                           f"{superuser_reserved} slots reserved for superusers)"
                           + ("" if total is None else f"; pg_stat_activity has {total} rows in all, background "
                              f"processes included, which take no connection slot"),
                   details={"used": used, "total": total, "max_connections": max_connections,
                            "superuser_reserved": superuser_reserved})


def evaluate_replication_lag(replicas: Sequence[dict], cfg: PostgresChecksConfig) -> CheckResult:
    threshold = (f"warning >= {cfg.replication_lag_warning_bytes / MB:g} MB, "
                 f"critical > {cfg.replication_lag_critical_bytes / MB:g} MB")
    if not replicas:
        return _result(REPLICATION_LAG, Status.OK, "no streaming replicas attached: nothing to lag",
                       value=0, threshold=threshold, details={"replicas": []})
    reporting = [r for r in replicas if r["lag_bytes"] is not None]
    if not reporting:
        return _result(REPLICATION_LAG, Status.UNKNOWN, threshold=threshold, details={"replicas": list(replicas)},
                       message="replicas attached but no replay position reported (is this a standby?)")
    laggard = max(reporting, key=lambda r: r["lag_bytes"])
    worst_lag = laggard["lag_bytes"]
    status = banded(worst_lag, cfg.replication_lag_warning_bytes, cfg.replication_lag_critical_bytes + 1)
    return _result(REPLICATION_LAG, status, value=worst_lag, threshold=threshold,
                   message=f"{len(replicas)} replica(s); worst replay lag {worst_lag / MB:.1f} MB "
                           f"({laggard['replica'] or 'unnamed'}, {laggard['state']})",
                   details={"replicas": list(replicas)})


def evaluate_dead_tuples(tables: Sequence[dict], cfg: PostgresChecksConfig) -> list[CheckResult]:
    """One result per table, so that a table's recovery is seen as a resolution."""
    threshold = f"warning > {cfg.dead_tuples_warning:,}"
    if not tables:
        return [_result(DEAD_TUPLES, Status.OK, threshold=threshold,
                        message=f"no tables in schemas {', '.join(cfg.dead_tuples_schemas)}")]
    results = []
    for t in tables:
        dead = t["n_dead_tup"]
        bloated = dead > cfg.dead_tuples_warning
        results.append(_result(
            DEAD_TUPLES, Status.WARNING if bloated else Status.OK, subject=t["table_name"], value=dead,
            threshold=threshold,
            message=(f"{dead:,} dead tuples ({t['n_live_tup']:,} live); last vacuum "
                     f"{t['last_vacuum'] or 'never'}"),
        ))
    return results


def evaluate_long_queries(queries: Sequence[dict], cfg: PostgresChecksConfig) -> CheckResult:
    threshold = f"warning: any active > {cfg.long_query_s} s"
    slow = [q for q in queries if q["running_s"] > cfg.long_query_s]
    if not slow:
        return _result(LONG_QUERIES, Status.OK, value=0, threshold=threshold,
                       message=f"no active query running longer than {cfg.long_query_s} s "
                               f"({len(queries)} active)")
    longest = max(slow, key=lambda q: q["running_s"])
    return _result(LONG_QUERIES, Status.WARNING, value=len(slow), threshold=threshold,
                   message=f"{len(slow)} active quer{'y' if len(slow) == 1 else 'ies'} longer than "
                           f"{cfg.long_query_s} s; longest pid {longest['pid']} ({longest['usename']}, "
                           f"{longest['application_name'] or 'no app name'}) for {longest['running_s']:.0f} s: "
                           f"{longest['query'][:120]}",
                   details={"queries": [dict(q) for q in slow[:10]]})


def evaluate_txid_wraparound(databases: Sequence[dict], cfg: PostgresChecksConfig) -> CheckResult:
    threshold = f"warning >= {cfg.wraparound_warning:,}, critical > {cfg.wraparound_critical:,}"
    oldest = max(databases, key=lambda d: d["xid_age"])
    status = banded(oldest["xid_age"], cfg.wraparound_warning, cfg.wraparound_critical + 1)
    return _result(WRAPAROUND, status, value=oldest["xid_age"], threshold=threshold,
                   message=f"oldest datfrozenxid age {oldest['xid_age']:,} in database {oldest['datname']}",
                   details={"databases": {d["datname"]: d["xid_age"] for d in databases}})


# Audit outcomes postgres.backup_age counts (SPEC "Backups"): restored and compared, or a CNPG Backup completed.
GOOD_BACKUP = ("verified", "completed")


def evaluate_backup_age(backups: dict[str, datetime | None], errors: dict[str, str], now: datetime,
                        cfg: PostgresChecksConfig, latest: dict | None = None) -> CheckResult:
    """backups: newest GOOD backup per source (audit: `verified` or `completed`; cnpg); errors: sources that
    could not be read;
    latest: the newest recorded backup of any finished outcome (finished_at, outcome, duration_s, target).

    Age bands: ok < 26 h, warning 26-50 h (26 h exactly is a warning), critical > 50 h or none. At least
    a warning when the newest backup is unverified (it proves nothing restores) or took longer than
    the runbook's 10 minutes (backup_duration_warning_s).
    """
    threshold = (f"warning >= {cfg.backup_age_warning_h:g} h, critical > {cfg.backup_age_critical_h:g} h or none; "
                 f"warning if the newest is unverified or took > {cfg.backup_duration_warning_s} s")
    details = {"sources": {k: v.isoformat() if v else None for k, v in backups.items()}, "errors": errors,
               "latest": {k: v.isoformat() if isinstance(v, datetime) else v for k, v in (latest or {}).items()}}
    known = {source: at for source, at in backups.items() if at is not None}
    if not known:
        if not backups:  # every source failed: we cannot say there is no backup
            return _result(BACKUP_AGE, Status.UNKNOWN, threshold=threshold, details=details,
                           message="could not read any backup source: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
        unverified = (f"; the newest backup ({latest['finished_at']:%Y-%m-%d %H:%M} UTC, {latest['target']}) is "
                      f"unverified" if latest and latest["outcome"] not in GOOD_BACKUP else "")
        return _result(BACKUP_AGE, Status.CRITICAL, threshold=threshold, details=details,
                       message=f"no verified or completed backup recorded ({', '.join(backups)}){unverified}; run postgres_backup "
                               f"with verify=true")
    source, newest = max(known.items(), key=lambda kv: kv[1])
    age_h = (now - newest).total_seconds() / 3600
    status = (Status.CRITICAL if age_h > cfg.backup_age_critical_h
              else Status.WARNING if age_h >= cfg.backup_age_warning_h else Status.OK)
    notes = []
    if latest and latest["outcome"] not in GOOD_BACKUP and latest["finished_at"] > newest:
        notes.append(f"the newest backup ({latest['finished_at']:%Y-%m-%d %H:%M} UTC, {latest['target']}) is "
                     f"unverified (verify=false, or its verification after the window has not passed yet): "
                     f"nothing proves it restores; see postgres_backup_verify, or run postgres_backup with "
                     f"verify=true")
    if latest and latest.get("duration_s") is not None and latest["duration_s"] > cfg.backup_duration_warning_s:
        notes.append(f"the last backup took {latest['duration_s']:.0f} s, longer than the runbook's "
                     f"{cfg.backup_duration_warning_s} s: check the backup target's throughput and the database size")
    if notes and status is Status.OK:
        status = Status.WARNING
    return _result(BACKUP_AGE, status, value=round(age_h, 2), threshold=threshold, details=details,
                   message="; ".join([f"last good backup (verified or CNPG completed) {age_h:.1f} h ago ({newest:%Y-%m-%d %H:%M} UTC, "
                                      f"from {source})", *notes]))


def evaluate_last_success(runs: Sequence[dict[str, Any]], now: datetime, cfg: MaintenanceConfig,
                          hard_stop_h: float) -> list[CheckResult]:
    """maintenance.last_success, one result per window step (rows as maintenance_last_runs.sql returns them).

    ok: the last real run succeeded < warning_h ago. warning: warning_h..critical_h, or the last run was
    skipped (gate closed, lock held), failed, or never finished (a killed run's 'in progress' row older
    than the hard stop), or the step never ran. critical: no success for > critical_h.
    """
    by_step = {row["step"]: row for row in runs}
    threshold = f"warning {cfg.last_success_warning_h:g} h, critical {cfg.last_success_critical_h:g} h"
    results = []
    for step in MAINTENANCE_STEPS:
        row = by_step.get(step)
        if row is None:
            results.append(LAST_SUCCESS.result(Status.WARNING, f"{step} never ran (no real run in the audit)",
                                               subject=step, threshold=threshold))
            continue
        success = row["last_success_at"]
        age_h = None if success is None else (now - success).total_seconds() / 3600
        since = "never succeeded" if age_h is None else f"last success {age_h:.1f} h ago ({success:%Y-%m-%d %H:%M} UTC)"
        last = f"its last run {row['last_run_id']} ({row['last_started_at']:%Y-%m-%d %H:%M} UTC)"
        outcome = row["last_outcome"]
        running = outcome == "in progress" and (now - row["last_started_at"]).total_seconds() / 3600 < hard_stop_h
        notes = {"skipped": f"{last} was SKIPPED: {row['last_note']}",
                 "failed": f"{last} FAILED: {row['last_note']}",
                 "in progress": f"{last} never finished (killed?): {row['last_note']} is still 'in progress'"}
        note = None if outcome == "success" or running else notes[outcome]
        if age_h is None or age_h > cfg.last_success_critical_h:
            status = Status.CRITICAL if age_h is not None else Status.WARNING
        elif age_h >= cfg.last_success_warning_h or note:
            status = Status.WARNING
        else:
            status = Status.OK
        message = "; ".join(filter(None, [f"{step}: {since}", note, f"{last} is running" if running else None]))
        results.append(LAST_SUCCESS.result(status, message, subject=step, threshold=threshold,
                                           value=None if age_h is None else round(age_h, 2),
                                           details={k: (v.isoformat() if isinstance(v, datetime) else v)
                                                    for k, v in row.items()}))
    return results


def evaluate_restore_drill_age(methods: Sequence[dict[str, Any]], now: datetime,
                               cfg: RecoveryConfig) -> list[CheckResult]:
    """One result per backup method (subject): ok when its newest backup was restored and compared by
    restore_drill less than drill_warning_days ago; warning up to drill_critical_days, or never; critical
    beyond, or when its last drill failed. Only a restore proves a backup (SPEC "Backups")."""
    threshold = f"warning >= {cfg.drill_warning_days:g} d or never, critical > {cfg.drill_critical_days:g} d or failed"
    if not methods:
        return [RESTORE_DRILL_AGE.result(Status.WARNING, "no backup has ever been restored by restore_drill "
                                                         "(no backup or drill recorded)", threshold=threshold)]
    results = []
    for row in methods:
        method, passed = row["method"], row["last_passed_at"]
        age_days = (now - passed).total_seconds() / 86_400 if passed else None
        details = {"last_outcome": row["last_outcome"], "last_drill_at": _iso(row["last_drill_at"]),
                   "last_passed_at": _iso(passed), "last_error": row["last_error"]}
        if row["last_outcome"] == "failed":
            status = Status.CRITICAL
            message = (f"the last restore drill of the {method} backup failed at {_iso(row['last_drill_at'])}: "
                       f"{row['last_error'] or 'see its log'}")
        elif age_days is None:
            status, message = Status.WARNING, f"the {method} backups have never been restored by restore_drill"
        else:
            status = (Status.CRITICAL if age_days > cfg.drill_critical_days else
                      Status.WARNING if age_days >= cfg.drill_warning_days else Status.OK)
            message = f"the newest {method} backup was restored and compared {age_days:.1f} days ago"
        results.append(RESTORE_DRILL_AGE.result(status, message, subject=method, threshold=threshold,
                                                value=None if age_days is None else round(age_days, 2),
                                                details=details))
    return results


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None
