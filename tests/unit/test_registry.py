"""The check registry against what it is held to: the runbook heading index, the contract's check names
(docs/contract.md) and the generated docs/checks.md. The documents are parsed here, independently of the product."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from streamflow_ops import registry
from streamflow_ops.config import StreamflowOpsConfig, load_config
from streamflow_ops.results import Status
from tests.runbook import HEADINGS

REPO = Path(__file__).resolve().parents[2]


def citations() -> list[tuple[str, str]]:
    """(where, heading) for everything the registry cites."""
    cited = [(spec.name, spec.runbook) for spec in registry.SPECS.values()]
    cited += [(f"{spec.name}[{ns}]", heading) for spec in registry.SPECS.values()
              for ns, heading in spec.subject_runbooks]
    cited += [(f"family {family}", heading) for family, heading in registry.FAMILY_RUNBOOK.items()]
    return cited


def test_runbook_index_has_the_known_anchors():
    # Known anchors of the runbook, so an empty index cannot make the next test pass vacuously.
    assert {"Alert Response Procedures > Alert: KafkaConsumerLagHigh",
            "Service Health Checks > 3. PostgreSQL Cluster (streamflow-data namespace)"} <= HEADINGS


@pytest.mark.parametrize("where, heading", citations())
def test_every_citation_is_a_runbook_heading(where, heading):
    assert heading in HEADINGS, f"{where} cites {heading!r}, not a heading of RUNBOOK.md"


def test_every_runbook_alert_name_is_an_alert_heading_and_cited_there():
    alerts = {h.split("Alert: ", 1)[1] for h in HEADINGS if h.startswith("Alert Response Procedures > Alert: ")}
    for spec in registry.SPECS.values():
        if spec.alert:
            assert spec.alert in alerts, spec.name
            # a check bearing a runbook alert cites that alert's section (or, per subject, another alert's)
            assert spec.runbook == f"Alert Response Procedures > Alert: {spec.alert}", spec.name
    # every alert of the runbook is covered by some check
    assert alerts <= {s.alert for s in registry.SPECS.values()}


def test_threshold_keys_and_connections_are_config_keys():
    config = StreamflowOpsConfig()
    for spec in registry.SPECS.values():
        for key in (*spec.thresholds, *([spec.connection] if spec.connection else [])):
            section, name = key.split(".")
            assert name in type(getattr(config, section)).model_fields, f"{spec.name}: {key}"


def spec_table_checks() -> set[str]:
    """The check names listed under docs/contract.md's '## Checks'."""
    section = (REPO / "docs" / "contract.md").read_text().split("\n## Checks\n", 1)[1].split("\n## ", 1)[0]
    names = set(re.findall(r"\b([a-z]+\.[a-z_]+[a-z])(?:,|\.\n|\.$)", section, flags=re.MULTILINE))
    assert len(names) > 20
    return names


def checks_md_rows() -> set[str]:
    """The backticked check names of docs/checks.md's health sweep table, with their headings."""
    text = (REPO / "docs" / "checks.md").read_text()
    section = text.split("\n## Health sweep", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z]+\.[a-z_]+)` \|[^|]*\|[^|]*\| ([^|]+) \|", section, flags=re.MULTILINE)
    return {name: heading.strip() for name, heading in rows}


def sweep_specs() -> dict[str, registry.CheckSpec]:
    return {name: spec for name, spec in registry.SPECS.items() if spec.in_sweep}


def test_every_contract_check_is_in_the_registry():
    assert spec_table_checks() <= set(sweep_specs())


def test_checks_md_lists_every_sweep_check_with_its_heading():
    listed = checks_md_rows()
    assert set(listed) == set(sweep_specs())
    assert listed == {name: spec.runbook for name, spec in sweep_specs().items()}


def test_every_family_registers_exactly_its_specs():
    from streamflow_ops.sweep import FAMILIES, load_families

    families = load_families()
    assert set(families) == set(FAMILIES) == {s.family for s in sweep_specs().values()}
    for name, family in families.items():
        assert family.name == name and family.specs and all(s.family == name for s in family.specs)


def test_an_undeclared_check_name_fails_at_import():
    with pytest.raises(ImportError):
        exec("from streamflow_ops.registry import KAFKA_CONSUMER_LAGG", {})
    with pytest.raises(KeyError, match="kafka.consumer_lagg"):
        registry.spec("kafka.consumer_lagg")
    with pytest.raises(ValueError, match="declared twice"):
        registry._spec("kafka.consumer_lag", "kafka", "x", "y")
    with pytest.raises(ValueError, match="unknown check family"):
        registry.register(registry.Family("kafak", lambda config, now: []))


def test_maintenance_capabilities_have_specs():
    operators = importlib.import_module("streamflow_ops.maintenance.operators")
    capabilities = {cls.capability for cls in vars(operators).values()
                    if isinstance(cls, type) and getattr(cls, "capability", "")}
    assert capabilities and all(f"maintenance.{c}" in registry.SPECS for c in capabilities)


def test_result_carries_the_first_step_only_for_a_bad_state():
    spec = registry.KAFKA_CONSUMER_LAG
    bad = spec.result(Status.WARNING, "lag 5,000", subject="g")
    assert bad.message == f"lag 5,000 - {spec.first_step}" and bad.runbook == spec.runbook
    assert "backpressure" in spec.first_step and "TaskManagers" in spec.first_step
    assert spec.result(Status.OK, "lag 5").message == "lag 5"
    assert spec.result(Status.CRITICAL, "x", step="do y").message == "x - do y"


def test_run_guarded_skips_without_connection_then_turns_a_crash_into_unknown(monkeypatch):
    specs = [registry.FLINK_JOB_RUNNING, registry.FLINK_TASKMANAGERS]
    config = load_config()
    monkeypatch.delenv("AIRFLOW_CONN_STREAMFLOW_FLINK", raising=False)
    skipped = registry.run_guarded(config, specs, lambda: pytest.fail("ran without a connection"))
    assert [(r.check_name, r.status) for r in skipped] == [(s.name, Status.SKIPPED) for s in specs]
    monkeypatch.setenv("AIRFLOW_CONN_STREAMFLOW_FLINK", '{"conn_type": "http", "host": "127.0.0.1"}')

    def crash():
        raise RuntimeError("boom")

    unknown = registry.run_guarded(config, specs, crash)
    assert [(r.check_name, r.status) for r in unknown] == [(s.name, Status.UNKNOWN) for s in specs]
    assert all("RuntimeError: boom" in r.message and r.runbook == s.runbook for r, s in zip(unknown, specs))
