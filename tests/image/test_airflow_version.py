"""One Airflow version: the Dockerfile's Astro Runtime build, the dev pin and the installed Airflow agree."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.image.astro_runtime import (
    BUNDLED_PROVIDERS,
    REPO,
    RUNTIME_AIRFLOW,
    dev_airflow_pin,
    dockerfile_runtime,
    pinned_version,
)
from tests.image.image_check import current_venv, runtime_constraints


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


def installed_versions(python: Path) -> dict[str, str]:
    """Distribution name (canonical) -> version, read from a venv's *.dist-info folders: no network."""
    found = {}
    for meta in python.parent.parent.glob("lib/python*/site-packages/*.dist-info/METADATA"):
        head = meta.read_text(errors="replace").split("\n\n", 1)[0]
        headers = dict(line.split(": ", 1) for line in head.splitlines() if ": " in line)
        found[canonicalize_name(headers["Name"])] = headers["Version"]
    return found


def conflicts(requirements: list[str], installed: dict[str, str]) -> list[str]:
    """The requirement lines the installed versions do not satisfy (missing counts as not satisfied)."""
    bad = []
    for line in requirements:
        req = Requirement(line)
        version = installed.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            bad.append(f"{line} (installed: {version})")
    return bad


def requirement_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith(("#", "-"))]


@pytest.fixture(scope="module")
def image_venv() -> Path:
    python = current_venv()
    assert python is not None, "the image-shaped venv is missing or stale: run `make image-check` (network once)"
    return python


def test_requirements_resolve_on_the_runtimes_bundled_providers(image_venv):
    """What the image build does with requirements.txt, checked offline in the venv `make image-check` built
    under the runtime's constraints: every pin installed as written, the bundled providers at the runtime's
    versions, and every installed package's own requirements met (`uv pip check` reads only metadata)."""
    installed = installed_versions(image_venv)
    wanted = requirement_lines((REPO / "requirements.txt").read_text()) + requirement_lines(runtime_constraints())
    assert conflicts(wanted, installed) == []
    check = subprocess.run([shutil.which("uv"), "pip", "check", "--offline", "--python", str(image_venv)],
                           check=False, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_newer_provider_would_not_fit_the_runtime(image_venv):
    # providers-http 6.3.0 needs common-compat>=1.17; the runtime bundles 1.15.0 (why http is pinned 6.0.4).
    installed = installed_versions(image_venv)
    compat = "apache-airflow-providers-common-compat"
    assert installed[compat] == BUNDLED_PROVIDERS[compat]
    assert conflicts(["apache-airflow-providers-common-compat>=1.17"], installed)
    assert conflicts(["apache-airflow-providers-http==6.3.0"], installed)
    assert conflicts(["no-such-package==1.0"], installed)


def test_pytest_timeout_is_in_the_image(image_venv):
    """pytest.ini sets `timeout`: without pytest-timeout `astro dev pytest` warns 'Unknown config option'."""
    assert "pytest-timeout" in installed_versions(image_venv)
    requirements = requirement_lines((REPO / "requirements.txt").read_text())
    assert "pytest-timeout" in {Requirement(line).name for line in requirements}
