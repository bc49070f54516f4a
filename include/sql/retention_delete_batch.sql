-- One bounded batch: promoted bronze rows older than the cutoff, oldest first, resuming at %(from_time)s.
-- Idempotent by construction: a killed run leaves committed batches done and the rest still matching.
with doomed as (
    select b.{id}, b.{time}
    from {bronze} b
    where b.{time} >= %(from_time)s and b.{time} < %(cutoff)s
      and exists (select 1 from {silver} s where s.{id} = b.{id})
    order by b.{time}
    limit %(batch_size)s
), deleted as (
    delete from {bronze} b
    using doomed d
    where b.{id} = d.{id} and b.{time} = d.{time}
    returning b.{time}
)
select count(*), max({time}) from deleted
