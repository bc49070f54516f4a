-- The oldest bronze row past the cutoff that never reached silver (named in the warning).
select b.{id}, b.{time}
from {bronze} b
where b.{time} < %(cutoff)s
  and not exists (select 1 from {silver} s where s.{id} = b.{id})
order by b.{time}, b.{id}
limit 1
