"""One Airflow version: the Dockerfile's Astro Runtime build, the dev pin and the installed Airflow agree."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.image.astro_runtime import (
    BUNDLED_PROVIDERS,
    REPO,
    RUNTIME_AIRFLOW,
    dev_airflow_pin,
    dockerfile_runtime,
    pinned_version,
)
from tests.image.image_check import runtime_constraints


def test_dockerfile_runtime_carries_the_dev_venvs_airflow():
    import airflow

    build, _ = dockerfile_runtime()
    assert build in RUNTIME_AIRFLOW, f"Dockerfile names runtime {build}, whose Airflow version is not recorded"
    assert RUNTIME_AIRFLOW[build] == dev_airflow_pin() == airflow.__version__


def test_requirements_txt_leaves_airflow_and_the_bundled_providers_to_the_image():
    """The image decides Airflow and its bundled providers; pinning them here fails its constraints."""
    names = {re.split(r"[=<>!~\[ ;]", line, maxsplit=1)[0].lower()
             for line in (REPO / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith(("#", "-"))}
    assert names, "requirements.txt lists nothing"
    assert not names & ({"apache-airflow", "apache-airflow-core", "apache-airflow-task-sdk"} | set(BUNDLED_PROVIDERS))


def test_dockerfile_check_refuses_a_floating_or_foreign_tag(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM astrocrpublic.azurecr.io/runtime:3.3\n")
    with pytest.raises(ValueError, match="floating tag"):
        dockerfile_runtime(dockerfile)
    dockerfile.write_text("FROM astrocrpublic.azurecr.io/runtime:3.3-8-python-3.12\n")
    assert dockerfile_runtime(dockerfile) == ("3.3-8", "3.12")


def test_pinned_version_needs_exactly_one_pin(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("apache-airflow==3.3.2\napache-airflow-providers-http==6.0.4\n")
    assert pinned_version("apache-airflow", requirements) == "3.3.2"
    requirements.write_text("apache-airflow>=3.3\n")
    with pytest.raises(ValueError, match="expected one"):
        pinned_version("apache-airflow", requirements)


def _resolves_on_the_runtime(tmp_path, requirements: str) -> subprocess.CompletedProcess:
    (tmp_path / "constraints.txt").write_text(runtime_constraints())
    (tmp_path / "requirements.txt").write_text(requirements)
    return subprocess.run([shutil.which("uv"), "pip", "compile", "-q", "--python-version", "3.11",
                           "-c", "constraints.txt", "requirements.txt"],
                          check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_requirements_resolve_on_the_runtimes_bundled_providers(tmp_path):
    """What the image build does with requirements.txt; the dev venv's newer pins would not resolve."""
    ours = _resolves_on_the_runtime(tmp_path, (REPO / "requirements.txt").read_text())
    assert ours.returncode == 0, ours.stderr
    newer = _resolves_on_the_runtime(tmp_path, "apache-airflow-providers-http==6.3.0\n")
    assert newer.returncode != 0 and "apache-airflow-providers-common-compat" in newer.stderr
