-- Bronze rows strictly older than the cutoff, per table (partition), split by whether they reached silver.
select b.tableoid::regclass::text                              as relation,
       count(*) filter (where s.{id} is not null)              as promoted,
       count(*) filter (where s.{id} is null)                  as unpromoted,
       min(b.{time}) filter (where s.{id} is null)             as oldest_unpromoted_time
from {bronze} b
left join {silver} s on s.{id} = b.{id}
where b.{time} < %(cutoff)s
group by b.tableoid
