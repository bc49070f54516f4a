"""What a backup run was asked to do, and whether it can be done: refused before any work otherwise.

Method when neither the `method` param nor `backup.method` names one ("auto"):
- `cnpg` (the full backup, runbook "Backup and Recovery") whenever the Kubernetes connection is defined and
  no `schemas` param asks for a logical backup;
- without Kubernetes and without a `schemas` param: the standalone fallback, `pg_dump` of bronze, silver
  AND gold (SPEC "Backups": bronze is the archive, the last copy of anything older than Kafka's 3 days);
- with a `schemas` param: `gold_export` when it is exactly the gold schema (its rows as data, no silver),
  and `pg_dump` of the schemas for anything else.
`backup.schemas` is what a method named by param or config backs up when no `schemas` param is given.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from streamflow_ops.backup.folder import BackupInputError, check_folder_writable
from streamflow_ops.config import StreamflowOpsConfig
from streamflow_ops.connections import connection_defined
from streamflow_ops.params import IDENTIFIER
from streamflow_ops.sqlfiles import load_sql

METHODS = ("cnpg", "pg_dump", "gold_export")
FILE_METHODS = ("pg_dump", "gold_export")


@dataclass(frozen=True)
class BackupRequest:
    method: str
    schemas: tuple[str, ...]
    verify: bool
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "schemas": list(self.schemas), "verify": self.verify,
                "dry_run": self.dry_run}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BackupRequest":
        return cls(data["method"], tuple(data["schemas"]), data["verify"], data["dry_run"])


def choose_method(param_method: str | None, config_method: str, schemas_param: bool, schemas: list[str],
                  gold_schema: str, kubernetes_defined: bool) -> str:
    """The backup method (see the module docstring). Pure."""
    if param_method:
        return param_method
    if config_method != "auto":
        return config_method
    if not schemas_param:
        return "cnpg" if kubernetes_defined else "pg_dump"
    return "gold_export" if schemas == [gold_schema] else "pg_dump"


def fallback_schemas(config: StreamflowOpsConfig) -> list[str]:
    """What the standalone fallback dumps: the whole warehouse, bronze (the archive), silver and gold."""
    wh = config.warehouse
    return list(dict.fromkeys([wh.bronze_schema, wh.silver_schema, wh.gold_schema]))


def resolve_request(params: Mapping[str, Any], config: StreamflowOpsConfig,
                    kubernetes_defined: bool | None = None) -> BackupRequest:
    """Params win over config; an absent or null param means "the config's value"."""
    schemas = params.get("schemas") or list(config.backup.schemas)
    if isinstance(schemas, str) or not all(isinstance(s, str) for s in schemas):
        raise BackupInputError(f"schemas: expected a list of schema names, got {schemas!r}")
    bad = [s for s in schemas if not IDENTIFIER.match(s)]
    if bad:
        raise BackupInputError(f"schemas: unsafe or invalid schema name(s) {bad} "
                               f"(allowed: lower-case letters, digits, underscore)")
    schemas = list(dict.fromkeys(schemas))
    if params.get("method") and params["method"] not in METHODS:
        raise BackupInputError(f"method: unknown backup method {params['method']!r}; use one of {', '.join(METHODS)}")
    if kubernetes_defined is None:
        kubernetes_defined = connection_defined(config.kubernetes.conn_id)
    method = choose_method(params.get("method"), config.backup.method, bool(params.get("schemas")), schemas,
                           config.warehouse.gold_schema, kubernetes_defined)
    if method == "pg_dump" and not params.get("method") and config.backup.method == "auto" \
            and not params.get("schemas"):
        schemas = fallback_schemas(config)
    verify = params.get("verify")
    return BackupRequest(method=method, schemas=tuple(schemas), verify=True if verify is None else bool(verify),
                         dry_run=bool(params.get("dry_run", False)))


def check_file_backup_ready(request: BackupRequest, config: StreamflowOpsConfig, conn) -> list[str]:
    """Binaries, folder and schemas are usable; returns the schemas to dump (pg_dump: with dependencies)."""
    cfg = config.backup
    if request.method == "pg_dump":
        for tool in ("pg_dump", "pg_restore"):
            if not os.access(Path(cfg.pg_bin_dir) / tool, os.X_OK):
                raise BackupInputError(f"backup.pg_bin_dir: {tool} not found or not executable in {cfg.pg_bin_dir}")
    check_folder_writable(cfg.folder)
    missing = [r[0] for r in conn.execute(load_sql("backup_missing_schemas.sql"),
                                          {"schemas": list(request.schemas)}).fetchall()]
    if missing:
        raise BackupInputError(f"schemas: schema(s) {missing} do not exist in the warehouse "
                               f"({config.warehouse.conn_id})")
    if request.method == "gold_export":  # rows as data: needs nothing outside its own schemas
        return list(request.schemas)
    dependencies = dependency_schemas(conn, list(request.schemas))
    if dependencies and not cfg.include_dependencies:
        raise BackupInputError(
            f"schemas: {list(request.schemas)} read from {dependencies} (views, materialized views or "
            f"foreign keys); a dump without them cannot be restored. Add them to schemas, set "
            f"backup.include_dependencies=true, or use method gold_export (rows as data)")
    return [*request.schemas, *dependencies]


def dependency_schemas(conn, schemas: list[str]) -> list[str]:
    """Schemas outside `schemas` that their objects need, followed transitively."""
    found: list[str] = []
    frontier = list(schemas)
    while True:
        rows = conn.execute(load_sql("backup_dependencies.sql"), {"schemas": frontier + found}).fetchall()
        new = [r[0] for r in rows if r[0] not in found and r[0] not in frontier]
        if not new:
            return found
        found += new


def check_cnpg_ready(config: StreamflowOpsConfig) -> None:
    """The Kubernetes connection exists and the backup method is complete, before creating anything."""
    conn_id = config.kubernetes.conn_id
    if not connection_defined(conn_id):
        raise BackupInputError(f"method: 'cnpg' needs the Kubernetes connection '{conn_id}' "
                               f"(kubernetes.conn_id), which is not defined")
    if config.backup.cnpg_backup_method == "plugin" and not config.backup.cnpg_plugin_name:
        raise BackupInputError("backup.cnpg_plugin_name: required when backup.cnpg_backup_method is 'plugin'")
