-- Dry run: exact counts of bronze rows strictly older than the cutoff, split by whether they reached silver.
select count(*) filter (where s.{id} is not null) as promoted,
       count(*) filter (where s.{id} is null)     as unpromoted
from {bronze} b
left join {silver} s on s.{id} = b.{id}
where b.{time} < %(cutoff)s
