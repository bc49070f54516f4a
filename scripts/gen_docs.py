"""Write the generated docs: docs/checks.md (registry + config) and docs/dags.md (the DAGs' own params).

    .venv/bin/python -m scripts.gen_docs            # rewrite both files
    .venv/bin/python -m scripts.gen_docs --check    # exit 1 naming the stale files, write nothing

Why generated: the thresholds live in plugins/streamflow_ops/config.py and the checks in registry.py; a
hand-kept copy goes stale the day someone adds a check. tests/unit/test_generated_docs.py fails when the
committed files differ from what this writes.
"""
from __future__ import annotations

import functools
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHECKS_MD = REPO / "docs" / "checks.md"
DAGS_MD = REPO / "docs" / "dags.md"
REGENERATE = "`.venv/bin/python -m scripts.gen_docs`"

# What each DAG reads and changes: the one hand-written column (a DAG missing here fails generation).
TOUCHES = {
    "maintenance_tasks": "bronze (delete), bronze/silver/gold (vacuum), gold views (refresh), backup folder or "
                         "CNPG `Backup`, task logs, Airflow metadata (pod); Slack",
    "bronze_retention": "`bronze.transactions` (delete, promoted rows only)",
    "postgres_vacuum": "tables of `vacuum.schemas` (VACUUM)",
    "gold_refresh": "gold materialized views (REFRESH)",
    "postgres_backup": "backup folder (`backup.folder`) or a CNPG `Backup`; a scratch database for verification",
    "postgres_backup_verify": "pending backups in `backup.folder` (manifest, a failed one removed); a scratch database",
    "airflow_housekeeping": "task logs on each worker queue; Airflow metadata through `airflow db clean` in a pod",
    "platform_health_sweep": "reads every connection; writes `ops.health_check_results`, `ops.alert_state`; "
                             "Slack, PagerDuty, Pushgateway",
    "remediate_postgres_connections": "PostgreSQL sessions (`pg_terminate_backend`), after approval",
    "remediate_flink_taskmanagers": "FlinkDeployment `spec.taskManager.replicas` or the taskmanager Deployment, "
                                    "after approval",
    "remediate_flink_restart": "the Flink job (savepoint, restart), after approval",
    "remediate_restart_workload": "one allow-listed Deployment/StatefulSet (rollout restart), after approval",
    "recover_bronze": "reads `transactions.raw` (no consumer group); inserts missing `bronze.transactions` rows",
    "restore_drill": "restores backups into a scratch database or CNPG `Cluster`, deleted afterwards",
    "weekly_review": "reads `ops`, silver and Prometheus; writes `ops.weekly_review`, report files; Slack",
}


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _config_value(config, key: str) -> Any:
    value = config
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _threshold(config, key: str) -> str:
    value = _config_value(config, key)
    if isinstance(value, (list, dict)):
        return f"`{key}` (list, {len(value)} entries)"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1_000:
        value = f"{value:,}"
    return f"`{key}` = {value}"


def checks_md() -> str:
    """Every check and maintenance verdict of the registry, with the config keys and defaults it judges by."""
    from streamflow_ops import registry
    from streamflow_ops.config import StreamflowOpsConfig

    config = StreamflowOpsConfig()
    lines = [
        "# Checks and thresholds",
        "",
        f"Generated from `plugins/streamflow_ops/registry.py` and `config.py` by {REGENERATE}; do not edit.",
        "A threshold is a key of the Variable `streamflow_ops_config` (default shown). Status vocabulary, worst "
        "first: `critical`, `warning`, `unknown` (the probe failed), `ok`, `skipped` (no connection).",
        "",
    ]
    for title, in_sweep in (("Health sweep (`platform_health_sweep`)", True),
                            ("Maintenance steps (`maintenance_tasks` report)", False)):
        lines += [f"## {title}", "", "| check | connection | thresholds (default) | runbook | alert |",
                  "|---|---|---|---|---|"]
        for spec in registry.SPECS.values():
            if spec.in_sweep is not in_sweep:
                continue
            conn = f"`{spec.conn_id(config)}`" if spec.connection else ""
            bands = "<br>".join(_threshold(config, key) for key in spec.thresholds)
            lines.append(f"| `{spec.name}` | {conn} | {_cell(bands)} | {_cell(spec.runbook)} | {spec.alert or ''} |")
        lines.append("")
    return "\n".join(lines)


@functools.cache
def _dagbag():
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
    # parse time: Airflow is imported only when the DAG catalogue is generated
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def _param(name: str, param) -> str:
    schema = dict(param.schema)
    kind = schema.get("type", "any")
    kind = "/".join(kind) if isinstance(kind, list) else kind
    facts = [f"`{name}` ({kind}"]
    if param.has_value:
        facts.append(f"default `{json.dumps(param.value)}`")
    if "minimum" in schema or "maximum" in schema:
        facts.append(f"{schema.get('minimum', '')}..{schema.get('maximum', '')}")
    if "enum" in schema:
        facts.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"] if v is not None))
    return ", ".join(facts) + ")"


def _schedule(schedule) -> str:
    """A cron or preset in code; a data-aware schedule as the assets it waits for."""
    if schedule is None:
        return "manual"
    if isinstance(schedule, str):
        return f"`{schedule}`"
    assets = schedule if isinstance(schedule, (list, tuple)) else [schedule]
    return "on asset " + ", ".join(f"`{getattr(asset, 'name', None) or asset}`" for asset in assets)


def _citations(doc: str) -> list[str]:
    """The runbook headings (or, quoted, whole sections) a DAG's doc cites."""
    from streamflow_ops.runbook import HEADINGS, INDEX

    flat = re.sub(r"\s+", " ", doc or "")
    return [h for h in sorted(HEADINGS) if h in flat] + [s for s in INDEX if f'"{s}"' in flat]


def dags_md(bag=None) -> str:
    """One row per DAG: schedule, params with defaults and bounds, what it touches, the headings its doc cites."""
    bag = bag or _dagbag()
    if bag.import_errors:
        raise SystemExit("DAG import errors: " + "; ".join(f"{Path(path).name}: {error.strip().splitlines()[-1]}"
                                                            for path, error in bag.import_errors.items()))
    missing = sorted(set(bag.dags) - set(TOUCHES))
    if missing:
        raise SystemExit(f"add what these DAGs touch to TOUCHES in scripts/gen_docs.py: {missing}")
    lines = [
        "# DAG catalogue",
        "",
        f"Generated from the DAGs themselves (`dags/`) by {REGENERATE}; do not edit. Every DAG is triggerable "
        "from the UI; its trigger form shows the same params with their descriptions, and its Docs tab says more.",
        "",
        "| dag_id | schedule | params | touches | runbook |",
        "|---|---|---|---|---|",
    ]
    for dag_id in sorted(bag.dags):
        dag = bag.dags[dag_id]
        params = "<br>".join(_param(name, dag.params.get_param(name)) for name in dag.params)
        schedule = _schedule(dag.schedule)
        cites = "<br>".join(_citations(dag.doc_md)) or ""
        lines.append(f"| `{dag_id}` | {schedule} | {_cell(params)} | {_cell(TOUCHES[dag_id])} | {_cell(cites)} |")
    lines.append("")
    return "\n".join(lines)


def generated() -> dict[Path, str]:
    return {CHECKS_MD: checks_md(), DAGS_MD: dags_md()}


def main(argv: list[str]) -> int:
    stale = []
    for path, text in generated().items():
        if not path.exists() or path.read_text() != text:
            stale.append(path.relative_to(REPO).as_posix())
            if "--check" not in argv:
                path.write_text(text)
    if "--check" in argv and stale:
        print(f"stale: {', '.join(stale)}; run {REGENERATE}", file=sys.stderr)
        return 1
    print("written: " + (", ".join(stale) or "nothing (up to date)"))
    return 0


if __name__ == "__main__":
    sys.path[:0] = [str(REPO), str(REPO / "plugins")]
    raise SystemExit(main(sys.argv[1:]))
