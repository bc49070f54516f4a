-- Whole-partition retention: detach (brief lock on the parent, bounded by lock_timeout), then drop.
alter table {parent} detach partition {partition};
drop table {partition};
