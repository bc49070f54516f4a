"""The shipped Prometheus rules, checked and unit-tested with the ecosystem's own tool (promtool)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from sandbox import monitoring

HERE = Path(__file__).resolve().parent
PROMETHEUS = HERE.parents[1] / "include" / "prometheus"
RULES = PROMETHEUS / "streamflow_ops_rules.yml"
PROMETHEUS_RULE = PROMETHEUS / "streamflow_ops_prometheusrule.yaml"
ALERTS = {"StreamFlowOpsSweepMissing": "critical", "StreamFlowOpsWindowMissed": "warning",
          "StreamFlowOpsAlertsUndelivered": "critical"}
# Runbook heading and first step each alert's annotations name (docs/monitoring.md says the same).
RUNBOOK = {"StreamFlowOpsSweepMissing": "Airflow Operations > Restart Airflow Scheduler",
           "StreamFlowOpsWindowMissed": "Maintenance Windows > Daily Maintenance (03:00 UTC)",
           "StreamFlowOpsAlertsUndelivered": "Quick Reference > Emergency Contacts"}


def promtool(*args: str | Path) -> str:
    """Run promtool; a refusal fails the test with promtool's own message."""
    proc = subprocess.run([monitoring.BINARIES["promtool"], *map(str, args)], capture_output=True, text=True,
                          timeout=120, check=False, cwd=HERE)
    assert proc.returncode == 0, f"promtool {' '.join(map(str, args))} refused:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_checks_the_shipped_rule_file():
    assert "SUCCESS: 5 rules found" in promtool("check", "rules", RULES)


def test_promtool_unit_tests_every_alert_fresh_stale_absent_recovered_fresh_deploy():
    cases = [t["name"] for t in yaml.safe_load((HERE / "rules_test.yml").read_text())["tests"]]
    for prefix in ("sweep", "window", "owed"):
        for case in ("fresh", "stale", "absent", "recovered", "fresh deploy"):
            assert any(name.startswith(f"{prefix} {case}") for name in cases), (prefix, case)
    assert "SUCCESS" in promtool("test", "rules", "rules_test.yml")


def test_a_rule_file_promtool_refuses_fails_with_promtools_message(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(RULES.read_text().replace("> 2 * 3600", "> 2 * ", 1))
    with pytest.raises(AssertionError) as refused:
        promtool("check", "rules", broken)
    assert "broken.yml" in str(refused.value) and "parse error" in str(refused.value)


def test_prometheusrule_carries_exactly_the_rule_files_groups_and_the_release_label():
    resource = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert (resource["apiVersion"], resource["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert resource["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    # kube-prometheus-stack's default ruleSelector: release=<helm release>, the runbook's release name
    assert resource["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert resource["metadata"]["namespace"] == "streamflow-monitoring"


def test_every_alert_has_its_severity_summary_and_a_description_naming_runbook_and_first_step():
    seen = {}
    for rule in rules():
        name = rule["alert"]
        seen.setdefault(name, set()).add(rule["labels"]["severity"])
        description = " ".join(rule["annotations"]["description"].split())
        assert rule["annotations"]["summary"]
        assert f"Runbook: {RUNBOOK[name]}." in description and "First step:" in description, name
    assert seen == {name: {severity} for name, severity in ALERTS.items()}


def test_time_thresholds_are_written_for_the_documented_compression():
    """Every number of seconds in an expr is `N * 3600` and every window a `for:`: compressed_rules() then
    scales all of them; a threshold written another way would silently stay at production length."""
    for rule in rules():
        rest = monitoring.HOURS_IN_SECONDS.sub("", rule["expr"])
        assert not re.search(r"\d{3,}|\[\d", rest), rule["expr"]
    fast = yaml.safe_load(monitoring.compressed_rules(RULES.read_text(), 3600))["groups"][0]["rules"]
    assert [r["for"] for r in fast if "for" in r] == ["2000ms", "26000ms", "500ms"]
    assert "> 2.0" in fast[0]["expr"] and "> 26.0" in fast[2]["expr"]
    assert [(r["alert"], r["labels"], r["annotations"]) for r in fast] == \
        [(r["alert"], r["labels"], r["annotations"]) for r in rules()]


def test_compressed_copy_passes_promtool(tmp_path):
    fast = tmp_path / "fast.yml"
    fast.write_text(monitoring.compressed_rules(RULES.read_text(), 7200))
    assert "SUCCESS: 5 rules found" in promtool("check", "rules", fast)
