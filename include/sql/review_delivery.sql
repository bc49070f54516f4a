-- Weekly review: record what reached Slack in the stored report, so a retry never posts it twice.
update {ops}.weekly_review
set report = jsonb_set(report, '{{delivery}}', %(delivery)s)
where week_start = %(week_start)s
returning week_start
