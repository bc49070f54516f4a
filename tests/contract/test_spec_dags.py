"""docs/contract.md's DAGs and Params, pinned: ids, schedules, defaults and bounds, and bad input refused."""
from __future__ import annotations

import functools

import pytest

from tests.contract.conftest import fresh_dag
from tests.contract.spec import BAD_VALUES, NOT_BOOLEAN, PARAMS, SCHEDULES, spec_dags

SPEC_DAGS = spec_dags()


def test_the_pinned_params_cover_exactly_specs_dags():
    assert set(PARAMS) == set(SPEC_DAGS)
    assert set(SPEC_DAGS.values()) <= set(SCHEDULES), SPEC_DAGS


@pytest.mark.parametrize("dag_id", sorted(SPEC_DAGS))
def test_dag_exists_with_the_spec_schedule(dag_bag, dag_id):
    assert dag_id in dag_bag.dags, f"SPEC DAG {dag_id} is missing (import errors: {dag_bag.import_errors})"
    assert dag_bag.dags[dag_id].schedule in SCHEDULES[SPEC_DAGS[dag_id]]


@pytest.mark.parametrize("dag_id, name", [(d, p) for d, params in PARAMS.items() for p in params])
def test_param_has_the_spec_type_default_and_bounds(dag_bag, dag_id, name):
    dag = dag_bag.dags[dag_id]
    assert name in dag.params, f"{dag_id} has no param '{name}'"
    param = dag.params.get_param(name)
    spec = PARAMS[dag_id][name]
    types = param.schema.get("type")
    if "type" in spec:
        assert spec["type"] == types or spec["type"] in (types or []), (dag_id, name, types)
    if "default" in spec:
        assert param.value == spec["default"] and type(param.value) is type(spec["default"]), (dag_id, name)
    for bound in ("minimum", "maximum"):
        if bound in spec:
            assert param.schema.get(bound) == spec[bound], (dag_id, name, bound, param.schema)
    if "enum_includes" in spec:
        assert set(spec["enum_includes"]) <= set(param.schema.get("enum") or []), (dag_id, name, param.schema)


def _refusals():
    for dag_id in sorted(SPEC_DAGS):
        for value in NOT_BOOLEAN:
            yield dag_id, "dry_run", value
        for name, values in BAD_VALUES.get(dag_id, {}).items():
            for value in values:
                yield dag_id, name, value


@pytest.mark.airflow
@pytest.mark.parametrize("dag_id, name, value", list(_refusals()), ids=str)
def test_bad_value_is_refused_at_trigger_naming_the_param(airflow_db, dag_id, name, value):
    """dag.test(run_conf=...) validates the conf as a trigger does: no run exists, nothing ran."""
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match=f"^Invalid input for param {name}:"):
        refused_dag(dag_id).test(run_conf={name: value})


@functools.cache
def refused_dag(dag_id: str):
    """One DAG object per id for the refusals: a refused conf creates no run and changes nothing."""
    return fresh_dag(dag_id)
