-- The exact guard for the rows a batch left in [lo, hi): a row goes only if its id is in silver (any time);
-- the rest are the unpromoted rows, counted, with the oldest named. Runs only for ranges with leftovers.
with batch as (
    select b.{id} as id, b.{time} as t, exists (select 1 from {silver} s where s.{id} = b.{id}) as promoted
    from {bronze} b
    where b.{time} >= %(lo)s and b.{time} < %(hi)s
), gone as (
    delete from {bronze} b
    where b.{id} = any (array(select id from batch where promoted))
      and b.{time} >= %(lo)s and b.{time} < %(hi)s
    returning 1
)
select (select count(*) from gone)                                 as deleted,
       count(*) filter (where not promoted)                        as unpromoted,
       (array_agg(id order by t, id) filter (where not promoted))[1] as oldest_id,
       min(t) filter (where not promoted)                          as oldest_time
from batch
