-- HighFraudRate: fraud alerts per rule in the last hour against the same hour the day before.
select rule_id,
       count(*) filter (where created_at >= now() - interval '1 hour')                       as last_hour,
       count(*) filter (where created_at >= now() - interval '25 hours'
                          and created_at <  now() - interval '24 hours')                     as day_before
from {alerts}
where created_at >= now() - interval '25 hours'
group by rule_id
order by last_hour desc, rule_id
