-- One session setting for the current transaction only (a restore reads its files as they were written).
select set_config(%(name)s, %(value)s, true)
