-- A droppable partition's rows, and how many of them have no silver row in the partition's own time range.
-- Counting with a hash anti-join over two range scans (not `limit 1`, which the planner turns into one
-- silver probe per row). Restricting silver to [lower, upper) can only find more rows unproven, which keeps
-- the partition and hands it to the exact row-by-row path: it can never drop an unpromoted row.
select (select count(*) from {partition}) as rows,
       (select count(*)
        from {partition} b
        where not exists (select 1 from {silver} s
                          where s.{id} = b.{id} and s.{time} >= %(lower)s and s.{time} < %(upper)s)) as unproven
