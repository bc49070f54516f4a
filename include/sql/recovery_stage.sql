-- recover_bronze: the range's rows as read from Kafka, with where each came from; this session only.
drop table if exists {stage};
create temp table {stage} (like {bronze} excluding all);
alter table {stage} add column kafka_partition integer, add column kafka_offset bigint;
