-- The exclusive end of the next batch: the time of the (batch_size + 1)-th old row from %(lo)s, so the
-- range [lo, end) holds at most batch_size rows. NULL when fewer remain (the batch runs to the cutoff).
-- An index-only walk of the time index: the guard is not evaluated here, only in the delete.
select {time}
from {bronze}
where {time} >= %(lo)s and {time} < %(cutoff)s
order by {time}
offset %(batch_size)s
limit 1
