-- restore_drill: rows of a table written before an instant (a CNPG backup's start), live and restored.
select count(*) as rows from {table} where {column} < %(before)s
