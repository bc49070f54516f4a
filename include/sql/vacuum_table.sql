-- Options come from a fixed list in streamflow_ops.maintenance.vacuum; runs in autocommit.
vacuum ({options}) {table}
