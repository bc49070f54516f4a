"""The image-shaped check (`make image-check`, part of `make test`): what `astro dev pytest` and
`astro dev parse` would run, without Docker.

1. A second venv (.venv-image, rebuilt only when its inputs change) with what the Astro Runtime image
   has: the dev pin's Apache Airflow, the providers the runtime bundles (tests/image/astro_runtime.py),
   pytest, and requirements.txt on top, under the bundled versions as constraints (as the image
   installs it). No dev-only package: no sandbox services, playwright, prometheus_client, calfkit.
2. The project copied as the image build copies it: every file .dockerignore does not exclude.
3. There, with AIRFLOW_HOME and PYTHONPATH at the project (as in the image), `pytest tests/` (what
   `astro dev pytest` runs; tests/conftest.py collects only tests/dags in this layout) and
   `pytest .astro/test_dag_integrity_default.py` (what `astro dev parse` runs). Both must pass with
   at least one test each; a skipped test fails them (tests/image/no_skips.py).

Limits: the venv runs this machine's Python 3.11, while the runtime ships 3.12-3.14; and the bundled
versions are the newest Astronomer publishes for the 3.3 line, not necessarily the tag's own.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.image.astro_runtime import (
    BUNDLED_PROVIDERS,
    REPO,
    dev_airflow_pin,
    pinned_version,
)

VENV = REPO / ".venv-image"
PYTEST_PIN = pinned_version("pytest", REPO / "requirements-dev.txt")
ASTRO_RUNS = {
    "astro dev pytest": ["tests/"],
    "astro dev parse": [".astro/test_dag_integrity_default.py"],
}


class ImageCheckError(RuntimeError):
    """The project would not build or test in the Astro image; the message says where."""


def dockerignore_patterns(path: Path = REPO / ".dockerignore") -> list[str]:
    patterns = [line.strip() for line in path.read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    if any(p.startswith("!") for p in patterns):
        raise ImageCheckError(f"{path}: exception patterns (!) are not supported by this check")
    return [p.rstrip("/") for p in patterns]


def is_ignored(rel_path: str, patterns: list[str]) -> bool:
    """Docker's rule: a pattern excludes the path it matches and everything under it; `**/` any depth."""
    parts = rel_path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for pattern in patterns:
        candidates = [pattern[3:], "*/" + pattern[3:]] if pattern.startswith("**/") else [pattern]
        if any(fnmatch.fnmatchcase(prefix, c) for prefix in prefixes for c in candidates):
            return True
    return False


def copy_build_context(destination: Path, source: Path = REPO) -> list[str]:
    """Copy what `COPY . .` puts in the image; returns the top-level names copied."""
    patterns = dockerignore_patterns(source / ".dockerignore")
    for root, dirs, files in os.walk(source):
        rel_root = Path(root).relative_to(source).as_posix()
        prefix = "" if rel_root == "." else f"{rel_root}/"
        dirs[:] = [d for d in dirs if not is_ignored(prefix + d, patterns)]
        for name in files:
            rel_path = prefix + name
            if not is_ignored(rel_path, patterns):
                target = destination / rel_path
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(root) / name, target)
    return sorted(p.name for p in destination.iterdir())


def runtime_constraints() -> str:
    """The image's Airflow and bundled providers, as pip constraints."""
    pins = {"apache-airflow": dev_airflow_pin(), **BUNDLED_PROVIDERS}
    return "".join(f"{name}=={version}\n" for name, version in pins.items())


def venv_key() -> str:
    """What the image-shaped venv was built from: a change to any of it rebuilds the venv."""
    return hashlib.sha256("\n".join([runtime_constraints(), PYTEST_PIN, sys.version,
                                     (REPO / "requirements.txt").read_text()]).encode()).hexdigest()


def current_venv() -> Path | None:
    """The image-shaped venv's Python if it is built from today's inputs, else None (no network needed)."""
    python, stamp = VENV / "bin" / "python", VENV / ".image-check-key"
    return python if python.exists() and stamp.exists() and stamp.read_text() == venv_key() else None


def ensure_venv() -> Path:
    """The image-shaped venv, rebuilt only when requirements, bundled versions or pins change."""
    if (python := current_venv()) is not None:
        return python
    python, constraints, key = VENV / "bin" / "python", runtime_constraints(), venv_key()
    stamp = VENV / ".image-check-key"
    uv = shutil.which("uv")
    if uv is None:
        raise ImageCheckError("uv is missing: run `make venv` (it installs uv)")
    subprocess.run([uv, "venv", "-q", "--allow-existing", "--python", sys.executable, str(VENV)], check=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write(constraints)
    try:
        done = subprocess.run(
            [uv, "pip", "install", "-q", "--python", str(python), "--compile-bytecode",
             "-c", handle.name, f"apache-airflow=={dev_airflow_pin()}", f"pytest=={PYTEST_PIN}",
             *BUNDLED_PROVIDERS, "-r", str(REPO / "requirements.txt")],
            check=False, capture_output=True, text=True)
    finally:
        os.unlink(handle.name)
    if done.returncode != 0:
        raise ImageCheckError("requirements.txt does not install on top of the runtime's Airflow and "
                              f"bundled providers:\n{done.stderr.strip()}")
    stamp.write_text(key)
    return python


def run_in_layout(python: Path, layout: Path, args: list[str]) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "PYTHON", "STREAMFLOW_", "VIRTUAL_ENV"))}
    env.update({
        "AIRFLOW_HOME": str(layout), "PYTHONPATH": str(layout),  # as the runtime image sets them
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",  # as the Astro CLI's compose file sets it
        "PATH": f"{python.parent}:{env.get('PATH', '')}",
    })
    done = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          check=False, cwd=layout, env=env, capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout + done.stderr


def passed_count(output: str) -> int:
    match = re.search(r"(\d+) passed", output)
    return int(match[1]) if match else 0


def main() -> int:
    started = time.monotonic()
    try:
        python = ensure_venv()
        venv_s = time.monotonic() - started
        with tempfile.TemporaryDirectory(prefix="astro-image-") as tmp:
            layout = Path(tmp)
            copied = copy_build_context(layout)
            if (layout / "sandbox").exists():
                raise ImageCheckError(".dockerignore lets sandbox/ into the image")
            print(f"image-check: venv ready in {venv_s:.1f}s; image layout: {' '.join(copied)}")
            for command, args in ASTRO_RUNS.items():
                code, output = run_in_layout(python, layout, args)
                if code != 0 or passed_count(output) == 0 or "PytestConfigWarning" in output:
                    raise ImageCheckError(f"`{command}` fails in the image layout (exit {code}):\n"
                                          + "\n".join(output.splitlines()[-40:]))
                print(f"image-check: {command}: {passed_count(output)} passed")
    except ImageCheckError as exc:
        print(f"image-check: {exc}", file=sys.stderr)
        return 1
    print(f"image-check: ok in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
