"""SQL lives in include/sql/. Identifiers in a file are `{placeholders}` filled with sql.Identifier.

Values are ordinary psycopg parameters (`%(name)s`). A literal brace in a file is written `{{` `}}`.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from psycopg import sql


def sql_dir() -> Path:
    """include/sql beside plugins/ (Astro layout), or STREAMFLOW_OPS_SQL_DIR."""
    override = os.environ.get("STREAMFLOW_OPS_SQL_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "include" / "sql"


@lru_cache(maxsize=None)
def _text(name: str) -> str:
    return (sql_dir() / name).read_text()


def load_sql(name: str, **identifiers: str | tuple[str, ...] | sql.Composable) -> sql.Composed:
    """The file's statement with each {key} replaced by a quoted identifier (a tuple means schema.name).

    A value that is already a psycopg Composable (e.g. a fixed keyword list) is used as it is.
    """
    quoted = {
        key: value if isinstance(value, sql.Composable)
        else sql.Identifier(*value) if isinstance(value, tuple) else sql.Identifier(value)
        for key, value in identifiers.items()
    }
    return sql.SQL(_text(name)).format(**quoted)


def dict_rows(conn, name: str, params: dict | None = None, **identifiers) -> list[dict]:
    """Run include/sql/<name> and return its rows as dicts (column name -> value)."""
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(load_sql(name, **identifiers), params or {}).fetchall()
