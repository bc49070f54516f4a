"""docs/checks.md and docs/dags.md are what `python -m scripts.gen_docs` writes from the registry, the
config and the DAGs: a check, threshold, DAG or param added without regenerating fails here."""
from __future__ import annotations

import re

import pytest

from scripts import gen_docs
from streamflow_ops import registry
from streamflow_ops.config import StreamflowOpsConfig


def test_checks_md_is_current():
    assert gen_docs.CHECKS_MD.read_text() == gen_docs.checks_md(), "docs/checks.md is stale: run python -m scripts.gen_docs"


def test_dags_md_is_current():
    assert gen_docs.DAGS_MD.read_text() == gen_docs.dags_md(), "docs/dags.md is stale: run python -m scripts.gen_docs"


def test_checks_md_rows_follow_the_registry_and_config():
    # Read back independently of the generator: one row per declared check, each default from a fresh config.
    text = gen_docs.checks_md()
    rows = dict(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \| (.*)$", text, flags=re.MULTILINE))
    assert set(rows) == set(registry.SPECS)
    assert "`kafka.lag_critical` = 10,000" in rows["kafka.consumer_lag"]
    assert "`postgres_checks.backup_age_warning_h` = 26" in rows["postgres.backup_age"]
    config = StreamflowOpsConfig(kafka={"lag_critical": 20_000})
    assert "`kafka.lag_critical` = 20,000" in gen_docs._threshold(config, "kafka.lag_critical")


def test_a_new_check_makes_the_committed_table_stale(monkeypatch):
    monkeypatch.setitem(registry.SPECS, "kafka.new_check", registry.CheckSpec(
        "kafka.new_check", "kafka", registry.KAFKA_CLUSTER, "x", connection="kafka.conn_id"))
    assert gen_docs.CHECKS_MD.read_text() != gen_docs.checks_md()
    monkeypatch.setattr(gen_docs, "CHECKS_MD", gen_docs.CHECKS_MD)
    with pytest.raises(AssertionError):
        test_checks_md_is_current()


def test_a_dag_without_a_touches_entry_is_refused(monkeypatch):
    monkeypatch.delitem(gen_docs.TOUCHES, "gold_refresh")
    with pytest.raises(SystemExit, match="gold_refresh"):
        gen_docs.dags_md()
