-- Silver rows in the window [since, until) and how many score at or above the fraud threshold.
select count(*)                                              as total,
       count(*) filter (where {score} >= %(score_threshold)s) as flagged
from {silver}
where {time} >= %(since)s and {time} < %(until)s
