-- recover_bronze: the staged rows bronze lacks, one per transaction id (the first message of an id that a
-- producer retry wrote twice). Computed once: the dry run reports exactly these, the real run inserts them.
drop table if exists {candidates};
create temp table {candidates} as
select distinct on (s.{id}) s.*
from {stage} s
where not exists (select 1 from {bronze} b where b.{id} = s.{id})
order by s.{id}, s.kafka_partition, s.kafka_offset;
