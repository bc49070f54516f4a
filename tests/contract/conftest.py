"""Helpers of the contract tests: fresh DAG objects from dags/, run with dag.test()."""
from __future__ import annotations

import pytest

from tests.dagfiles import REPO_DAGS, load_repo_dag_module


def fresh_dag(dag_id: str, *, retries: int | None = None):
    """A new DAG object from dags/<dag_id>.py. The window is built without its deadline: dag.test() on
    Airflow 3.3.2 crashes on a DAG that has one (its deadline is pinned in tests/maintenance).

    retries=0: dag.test() waits out retry delays (minutes); tests of a failure path that is meant to be
    retried (a lock timeout, a pod that exits 1) turn retries off, which changes nothing else.
    """
    module = load_repo_dag_module(dag_id)
    if dag_id == "maintenance_tasks":
        dag = module.build(deadline=None)
    else:
        from airflow.dag_processing.dagbag import DagBag

        dag = DagBag(dag_folder=str(REPO_DAGS / f"{dag_id}.py")).dags[dag_id]
    if retries is not None:
        for task in dag.tasks:
            task.retries = retries
    return dag


def states(dr) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dr.get_task_instances()}


def xcom(dr, task_id: str, key: str = "return_value"):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(XComModel.get_many(run_id=dr.run_id, key=key, task_ids=task_id,
                                                 dag_ids=dr.dag_id)).first()
        return None if row is None else XComModel.deserialize_value(row)


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO_DAGS))
