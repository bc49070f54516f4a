-- Weekly review: the stored report of one week.
select report from {ops}.weekly_review where week_start = %(week_start)s
