"""The one Kubernetes API client of the package, through KubernetesHook, answering the API's own JSON (as
`kubectl -o json`): the health checks, the CNPG backups (backup/cnpg.py) and the remediations use it.

Evaluators work on that JSON, so they are tested with the same documents a cluster returns.
"""
from __future__ import annotations

import json
from typing import Any

from streamflow_ops.config import KubernetesConfig
from streamflow_ops.http_probe import ProbeError, shorten

STRIMZI_KAFKA = ("kafka.strimzi.io", "v1beta2", "kafkas")
CNPG_CLUSTER = ("postgresql.cnpg.io", "v1", "clusters")
CNPG_BACKUP = ("postgresql.cnpg.io", "v1", "backups")
FLINK_DEPLOYMENT = ("flink.apache.org", "v1beta1", "flinkdeployments")


class KubeApiError(ProbeError):
    """The API answered with an error status; `status` lets a caller act on it (409 AlreadyExists, 404)."""

    def __init__(self, message: str, status: int | None):
        super().__init__(message)
        self.status = status


class KubeProbe:
    """One API client for a family run; an API that proved unreachable fails later calls at once."""

    def __init__(self, config: KubernetesConfig):
        self._config = config
        self._timeout = (config.connect_timeout_s, config.request_timeout_s)
        self._unreachable: ProbeError | None = None
        self._hook = None

    def _client(self):
        if self._hook is None:
            from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
            from kubernetes.client import rest

            hook = KubernetesHook(conn_id=self._config.conn_id)
            api = hook.api_client
            # urllib3 retries a failed connect 3 times by default: an unreachable API would cost 4 timeouts.
            api.configuration.retries = 0
            api.rest_client = rest.RESTClientObject(api.configuration)
            self._hook = hook
        return self._hook

    @property
    def host(self) -> str:
        return self._client().api_client.configuration.host

    def list_pods(self, namespace: str) -> list[dict[str, Any]]:
        return self._call(f"/api/v1/namespaces/{namespace}/pods",
                          lambda hook: hook.core_v1_client.list_namespaced_pod(
                              namespace, _preload_content=False, _request_timeout=self._timeout))["items"]

    def list_deployments(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        return self._call(f"/apis/apps/v1/namespaces/{namespace}/deployments?labelSelector={label_selector}",
                          lambda hook: hook.apps_v1_client.list_namespaced_deployment(
                              namespace, label_selector=label_selector, _preload_content=False,
                              _request_timeout=self._timeout))["items"]

    def custom_object(self, kind: tuple[str, str, str], namespace: str, name: str,
                      missing_ok: bool = True) -> dict[str, Any] | None:
        """The custom resource, or None if it (or its CRD) does not exist (missing_ok=False: a ProbeError)."""
        group, version, plural = kind
        return self._call(f"/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}",
                          lambda hook: hook.custom_object_client.get_namespaced_custom_object(
                              group, version, namespace, plural, name, _preload_content=False,
                              _request_timeout=self._timeout), missing_ok=missing_ok)

    def list_custom_objects(self, kind: tuple[str, str, str], namespace: str) -> list[dict[str, Any]]:
        group, version, plural = kind
        return self._call(f"/apis/{group}/{version}/namespaces/{namespace}/{plural}",
                          lambda hook: hook.custom_object_client.list_namespaced_custom_object(
                              group, version, namespace, plural, _preload_content=False,
                              _request_timeout=self._timeout)).get("items", [])

    def create_custom_object(self, kind: tuple[str, str, str], namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        group, version, plural = kind
        return self._call(f"/apis/{group}/{version}/namespaces/{namespace}/{plural}",
                          lambda hook: hook.custom_object_client.create_namespaced_custom_object(
                              group, version, namespace, plural, body, _preload_content=False,
                              _request_timeout=self._timeout), method="POST")

    def delete_custom_object(self, kind: tuple[str, str, str], namespace: str, name: str) -> dict[str, Any] | None:
        """Delete the custom resource (foreground: its pods and volumes go with it); None if already gone."""
        group, version, plural = kind
        return self._call(f"/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}",
                          lambda hook: hook.custom_object_client.delete_namespaced_custom_object(
                              group, version, namespace, plural, name, propagation_policy="Foreground",
                              _preload_content=False, _request_timeout=self._timeout),
                          missing_ok=True, method="DELETE")

    def _call(self, path: str, call, missing_ok: bool = False, method: str = "GET") -> Any:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        if self._unreachable is not None:
            raise self._unreachable
        hook = self._client()
        url = f"{self.host}{path}"
        try:
            response = call(hook)
        except ApiException as exc:
            if exc.status == 404 and missing_ok:
                return None
            raise KubeApiError(f"{method} {url} -> HTTP {exc.status} {exc.reason}: {_api_message(exc.body)}",
                               exc.status) from None
        except HTTPError as exc:
            self._unreachable = ProbeError(f"{method} {url}: Kubernetes API did not answer "
                                           f"({type(exc).__name__}: {shorten(exc)})")
            raise self._unreachable from None
        try:
            return json.loads(response.data)
        except ValueError:
            raise ProbeError(f"{method} {url} -> HTTP {response.status} but not JSON: "
                             f"{shorten(_text(response.data), 120)}") from None


def _api_message(body: Any) -> str:
    """The `message` of a Kubernetes Status document, else the raw body, shortened."""
    try:
        return shorten(json.loads(body).get("message") or _text(body), 200)
    except (TypeError, ValueError, AttributeError):
        return shorten(_text(body), 200)


def _text(data: Any) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else str(data)
