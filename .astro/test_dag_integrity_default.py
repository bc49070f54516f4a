"""Every DAG file imports without errors: what `astro dev parse` and `astro deploy` run, on Airflow 3.3.

The file the Astro CLI generates builds `DagBag(include_examples=False)`, which Airflow 3.3 refuses
(TypeError). This keeps its intent, one result per DAG file and an import error fails the parse, with
LOAD_EXAMPLES off in the environment and `DagBag()` reading the configured dags folder. Nothing is
mocked: our DAG files do no I/O at import, so one that needs a connection, variable or database to
parse fails here, as it would in the DAG processor.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
# Before Airflow reads its configuration: the image's AIRFLOW_HOME is the project, its dags folder dags/.
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT / "dags"))


def _parse() -> tuple[dict[str, str], dict[str, list[str]]]:
    """(import error per file, DAG ids per file), relative to the project, for the configured dags folder."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag()
    errors = {os.path.relpath(path, PROJECT): message.strip() for path, message in bag.import_errors.items()}
    dags_by_file: dict[str, list[str]] = {}
    for dag_id, dag in bag.dags.items():
        dags_by_file.setdefault(os.path.relpath(dag.fileloc, PROJECT), []).append(dag_id)
    return errors, dags_by_file


IMPORT_ERRORS, DAGS_BY_FILE = _parse()


@pytest.mark.parametrize("rel_path", sorted(set(IMPORT_ERRORS) | set(DAGS_BY_FILE)))
def test_file_imports(rel_path):
    assert rel_path not in IMPORT_ERRORS, f"{rel_path} failed to import:\n{IMPORT_ERRORS[rel_path]}"
    assert DAGS_BY_FILE[rel_path], f"{rel_path} defines no DAG"


def test_the_dags_folder_was_parsed():
    """An empty or misconfigured dags folder would make the test above pass vacuously."""
    assert DAGS_BY_FILE, f"no DAG found under {os.environ['AIRFLOW__CORE__DAGS_FOLDER']}"
