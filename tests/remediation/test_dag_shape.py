"""The four remediation DAGs share one safe shape: dry run by default, the approval between plan and act,
and an approval that does nothing when nobody answers."""
from __future__ import annotations

from datetime import timedelta

import pytest

from streamflow_ops.remediation.runner import REMEDIATIONS
from tests.dagfiles import load_repo_dag


@pytest.mark.parametrize("dag_id", sorted(REMEDIATIONS))
def test_remediation_dag_shape(dag_id):
    dag = load_repo_dag(dag_id)
    assert dag.params["dry_run"] is True
    upstream = {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}
    assert upstream == {"plan": [], "real_run": ["plan"], "approve": ["real_run"], "act": ["approve"],
                        "verify": ["act"], "report": ["verify"]}
    approve = dag.get_task("approve")
    assert (approve.options, approve.defaults, approve.response_timeout) == (
        ["Approve", "Reject"], ["Reject"], timedelta(hours=1))  # no answer in time: Reject, nothing done
    assert dag.get_task("report").trigger_rule == "all_done"
    assert dag.get_task("act").trigger_rule == "all_success"
    assert dag.get_task("act").retries == 0  # an approved action is never repeated without asking again
