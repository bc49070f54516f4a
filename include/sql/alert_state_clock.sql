-- The database's clock: it orders alert state when the sweep has no run_after (never a worker's clock).
select clock_timestamp()
