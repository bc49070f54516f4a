"""The task chain every remediation DAG shares, so that its DAG file only names the remediation and params.

    plan -> real_run -> approve -> act -> verify
                                            \\-> report (always)

- plan: preconditions (a refusal fails the run, saying why) and the plan, in the log and the XCom; the
  checks it is meant to fix, before. A dry run writes its audit row here and stops.
- real_run: short-circuits a dry run or an empty plan: they never reach the approval.
- approve: Airflow's Human-in-the-loop ApprovalOperator shows the plan; "Reject", or no answer within
  APPROVAL_TIMEOUT (the default option is Reject), skips act and verify: nothing is done.
- act: the approved plan (only with a recorded Approve; never retried), inside an ops.maintenance_audit
  row. An approval is used once: an act cleared by hand after it acted is refused (nothing done, the
  report says why). verify: the same checks, after.
- report: what happened, to the log and to Slack (#streamflow-alerts) when that connection exists. It
  fails the run when the plan was refused or the action failed, so a red run means "not done".
"""
from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import get_current_context, task
from streamflow_ops.config import get_config
from streamflow_ops.remediation.actions import ActionError
from streamflow_ops.remediation.plans import Plan, Refused
from streamflow_ops.remediation.report import build_report, post_report
from streamflow_ops.remediation.runner import ApprovalConsumed, audit, checks_now, compare, REMEDIATIONS

APPROVAL_TIMEOUT = timedelta(hours=1)
PLAN_BODY = "{{ ti.xcom_pull(task_ids='plan')['plan']['text'] }}"


class RemediationApproval(ApprovalOperator):
    """ApprovalOperator that records the decision (XCom key `decision`) before acting on it: on Reject the
    operator skips downstream by raising, so its return value never reaches XCom, and the report needs it."""

    def execute_complete(self, context, event):
        if "error" not in event:
            context["ti"].xcom_push(key="decision", value={"chosen_options": list(event["chosen_options"]),
                                                           "responded_by_user": event.get("responded_by_user")})
        return super().execute_complete(context, event)


def remediation_flow(dag_id: str, subject: str) -> None:
    """Wire the shared chain inside a DAG context (`subject` heads the approval form)."""
    planned = plan_step(dag_id)
    approve = RemediationApproval(
        task_id="approve", subject=subject, body=PLAN_BODY, defaults=ApprovalOperator.REJECT,
        response_timeout=APPROVAL_TIMEOUT,
        doc_md="Approve to act on exactly the plan shown; Reject (or no answer within the timeout) does nothing.")
    acted = act_step(dag_id)
    verified = verify_step(dag_id)
    planned >> real_run() >> approve >> acted >> verified >> report_step(dag_id)


def _context():
    context = get_current_context()
    return context, get_config(), REMEDIATIONS[context["dag"].dag_id], context["params"]


@task(task_id="plan")
def plan_step(dag_id: str) -> dict:
    from airflow.sdk.exceptions import AirflowFailException

    context, config, remediation, params = _context()
    try:
        plan = remediation.plan(config, params)
    except Refused as exc:
        context["ti"].xcom_push(key="refused", value=str(exc))
        raise AirflowFailException(f"{dag_id} refused: {exc}") from None
    print(f"PLAN ({'dry run' if params['dry_run'] else 'needs approval'}):\n{plan.text()}")
    before = checks_now(remediation, config, params)
    if params["dry_run"]:
        audit(config, context, plan, True, lambda: {"rows_affected": len(plan.items)})
    return {"plan": plan.to_dict(), "before": before, "dry_run": params["dry_run"]}


@task.short_circuit(task_id="real_run", ignore_downstream_trigger_rules=False)
def real_run() -> bool:
    """Only a real run with something to do goes on to the approval."""
    ti, params = get_current_context()["ti"], get_current_context()["params"]
    planned = ti.xcom_pull(task_ids="plan")
    if params["dry_run"]:
        print("DRY RUN: nothing done; the plan above is what a real run would ask approval for")
        return False
    if not planned["plan"]["items"]:
        print("nothing to do: no approval asked")
        return False
    return True


ACT_DOC = ("Never retried: a retry would repeat a non-idempotent action (a PostgreSQL, Kubernetes or Flink "
           "error that is not an ActionError, say) without asking again. A failed act is for a person to look at.")


@task(task_id="act", retries=0, doc_md=ACT_DOC)
def act_step(dag_id: str) -> dict:
    from airflow.sdk.exceptions import AirflowFailException

    context, config, remediation, params = _context()
    decision = context["ti"].xcom_pull(task_ids="approve", key="decision")
    if params["dry_run"] or not decision or decision["chosen_options"] != [ApprovalOperator.APPROVE]:
        # The approve task succeeding is not enough: marked success by hand, it recorded no decision.
        raise AirflowFailException(f"{dag_id}: no Approve recorded by the approve task (decision {decision}, "
                                   f"dry_run {params['dry_run']}); nothing done")
    plan = Plan.from_dict(context["ti"].xcom_pull(task_ids="plan")["plan"])
    print(f"APPROVED, acting on:\n{plan.text()}")
    try:
        outcome = audit(config, context, plan, False, lambda: remediation.act(config, plan, params), decision)
    except ApprovalConsumed as exc:
        context["ti"].xcom_push(key="refused", value=str(exc))
        raise AirflowFailException(f"{dag_id} refused: {exc}") from None
    except ActionError as exc:
        # Half-done actions are for a person to look at, never for an automatic retry.
        raise AirflowFailException(f"{dag_id}: {exc}") from None
    print(f"DONE: {outcome}")
    return outcome


@task(task_id="verify")
def verify_step(dag_id: str) -> dict:
    context, config, remediation, params = _context()
    before = context["ti"].xcom_pull(task_ids="plan")["before"]
    after = checks_now(remediation, config, params)
    lines = compare(before, after)
    print("VERIFY (before -> after):\n" + "\n".join(lines))
    return {"after": after, "lines": lines}


@task(task_id="report", trigger_rule="all_done")
def report_step(dag_id: str) -> dict:
    from airflow.sdk.exceptions import AirflowFailException

    context, config, remediation, params = _context()
    ti = context["ti"]
    report = build_report(remediation, dict(params), ti.run_id,
                          planned=ti.xcom_pull(task_ids="plan"),
                          refused=ti.xcom_pull(task_ids="plan", key="refused")
                          or ti.xcom_pull(task_ids="act", key="refused"),
                          approval=ti.xcom_pull(task_ids="approve", key="decision"),
                          acted=ti.xcom_pull(task_ids="act"),
                          verified=ti.xcom_pull(task_ids="verify"))
    print(report["text"])
    report["delivery"] = post_report(config, report)
    if report["outcome"] in ("refused", "failed"):
        raise AirflowFailException(f"{dag_id}: {report['headline']}")
    return report
