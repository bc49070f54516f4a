"""The typed config: runbook defaults, key-by-key overrides, and errors that name the key."""
from __future__ import annotations

import pytest

from streamflow_ops.config import ConfigError, load_config


def test_defaults_are_the_runbooks_numbers():
    cfg = load_config(None)
    assert cfg.retention.retention_days == 7
    assert (cfg.kafka.lag_warning, cfg.kafka.lag_critical) == (1_000, 10_000)
    assert (cfg.flink.checkpoint_warning_s, cfg.flink.checkpoint_critical_s) == (600, 1_800)
    assert cfg.flink.expected_taskmanagers == 2
    assert cfg.postgres_checks.connections_critical_pct == 95
    assert cfg.business.fraud_rate_critical == 0.20


def test_override_one_key_keeps_the_others():
    cfg = load_config('{"kafka": {"lag_warning": 500}, "warehouse": {"bronze_schema": "raw"}}')
    assert cfg.kafka.lag_warning == 500
    assert cfg.kafka.lag_critical == 10_000
    assert cfg.warehouse.bronze_schema == "raw"
    assert cfg.warehouse.silver_schema == "silver"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"kafka": {"lag_warnings": 5}}, "kafka.lag_warnings': unknown key"),
        ({"retention": {"retention_days": "seven"}}, "retention.retention_days"),
        ({"retention": {"retention_days": 0}}, "retention.retention_days"),
        ({"warehouse": {"bronze_schema": 'bronze"; drop table x; --'}}, "warehouse.bronze_schema': unsafe"),
        ({"vacuum": {"schemas": ["gold", "Gold Schema"]}}, "vacuum.schemas.1"),
        ({"kafka": {"lag_warning": 20_000}}, "lag_warning must be below lag_critical"),
        ({"nonsense": 1}, "'nonsense': unknown key"),
    ],
)
def test_bad_config_names_the_key(overrides, named):
    with pytest.raises(ConfigError) as err:
        load_config(overrides)
    assert named in str(err.value)
    assert "streamflow_ops_config" in str(err.value)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "42"])
def test_config_must_be_a_json_object(text):
    with pytest.raises(ConfigError, match="streamflow_ops_config"):
        load_config(text)
