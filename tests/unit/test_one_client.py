"""One Kubernetes API client and one Slack sender: only kubernetes/probes.py builds Kubernetes clients
(KubernetesHook, the kubernetes package) and only alerting/slack.py posts to Slack through the hook; every
other module (backups, health checks, remediation, the window report) goes through those two."""
from __future__ import annotations

import ast

from tests.unit.test_layers import PACKAGE

OWNERS = {
    "airflow.providers.cncf.kubernetes.hooks": {"kubernetes/probes.py"},
    "kubernetes": {"kubernetes/probes.py"},
    # The webhook (every message) and the Slack API file upload (the weekly review's charts, a bot token).
    "airflow.providers.slack.hooks": {"alerting/slack.py"},
}


def importers(prefix: str) -> set[str]:
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            if any(name == prefix or name.startswith(prefix + ".") for name in names):
                found.add(path.relative_to(PACKAGE).as_posix())
    return found


def test_one_kubernetes_client_and_one_slack_sender():
    assert {prefix: importers(prefix) for prefix in OWNERS} == OWNERS
