-- A group's offset samples since a point in time, oldest first (the lag evaluator's window and history).
select sampled_at, consumer_group, topic, partition, committed_offset, log_end_offset
from {ops}.kafka_offset_samples
where consumer_group = %(group)s and sampled_at >= %(since)s and sampled_at <= %(until)s
order by sampled_at, topic, partition
