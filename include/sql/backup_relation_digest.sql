-- Row count and an order-independent checksum of a relation's rows (the sum of a 60-bit hash of each
-- row's text form): equal on the source snapshot and on a restore of the same rows into the same types,
-- read under the same session settings (backup_session_settings.sql). row(r.*) is the whole row even when
-- the relation has a column named r (a bare r would mean that column).
select count(*) as rows,
       md5(count(*)::text || ':' || coalesce(sum(('x' || left(md5(row(r.*)::text), 15))::bit(60)::bigint), 0)::text)
           as checksum
from {relation} as r
