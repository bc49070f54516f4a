"""Pure validation of maintenance params: bad input is refused before any SQL, naming the param."""
from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from typing import Any

_IDENT = r"[a-z_][a-z0-9_]{0,62}"
IDENTIFIER = re.compile(rf"^{_IDENT}$")  # one unquoted-safe name, e.g. a schema
QUALIFIED_TABLE = re.compile(rf"^({_IDENT})\.({_IDENT})$")


class ParamError(ValueError):
    """A param value that retrying cannot fix; the message starts with the param's name."""

    def __init__(self, param: str, problem: str):
        super().__init__(f"param '{param}': {problem}")
        self.param = param


def rendered(value: Any) -> Any:
    """An operator argument after Jinja rendering: "7", "True", "['gold.x']" back to the Python value.

    Jinja renders every template to a string (unless the DAG renders native objects), so a templated
    argument such as retention_days="{{ params.days }}" arrives as "7". Only operator arguments go through
    here; a run's params are typed by their schema and judged strictly (the string "7" is refused).
    A string that is not a Python literal stays a string, for the strict checks to refuse.
    """
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        return value


def int_param(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(name, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ParamError(name, f"must be between {low} and {high}, got {value}")
    return value


def bool_param(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ParamError(name, f"must be true or false, got {value!r}")
    return value


def table_list(name: str, value: Any, schemas: list[str]) -> list[tuple[str, str]]:
    """'schema.table' strings -> (schema, table), each a safe identifier inside the allowed schemas."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise ParamError(name, f"must be a list of 'schema.table' names, got {value!r}")
    tables: list[tuple[str, str]] = []
    for item in value:
        match = QUALIFIED_TABLE.match(item) if isinstance(item, str) else None
        if match is None:
            raise ParamError(name, f"{item!r} is not a plain 'schema.table' name "
                                   f"(lower-case letters, digits and _ only)")
        if match[1] not in schemas:
            raise ParamError(name, f"{item!r} is outside the configured schemas {schemas}")
        if (match[1], match[2]) not in tables:
            tables.append((match[1], match[2]))
    return tables


def undeclared_keys(conf: Mapping[str, Any] | None, declared: Iterable[str]) -> list[str]:
    """The keys of a run's conf that are not params of its DAG (sorted): they would reach no form, no
    schema and no step's checks, e.g. {"full": true, "tables": [...]} given to a DAG that has neither."""
    return sorted(set(conf or {}) - set(declared))
