-- One consumer-group partition offset sample; a repeated sweep at the same instant is a no-op.
insert into {ops}.kafka_offset_samples
    (sampled_at, consumer_group, topic, partition, committed_offset, log_end_offset)
values (%(sampled_at)s, %(group)s, %(topic)s, %(partition)s, %(committed)s, %(log_end)s)
on conflict (consumer_group, topic, partition, sampled_at) do nothing
