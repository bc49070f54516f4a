"""The package's layers, declared once, and the AST check that keeps imports pointing down.

    DAGs (dags/*.py)                      wire only
      -> actions/orchestration            maintenance, backup, housekeeping, alerting, sweep, ...
        -> families                       kafka, flink, postgres, kubernetes, airflow_api, ...
          -> core                         config, results, store (audit trail), connections, ...

A module may import its own layer or any layer below it, never one above. A function-level import of
our own package hides the graph from a reader and from this test's eyes alike, so each one must say why
in a `# parse time:` (measured: keeps a DAG file's cold parse under budget) or `# cycle:` comment on the
import line or the line above it. Run as a script to print the import graph:
`.venv/bin/python -m tests.unit.test_layers`.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "plugins" / "streamflow_ops"
DAGS = ROOT / "dags"

# The one place the layers are defined: first segment below streamflow_ops -> layer. Higher is upper.
CORE, FAMILIES, ACTIONS, DAG_FILES = 0, 1, 2, 3
LAYER_NAMES = {CORE: "core", FAMILIES: "families", ACTIONS: "actions", DAG_FILES: "dags"}
LAYERS: dict[str, int] = {
    **dict.fromkeys(("__init__", "config", "results", "store", "sqlfiles", "timeutil", "connections",
                     "http_probe", "registry", "runbook", "report", "dag_defaults", "params"), CORE),
    **dict.fromkeys(("kafka", "flink", "postgres", "kubernetes", "airflow_api", "monitoring", "business"),
                    FAMILIES),
    **dict.fromkeys(("maintenance", "backup", "housekeeping", "alerting", "sweep", "sweep_tasks", "preflight",
                     "metrics", "remediation", "diagnosis", "review", "recovery"), ACTIONS),
}
REASONS = ("# parse time:", "# cycle:")


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    if not path.is_relative_to(package):
        return f"dags.{path.stem}"
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    if module.startswith("dags."):
        return DAG_FILES
    parts = module.split(".")
    segment = parts[1] if len(parts) > 1 else "__init__"
    if segment not in LAYERS:
        raise AssertionError(f"{module}: '{segment}' is in no layer; add it to LAYERS in {__file__}")
    return LAYERS[segment]


def sources(package: Path = PACKAGE, dags: Path = DAGS) -> list[Path]:
    return sorted(package.rglob("*.py")) + sorted(dags.glob("*.py"))


def own_imports(path: Path) -> list[tuple[str, int, bool, bool]]:
    """(imported module, line, function-level?, TYPE_CHECKING-only?) for every import of streamflow_ops."""
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[str, int, bool, bool]] = []

    def visit(node: ast.AST, in_function: bool, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                if child.module == "streamflow_ops" or child.module.startswith("streamflow_ops."):
                    if child.module == "streamflow_ops":  # `from streamflow_ops import kafka`
                        names = [f"streamflow_ops.{alias.name}" for alias in child.names]
                    else:
                        names = [child.module]
                    found.extend((name, child.lineno, in_function, type_only) for name in names)
            elif isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, in_function, type_only) for alias in child.names
                             if alias.name.split(".")[0] == "streamflow_ops")
            is_type_block = (isinstance(child, ast.If) and isinstance(child.test, ast.Name)
                             and child.test.id == "TYPE_CHECKING")
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)),
                  type_only or is_type_block)

    visit(tree, False, False)
    return found


def _has_reason(lines: list[str], lineno: int) -> bool:
    window = lines[max(lineno - 2, 0):lineno]  # the import line and the one above it
    return any(reason in line for line in window for reason in REASONS)


def graph(package: Path = PACKAGE, dags: Path = DAGS) -> tuple[list[str], list[str], int]:
    """(upward edges, unexplained function-level imports, all function-level imports of our package)."""
    upward, unexplained, function_level = [], [], 0
    for path in sources(package, dags):
        importer = _module_name(path, package)
        lines = path.read_text().splitlines()
        for imported, lineno, in_function, type_only in own_imports(path):
            where = f"{path.relative_to(package.parents[1])}:{lineno}"
            if not type_only and layer_of(imported) > layer_of(importer):
                upward.append(f"{where} {importer} ({LAYER_NAMES[layer_of(importer)]}) -> "
                              f"{imported} ({LAYER_NAMES[layer_of(imported)]})")
            if in_function:
                function_level += 1
                if not _has_reason(lines, lineno):
                    unexplained.append(f"{where} imports {imported} inside a function without a reason")
    return upward, unexplained, function_level


def test_every_package_module_is_in_a_layer():
    unplaced = [m for m in map(_module_name, sources()) if not m.startswith("dags.")
                and (m.split(".") + ["__init__"])[1] not in LAYERS]
    assert unplaced == []


FAMILY_FILES = {"__init__", "probes", "evaluators", "checks"}  # every family has these
FAMILY_EXTRAS = {"sensors", "triggers", "model"}  # where a family waits; kafka's shared offset dataclasses


def test_every_family_has_the_same_file_set():
    for family in sorted(name for name, layer in LAYERS.items() if layer == FAMILIES):
        files = {path.stem for path in (PACKAGE / family).glob("*.py")}
        assert FAMILY_FILES <= files <= FAMILY_FILES | FAMILY_EXTRAS, (family, sorted(files))


def test_no_import_points_to_a_higher_layer():
    upward, _, _ = graph()
    assert upward == [], "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_function_level_imports_of_our_package_say_why():
    _, unexplained, _ = graph()
    assert unexplained == [], "\n".join(unexplained)


def test_the_checker_sees_an_upward_and_an_unexplained_import(tmp_path):
    """The check itself can fail: a family module importing an action, lazily and without a reason."""
    package, dags = tmp_path / "plugins" / "streamflow_ops", tmp_path / "dags"
    (package / "kafka").mkdir(parents=True)
    dags.mkdir()
    (package / "kafka" / "lag.py").write_text("def f():\n    from streamflow_ops.maintenance import steps\n")
    (package / "maintenance.py").write_text(
        "def g():\n    # cycle: kafka imports us back\n    from streamflow_ops.kafka import lag\n")
    (dags / "window.py").write_text("from streamflow_ops.maintenance import steps\n")
    upward, unexplained, count = graph(package, dags)
    assert upward == ["plugins/streamflow_ops/kafka/lag.py:2 streamflow_ops.kafka.lag (families) -> "
                      "streamflow_ops.maintenance (actions)"]
    assert unexplained == ["plugins/streamflow_ops/kafka/lag.py:2 imports streamflow_ops.maintenance "
                           "inside a function without a reason"]
    assert count == 2


if __name__ == "__main__":
    upward_edges, unexplained_imports, total = graph()
    print(f"function-level imports of streamflow_ops: {total} ({len(unexplained_imports)} without a reason)")
    print(f"upward edges: {len(upward_edges)}")
    print("\n".join(upward_edges))
    print("\n".join(unexplained_imports))
