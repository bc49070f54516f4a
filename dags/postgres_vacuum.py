"""Manual vacuum: the window's step, on demand, with explicit tables and FULL.

Runbook: PostgreSQL Operations > Manual Vacuum.
"""
from __future__ import annotations

from airflow.sdk import Param, dag

from streamflow_ops.dag_defaults import COMMON_DAG_ARGS, dry_run_param
from streamflow_ops.maintenance.operators import VacuumOperator
from streamflow_ops.params import QUALIFIED_TABLE


@dag(
    dag_id="postgres_vacuum",
    schedule=None,
    **COMMON_DAG_ARGS,
    tags=["streamflow", "maintenance", "manual"],
    params={
        "dry_run": dry_run_param(True, "list the tables and options it would vacuum"),
        "tables": Param([], type="array", items={"type": "string", "pattern": QUALIFIED_TABLE.pattern},
                        title="Tables", description="\"schema.table\" names inside the configured schemas "
                                                    "(bronze, silver, gold). Empty: the tables that need it."),
        "full": Param(False, type="boolean", title="VACUUM FULL",
                      description="Rewrite the listed tables under an exclusive lock (bounded by lock_timeout). "
                                  "Only applies to tables named in 'tables'."),
    },
    doc_md="""
### PostgreSQL vacuum (manual; runbook: PostgreSQL Operations > Manual Vacuum)
Without `tables`: picks the tables in the configured schemas with more than 100,000 dead tuples or a
high dead ratio, and runs `VACUUM (ANALYZE)` on each (autocommit). Tables whose `age(relfrozenxid)`
passes the threshold get `FREEZE` too. With `tables`: exactly those (validated: plain names, inside the
configured schemas, existing). `full=true` runs `VACUUM FULL` on the listed tables, with a lock_timeout.
Reports dead tuples before and after per table; one `ops.maintenance_audit` row per table.
**Dry run by default.**
""",
)
def postgres_vacuum():
    VacuumOperator(task_id="vacuum")


postgres_vacuum()
