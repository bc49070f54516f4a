-- Write one alert-state row as a whole (the pure state machine computed every column).
insert into {ops}.alert_state
    (check_name, subject, status, status_since, notified_status, notified_at, incident_open, deferred_to,
     pending_page, pending_slack, last_error, last_attempt_at, unmeasured_sweeps, unmeasured_reason, recent,
     flapping, orphan, last_result, last_sweep_id, checked_at, updated_at)
values (%(check_name)s, %(subject)s, %(status)s, %(status_since)s, %(notified_status)s, %(notified_at)s,
        %(incident_open)s, %(deferred_to)s, %(pending_page)s, %(pending_slack)s, %(last_error)s,
        %(last_attempt_at)s, %(unmeasured_sweeps)s, %(unmeasured_reason)s, %(recent)s, %(flapping)s, %(orphan)s,
        %(last_result)s, %(last_sweep_id)s, %(checked_at)s, now())
on conflict (check_name, subject) do update set
    status = excluded.status, status_since = excluded.status_since, notified_status = excluded.notified_status,
    notified_at = excluded.notified_at, incident_open = excluded.incident_open, deferred_to = excluded.deferred_to,
    pending_page = excluded.pending_page, pending_slack = excluded.pending_slack, last_error = excluded.last_error,
    last_attempt_at = excluded.last_attempt_at, unmeasured_sweeps = excluded.unmeasured_sweeps,
    unmeasured_reason = excluded.unmeasured_reason, recent = excluded.recent, flapping = excluded.flapping,
    orphan = excluded.orphan, last_result = excluded.last_result, last_sweep_id = excluded.last_sweep_id,
    checked_at = excluded.checked_at, updated_at = now()
