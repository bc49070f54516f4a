-- Every row of the alert state: what people were told and what is still owed (small: checks x subjects).
select check_name, subject, status, status_since, notified_status, notified_at, incident_open, deferred_to,
       pending_page, pending_slack, last_error, last_attempt_at, unmeasured_sweeps, unmeasured_reason, recent,
       flapping, orphan, last_result, last_sweep_id, checked_at
from {ops}.alert_state
