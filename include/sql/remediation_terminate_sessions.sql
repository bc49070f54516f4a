-- Terminate the approved sessions, each only if it is still the same backend (pid and backend_start:
-- a pid can be reused) and still idle for at least idle_s. Returns what was actually terminated.
select a.pid, pg_terminate_backend(a.pid) as terminated
from pg_stat_activity a
join unnest(%(pids)s::int[], %(backend_starts)s::timestamptz[]) as approved(pid, backend_start)
  on a.pid = approved.pid and a.backend_start = approved.backend_start
where a.datname = current_database()
  and a.state in ('idle', 'idle in transaction', 'idle in transaction (aborted)')
  and a.state_change <= now() - make_interval(secs => %(idle_s)s)
order by a.pid
