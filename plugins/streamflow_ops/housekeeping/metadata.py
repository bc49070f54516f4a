"""Metadata cleanup the Airflow 3 way: `airflow db clean` in a pod, never from task code.

Task code may not open the metadata database in Airflow 3. The scheduler's own image, with the
metadata-DB connection from its Kubernetes secret, runs the supported CLI in a KubernetesPodOperator.

Why a thin operator and not a KubernetesPodOperator subclass: importing KubernetesPodOperator pulls the
kubernetes and kubernetes_asyncio clients, ~0.55 s on our 2-core workers, and every DAG file that wires
this step (airflow_housekeeping, maintenance_tasks) would pay it at every parse (measured: 0.60 s and
0.75 s cold, over the 0.5 s budget; bench/results/parse.md). The pod operator is imported, built and
run inside execute(), on the worker, where the cost is paid once per task.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Mapping

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from streamflow_ops.config import get_config
from streamflow_ops.connections import connection_defined
from streamflow_ops.dag_defaults import reference_time
from streamflow_ops.params import bool_param, int_param, ParamError, rendered
from streamflow_ops.results import CheckResult, Status
from streamflow_ops.runbook import section

SQL_ALCHEMY_CONN_ENV = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
CHECK_NAME = "maintenance.housekeeping"


def db_clean_arguments(before: datetime, dry_run: bool) -> list[str]:
    """`airflow db clean` arguments: no archive tables (they would grow instead), no prompt. Pure."""
    args = ["db", "clean", "--clean-before-timestamp", before.isoformat(), "--skip-archive", "--yes"]
    return [*args, "--dry-run"] if dry_run else args


class MetadataCleanupOperator(BaseOperator):
    """Runs `airflow db clean` in the scheduler's image through a KubernetesPodOperator built at run time.

    :param dry_run: pass ``--dry-run`` to `airflow db clean`; None: the run's ``dry_run`` param (templated).
    :param metadata_retention_days: clean rows older than the run's reference time minus this many
        days; None: the run's ``metadata_retention_days`` param, else ``housekeeping.metadata_retention_days``
        (templated).
    :param kubernetes_conn_id: the Kubernetes connection; None: ``kubernetes.conn_id`` (templated).
    :param namespace: the namespace of the pod; None: ``housekeeping.kubernetes_namespace`` (templated).
    :param image: the scheduler's image (same Airflow version as the metadata schema); None:
        ``housekeeping.scheduler_image`` (templated).
    :param skip_when_unconfigured: in the nightly window, a deployment without a scheduler image or a
        Kubernetes connection gets a ``skipped`` result naming what to set, instead of a failed window.
    :param poll_interval: seconds between pod status reads (the pod operator's ``poll_interval``).

    Returns a CheckResult dict (the pod operator itself pushes no return value).
    """

    template_fields: Sequence[str] = ("dry_run", "metadata_retention_days", "kubernetes_conn_id", "namespace",
                                      "image")
    ui_color = "#e8d5b5"

    def __init__(self, *, dry_run: bool | str | None = None, metadata_retention_days: int | str | None = None,
                 kubernetes_conn_id: str | None = None, namespace: str | None = None, image: str | None = None,
                 skip_when_unconfigured: bool = False, poll_interval: float = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dry_run = dry_run
        self.metadata_retention_days = metadata_retention_days
        self.kubernetes_conn_id = kubernetes_conn_id
        self.namespace = namespace
        self.image = image
        self.skip_when_unconfigured = skip_when_unconfigured
        self.poll_interval = poll_interval
        self._pod_operator = None

    def pod_settings(self, config, params: Mapping[str, Any], reference: datetime) -> dict[str, Any]:
        """The pod operator's arguments from arguments, params and config; missing settings fail first."""
        # parse time: the provider's secret module imports the kubernetes client (module docstring)
        from airflow.providers.cncf.kubernetes.secret import Secret

        hk = config.housekeeping
        image = self.image or hk.scheduler_image
        if not image:
            raise AirflowFailException("housekeeping.scheduler_image: not set; give the scheduler's image "
                                       "(same Airflow version) so that `airflow db clean` matches the schema")
        conn_id = self.kubernetes_conn_id or config.kubernetes.conn_id
        if not connection_defined(conn_id):
            raise AirflowFailException(f"kubernetes.conn_id: the Kubernetes connection '{conn_id}' "
                                       f"is not defined; metadata cleanup runs in a pod")
        days = rendered(self.metadata_retention_days)
        if days is None:
            days = params.get("metadata_retention_days") or hk.metadata_retention_days
        dry_run = rendered(self.dry_run)
        dry_run = bool_param("dry_run", params.get("dry_run", False) if dry_run is None else dry_run)
        before = reference - timedelta(days=int_param("metadata_retention_days", days, 1, 3650))
        return {
            "name": "airflow-db-clean", "image": image, "namespace": self.namespace or hk.kubernetes_namespace,
            "kubernetes_conn_id": conn_id, "cmds": ["airflow"], "arguments": db_clean_arguments(before, dry_run),
            "secrets": [Secret("env", SQL_ALCHEMY_CONN_ENV, hk.metadata_secret, hk.metadata_secret_key)],
            "startup_timeout_seconds": hk.pod_startup_timeout_s, "get_logs": True,
            "on_finish_action": "delete_pod", "poll_interval": self.poll_interval,
            # One continuous wait in this task: a deferral would resume on this operator, not the pod's.
            "deferrable": False,
        }

    def pod_operator(self, config, params: Mapping[str, Any], reference: datetime):
        """The KubernetesPodOperator that runs the cleanup (imported here: see the module docstring)."""
        # parse time: ~0.55 s, measured (module docstring, bench/results/parse.md)
        from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

        return KubernetesPodOperator(task_id=self.task_id, **self.pod_settings(config, params, reference))

    def execute(self, context) -> dict[str, Any]:
        reference = reference_time(context)  # a future logical date fails, also where cleanup would be skipped
        try:
            self._pod_operator = self.pod_operator(get_config(), context["params"], reference)
        except ParamError as exc:
            raise AirflowFailException(str(exc)) from None
        except AirflowFailException as exc:
            if not self.skip_when_unconfigured:
                raise
            result = CheckResult(CHECK_NAME, Status.SKIPPED, subject="metadata", runbook=section(CHECK_NAME),
                                 message=f"metadata cleanup not configured: {exc}")
        else:
            pod = self._pod_operator
            self.log.info("running %s %s in %s", pod.cmds, pod.arguments, pod.image)
            # execute_sync, not execute: the pod operator is run by this task, not by the Task Runner, and
            # its execute() would only add a deferral branch (off here) and a nested-operator warning.
            pod.execute_sync(context)
            result = CheckResult(CHECK_NAME, Status.OK, subject="metadata", runbook=section(CHECK_NAME),
                                 message=f"`airflow {' '.join(pod.arguments)}` ran in {pod.image}")
        return result.to_dict()

    def on_kill(self) -> None:
        """A killed task deletes its pod, as the pod operator itself would."""
        if self._pod_operator is not None:
            self._pod_operator.on_kill()
