-- Scratch databases of restore verifications (ours by name), on the whole server.
select datname from pg_database where datname like 'streamflow\_verify\_%' order by 1
