-- Hold off late writes to the partition between its promotion proof and its drop (reads are not blocked).
lock table {partition} in share mode
