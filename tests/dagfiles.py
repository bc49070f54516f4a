"""Test DAGs written as real DAG files: dag.test() serialises DAGs from the dags-folder bundle."""
from __future__ import annotations

import importlib.util
from pathlib import Path


def load_dag_file(folder, monkeypatch, dag_id: str, source: str):
    """Write source as <folder>/<dag_id>.py, make folder the dags folder, and return the DAG it defines."""
    import airflow.settings

    path = folder / f"{dag_id}.py"
    path.write_text(source)
    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(folder))
    module = _load(dag_id, path)
    return next(v for v in vars(module).values() if getattr(v, "dag_id", None) == dag_id)


REPO_DAGS = Path(__file__).resolve().parents[1] / "dags"


def load_repo_dag_module(name: str):
    """A fresh module from dags/<name>.py: each call builds new DAG objects."""
    return _load(f"test_dagfile_{name}", REPO_DAGS / f"{name}.py")


def load_repo_dag(dag_id: str):
    """A fresh DAG from dags/<dag_id>.py, whose @dag function is named like the dag_id."""
    return getattr(load_repo_dag_module(dag_id), dag_id)()


def _load(module_name: str, path: Path):
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
