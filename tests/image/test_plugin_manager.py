"""The package under plugins/ is imported by name, never loaded by Airflow's plugin manager.

Airflow 3.3's plugin manager (airflow.plugins_manager for the scheduler, API server and DAG processor;
airflow.sdk.plugins_manager in every task process, via integrate_macros_plugins() at task start)
executes every .py under the plugins folder that .airflowignore does not exclude, as a top-level module
named after the file stem. plugins/.airflowignore excludes streamflow_ops/, so: no module of ours
shadows a real one (the PagerDuty provider does `import pagerduty`), and a task start pays nothing
for our package. Each check runs in a fresh interpreter, as an Airflow component would.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / "plugins"
PACKAGE = PLUGINS / "streamflow_ops"
# Generous on purpose: the structure assertions say the plugin manager ran none of our files; this only
# catches an entry point that imports something heavy (a provider's client: hundreds of ms).
LOAD_BUDGET_MS = 500

# Runs in a fresh interpreter whose cwd is not the repository, with no PYTHONPATH: plugins/ reaches
# sys.path only the way Airflow puts it there (airflow.settings), as in the triggerer.
_PROBE = r"""
import importlib, json, sys, time
import airflow.sdk  # noqa: F401  (what a task process has imported before its first task starts)

timings = {}
from airflow.sdk import plugins_manager as sdk_plugins
started = time.perf_counter()
sdk_plugins.integrate_macros_plugins()
timings["sdk_integrate_macros_plugins"] = (time.perf_counter() - started) * 1000
from airflow.sdk.listener import get_listener_manager
sdk_plugins.integrate_listener_plugins(get_listener_manager())
sdk_plugins.get_hook_lineage_readers_plugins()

from airflow import plugins_manager as core_plugins
started = time.perf_counter()
core_plugins.ensure_plugins_loaded()
timings["core_ensure_plugins_loaded"] = (time.perf_counter() - started) * 1000
core_plugins.integrate_macros_plugins()
core_plugins.get_timetables_plugins()
core_plugins.get_fastapi_plugins()
core_plugins.get_priority_weight_strategy_plugins()

plugins_folder = sys.argv[1]
loaded_from_folder = sorted(
    name for name, module in list(sys.modules.items())
    if (getattr(module, "__file__", None) or "").startswith(plugins_folder + "/")
)
pagerduty = sys.modules.get("pagerduty")
result = {
    "timings_ms": timings,
    # Plugins found in the plugins folder (providers' entry-point plugins are not ours to judge).
    "folder_plugins": sorted(
        str(p.source) for p in [*sdk_plugins._get_plugins()[0], *core_plugins._get_plugins()[0]]
        if type(p.source).__name__ == "PluginsDirectorySource"
    ),
    "import_errors": {**sdk_plugins._get_plugins()[1], **core_plugins.get_import_errors()},
    "modules_from_plugins_folder": loaded_from_folder,
    "pagerduty_file": getattr(pagerduty, "__file__", None),
    "plugins_folder_on_sys_path": plugins_folder in sys.path,
}
# The triggerer imports a trigger by its classpath; every trigger module of ours must resolve.
triggers = {}
for dotted in sys.argv[2:]:
    module = importlib.import_module(dotted)
    triggers[dotted] = module.__file__
result["trigger_modules"] = triggers
print(json.dumps(result))
"""


def _trigger_modules() -> list[str]:
    found = [p for p in PACKAGE.rglob("*.py") if "BaseTrigger" in p.read_text()]
    assert found, "no trigger module found under plugins/streamflow_ops"
    return [".".join(p.relative_to(PLUGINS).with_suffix("").parts) for p in sorted(found)]


def _run_airflow_python(tmp_path: Path, plugins_folder: Path, code: str, *args: str,
                        **airflow_env: str) -> str:
    """Run code in a fresh interpreter configured like an Airflow component; return its last line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "PYTHON"))}
    env.update(airflow_env)
    env.update({
        "AIRFLOW_HOME": str(tmp_path / "airflow_home"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder),
        "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    done = subprocess.run([sys.executable, "-c", code, *args], check=False, cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> dict:
    """What one fresh Airflow-configured interpreter saw after every plugin entry point ran."""
    tmp_path = tmp_path_factory.mktemp("plugin_probe")
    return json.loads(_run_airflow_python(tmp_path, PLUGINS, _PROBE, str(PLUGINS), *_trigger_modules()))


def test_plugin_manager_loads_nothing_of_ours_and_is_fast(probe):
    result = probe
    print("plugin loading (ms):", result["timings_ms"])
    assert result["modules_from_plugins_folder"] == [], "the plugin manager executed our files"
    assert result["pagerduty_file"] is None or not result["pagerduty_file"].startswith(str(PLUGINS))
    assert result["folder_plugins"] == [] and result["import_errors"] == {}
    for entry_point, elapsed_ms in result["timings_ms"].items():
        assert elapsed_ms < LOAD_BUDGET_MS, f"{entry_point} took {elapsed_ms:.1f} ms"


def test_every_component_still_imports_the_package_by_name(probe):
    """plugins/ is on sys.path through airflow.settings; the triggerer resolves our trigger classpaths."""
    result = probe
    assert result["plugins_folder_on_sys_path"]
    assert set(result["trigger_modules"]) == set(_trigger_modules())
    for dotted, path in result["trigger_modules"].items():
        assert path.startswith(str(PACKAGE)), f"{dotted} resolved to {path}, not our package"


def test_without_the_ignore_file_the_plugin_manager_would_hijack_names(tmp_path):
    """The check above can fail: a copy of plugins/ without .airflowignore shadows `pagerduty`."""
    copy = tmp_path / "plugins"
    shutil.copytree(PLUGINS, copy, ignore=shutil.ignore_patterns(".airflowignore", "__pycache__"))
    code = ("import sys, airflow.sdk\nfrom airflow.sdk.plugins_manager import integrate_macros_plugins\n"
            "integrate_macros_plugins()\nprint(getattr(sys.modules.get('pagerduty'), '__file__', None))")
    loaded = _run_airflow_python(tmp_path, copy, code)
    assert loaded == str(copy / "streamflow_ops" / "alerting" / "pagerduty.py")


def test_the_ignore_pattern_also_holds_with_regexp_ignore_syntax(tmp_path):
    """The scheduler's plugin manager reads .airflowignore with [core] dag_ignore_file_syntax."""
    code = ("import sys\nfrom airflow import plugins_manager\nplugins_manager.ensure_plugins_loaded()\n"
            "print(sorted(n for n, m in list(sys.modules.items())"
            " if (getattr(m, '__file__', None) or '').startswith(sys.argv[1])))")
    loaded = _run_airflow_python(tmp_path, PLUGINS, code, str(PLUGINS),
                                 AIRFLOW__CORE__DAG_IGNORE_FILE_SYNTAX="regexp")
    assert loaded == "[]"
