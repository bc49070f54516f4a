-- Weekly review: rows per UTC day of their event time (epoch seconds) in [since, until).
select (to_timestamp({time}) at time zone 'UTC')::date as day, count(*) as rows
from {table}
where {time} >= %(since)s and {time} < %(until)s
group by 1
order by 1
