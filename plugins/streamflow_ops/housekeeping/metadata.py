"""Metadata cleanup the Airflow 3 way: `airflow db clean` in a pod, never from task code.

Task code may not open the metadata database in Airflow 3. The scheduler's own image, with the
metadata-DB connection from its Kubernetes secret, runs the supported CLI in a KubernetesPodOperator.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Mapping

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

SQL_ALCHEMY_CONN_ENV = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
RESULT_XCOM_KEY = "check_result"


def db_clean_arguments(before: datetime, dry_run: bool) -> list[str]:
    """`airflow db clean` arguments: no archive tables (they would grow instead), no prompt. Pure."""
    args = ["db", "clean", "--clean-before-timestamp", before.isoformat(), "--skip-archive", "--yes"]
    return [*args, "--dry-run"] if dry_run else args


class MetadataCleanupPodOperator(KubernetesPodOperator):
    """Runs `airflow db clean` in the scheduler's image; image, namespace, secret and retention come from
    the config (housekeeping.*) and the run's params (dry_run, metadata_retention_days) at run time."""

    def __init__(self, *, skip_when_unconfigured: bool = False, **kwargs):
        """skip_when_unconfigured: in the nightly window, a deployment without a scheduler image or a
        Kubernetes connection gets a `skipped` result naming what to set, instead of a failed window."""
        self.skip_when_unconfigured = skip_when_unconfigured
        kwargs.setdefault("name", "airflow-db-clean")
        kwargs.setdefault("get_logs", True)
        kwargs.setdefault("on_finish_action", "delete_pod")
        super().__init__(**kwargs)

    def configure(self, config, params: Mapping[str, Any], reference: datetime) -> None:
        """Fill the pod from config and params; bad or missing settings fail before a pod exists."""
        from airflow.providers.cncf.kubernetes.secret import Secret
        from airflow.sdk.exceptions import AirflowFailException

        from streamflow_ops.connections import connection_defined

        hk = config.housekeeping
        if not hk.scheduler_image:
            raise AirflowFailException("housekeeping.scheduler_image: not set; give the scheduler's image "
                                       "(same Airflow version) so that `airflow db clean` matches the schema")
        if not connection_defined(config.kubernetes.conn_id):
            raise AirflowFailException(f"kubernetes.conn_id: the Kubernetes connection '{config.kubernetes.conn_id}' "
                                       f"is not defined; metadata cleanup runs in a pod")
        days = params.get("metadata_retention_days") or hk.metadata_retention_days
        self.image = hk.scheduler_image
        self.namespace = hk.kubernetes_namespace
        self.kubernetes_conn_id = config.kubernetes.conn_id
        self.cmds = ["airflow"]
        self.arguments = db_clean_arguments(reference - timedelta(days=days), bool(params.get("dry_run", False)))
        self.secrets = [Secret("env", SQL_ALCHEMY_CONN_ENV, hk.metadata_secret, hk.metadata_secret_key)]
        self.startup_timeout_seconds = hk.pod_startup_timeout_s

    def execute(self, context):
        from airflow.sdk.exceptions import AirflowFailException

        from streamflow_ops.config import get_config
        from streamflow_ops.dag_defaults import reference_time
        from streamflow_ops.results import CheckResult, Status
        from streamflow_ops.runbook import section

        name = "maintenance.housekeeping"
        try:
            self.configure(get_config(), context["params"], reference_time(context))
        except AirflowFailException as exc:
            if not self.skip_when_unconfigured:
                raise
            result = CheckResult(name, Status.SKIPPED, subject="metadata", runbook=section(name),
                                 message=f"metadata cleanup not configured: {exc}")
        else:
            self.log.info("running %s %s in %s", self.cmds, self.arguments, self.image)
            super().execute(context)
            result = CheckResult(name, Status.OK, subject="metadata", runbook=section(name),
                                 message=f"`airflow {' '.join(self.arguments)}` ran in {self.image}")
        # KubernetesPodOperator pushes no return value (do_xcom_push means a sidecar): use our own key.
        context["ti"].xcom_push(key=RESULT_XCOM_KEY, value=result.to_dict())
