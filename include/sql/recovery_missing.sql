-- recover_bronze, per partition: rows missing from bronze (would be inserted) and repeated messages of an id.
with ranked as (
    select kafka_partition, kafka_offset,
           row_number() over (partition by {id} order by kafka_partition, kafka_offset) as nth
    from {stage}
)
select r.kafka_partition,
       count(c.kafka_offset) as missing,
       count(*) filter (where r.nth > 1) as duplicates
from ranked r
left join {candidates} c on c.kafka_partition = r.kafka_partition and c.kafka_offset = r.kafka_offset
group by r.kafka_partition
