-- Options come from a fixed list in streamflow_ops.postgres.vacuum; runs in autocommit.
vacuum ({options}) {table}
