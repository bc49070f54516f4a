-- recover_bronze: insert the missing rows, never update or delete one (a row written since the
-- comparison, e.g. by the running pipeline, is left as it is); the count per partition.
with inserted as (
    insert into {bronze} ({columns})
    select {columns} from {candidates}
    on conflict do nothing
    returning {id}
)
select c.kafka_partition, count(*) as inserted
from inserted i
join {candidates} c on c.{id} = i.{id}
group by c.kafka_partition
