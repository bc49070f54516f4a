-- Replay lag per streaming replica in bytes; no rows means no replicas. NULL lag on a standby.
select coalesce(application_name, '')                                  as replica,
       state,
       case when pg_is_in_recovery() or replay_lsn is null then null
            else pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint end as lag_bytes
from pg_stat_replication
order by application_name
