-- One bounded batch: promoted bronze rows older than the cutoff, oldest first, resuming at %(from_time)s.
-- Idempotent by construction: a killed run leaves committed batches done and the rest still matching.
-- The ids go in as an array so the delete is an index lookup (and prunes partitions), not a join.
with deleted as (
    delete from {bronze} b
    where b.{id} = any(array(
            select d.{id}
            from {bronze} d
            where d.{time} >= %(from_time)s and d.{time} < %(cutoff)s
              and exists (select 1 from {silver} s where s.{id} = d.{id})
            order by d.{time}
            limit %(batch_size)s))
      and b.{time} >= %(from_time)s and b.{time} < %(cutoff)s
    returning b.{time}
)
select count(*), max({time}) from deleted
