-- One bounded batch: delete the promoted rows of [lo, hi), and count the range's rows in the same snapshot
-- (the main query does not see the CTE's delete), so rows left in the range are known without a re-scan.
-- The guard here looks for the silver row within the same time range: a hash semi-join of two small range
-- scans instead of one silver primary-key probe per row. That restriction can only make the guard find
-- FEWER silver rows, so it can only keep more, never delete more: a row whose silver copy carries another
-- transaction_time stays, and the exact sweep (retention_sweep_range.sql) decides it by id alone.
with gone as (
    delete from {bronze} b
    where b.{time} >= %(lo)s and b.{time} < %(hi)s
      and exists (select 1 from {silver} s
                  where s.{id} = b.{id} and s.{time} >= %(lo)s and s.{time} < %(hi)s)
    returning 1
)
select (select count(*) from gone) as deleted,
       (select count(*) from {bronze} r where r.{time} >= %(lo)s and r.{time} < %(hi)s) as in_range
