-- Weekly review: fraud alerts per rule in this week [this_since, until) and last week [last_since, this_since).
select coalesce(rule_id, '(no rule)')                                                     as rule_id,
       count(*) filter (where created_at >= %(this_since)s and created_at < %(until)s)      as this_week,
       count(*) filter (where created_at >= %(last_since)s and created_at < %(this_since)s) as last_week
from {alerts}
where created_at >= %(last_since)s and created_at < %(until)s
group by 1
order by this_week desc, last_week desc, rule_id
