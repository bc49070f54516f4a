-- Weekly review: one row per week; a re-run of the same week replaces its report.
insert into {ops}.weekly_review (week_start, created_at, report)
values (%(week_start)s, now(), %(report)s)
on conflict (week_start) do update set created_at = excluded.created_at, report = excluded.report
