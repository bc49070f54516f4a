-- Samples older than the horizon say nothing the window rules or the time lag still need.
delete from {ops}.kafka_offset_samples where sampled_at < %(before)s
