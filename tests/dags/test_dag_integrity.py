"""Every DAG file imports cleanly, fast, without deprecations from our code, and is operable."""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
REPO = DAGS_DIR.parent


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_no_import_errors(dag_bag):
    assert dag_bag.import_errors == {}
    assert len(dag_bag.dags) >= len(DAG_FILES)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_without_deprecations(path):
    spec = importlib.util.spec_from_file_location(f"dagfile_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec.loader.exec_module(module)
    ours = [w for w in caught if issubclass(w.category, (DeprecationWarning, FutureWarning))
            and str(REPO) in str(w.filename) and ".venv" not in str(w.filename)]
    assert not ours, [f"{w.filename}:{w.lineno}: {w.message}" for w in ours]


@pytest.fixture(scope="module")
def cold_parses():
    from bench.parse import cold_parses

    return cold_parses(DAG_FILES)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_parses_cold_under_budget(path, cold_parses):
    """Cold, as the DAG processor pays it: each file in a child forked from an interpreter that has imported
    only Airflow's DagBag (bench.parse.cold_parses), nothing of the file or of our package imported before.
    The budget holds the parse's CPU time: other work shares these 2 cores, and wall time under that load
    counts its time too (bench/results/parse.md has both, from fresh interpreters)."""
    from bench.parse import BUDGET_S

    parse = cold_parses[path]
    assert parse["errors"] == {} and parse["dag_ids"], parse
    assert parse["cpu_seconds"] < BUDGET_S, f"{path.name} parses cold in {parse['cpu_seconds']:.2f}s CPU ({parse})"


def test_every_dag_is_operable(dag_bag):
    for dag_id, dag in dag_bag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and len(dag.doc_md.strip()) > 40, f"{dag_id} has no doc_md"
        assert "dry_run" in dag.params, f"{dag_id} has no dry_run param"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"
            if task.retries == 0:  # only a step that must not repeat itself (an approved action), saying why
                assert (task.doc_md or "").startswith("Never retried:"), f"{dag_id}.{task.task_id} has retries=0"
            else:
                assert task.retries >= 2, f"{dag_id}.{task.task_id} has retries={task.retries}"


def test_trigger_forms_explain_themselves(dag_bag):
    """The UI renders each Param's title and description: an on-call engineer reads nothing else."""
    for dag_id, dag in dag_bag.dags.items():
        for name in dag.params:
            param = dag.params.get_param(name)
            schema = param.schema
            assert schema.get("title"), f"{dag_id}: param '{name}' has no title"
            assert len(param.description or "") > 10, f"{dag_id}: param '{name}' has no description"
            if schema.get("type") in ("integer", "number"):
                assert "minimum" in schema and "maximum" in schema, f"{dag_id}: param '{name}' has no min/max"
