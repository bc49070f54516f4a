-- Parent first (ONLY: not every partition), then the partition: the order an insert takes them, so a late
-- writer waits instead of deadlocking. Both under lock_timeout; the proof that follows runs under them.
lock table only {bronze} in access exclusive mode;
lock table {partition} in access exclusive mode
