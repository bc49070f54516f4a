"""What the Dockerfile's Astro Runtime image carries, as far as Astronomer's published data says.

The Airflow version comes from two places that must agree: the Dockerfile's runtime tag (Astronomer's
build number, not Airflow's patch: 3.3-2 is Airflow 3.3.0) and the dev venv's pin in
requirements-dev.txt. This module reads both; test_airflow_version.py compares them and
image_check.py builds the image-shaped venv from them.
"""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Astro Runtime build -> Apache Airflow, from Astronomer's runtime feed (https://updates.astronomer.io/
# astronomer-runtime, `runtimeVersionsV3.<build>.metadata.airflowVersion`) as cut on 2026-09-25 into
# astronomer/astro-cli's pkg/runtimeversions/testdata/catalog.json (real entries; only 3.4-1, 3.5-1 and
# 3.6-1 there are synthetic): 3.3-1 and 3.3-2 are Airflow 3.3.0, 3.3-8 (released 2026-09-23, Pythons
# 3.12/3.13/3.14) is 3.3.2. The image carries Astronomer's build of that version (3.3.2+astro.N);
# `docker run --rm <image> airflow version` is the final word. Change this table and the Dockerfile together.
RUNTIME_AIRFLOW = {
    "3.3-1": "3.3.0",
    "3.3-2": "3.3.0",
    "3.3-8": "3.3.2",
}

# Providers the runtime bundles, at the versions Astronomer's provider reference lists for Astro
# Runtime 3.3-2 (the newest 3.3 build it lists; later 3.3 builds carry these or newer). The image
# installs requirements.txt under constraints that keep them, so requirements.txt must resolve on top.
BUNDLED_PROVIDERS = {
    "apache-airflow-providers-celery": "3.21.0",
    "apache-airflow-providers-common-compat": "1.15.0",
    "apache-airflow-providers-common-io": "1.8.0",
    "apache-airflow-providers-common-sql": "2.0.1",
    "apache-airflow-providers-elasticsearch": "6.7.0",
    "apache-airflow-providers-openlineage": "2.18.1",
    "apache-airflow-providers-smtp": "3.0.1",
    "apache-airflow-providers-standard": "1.15.0",
}

_FROM = re.compile(r"^FROM\s+astrocrpublic\.azurecr\.io/runtime:(?P<build>\d+\.\d+-\d+)"
                   r"(?:-python-(?P<python>\d+\.\d+))?\s*$", re.MULTILINE)


def dockerfile_runtime(dockerfile: Path = REPO / "Dockerfile") -> tuple[str, str | None]:
    """(runtime build, Python or None) from the Dockerfile's FROM line; a floating tag is refused."""
    match = _FROM.search(dockerfile.read_text())
    if match is None:
        raise ValueError(f"{dockerfile}: no `FROM astrocrpublic.azurecr.io/runtime:<X.Y-N>` line "
                         "(a floating tag like 3.3 names no Airflow version)")
    return match["build"], match["python"]


def pinned_version(package: str, requirements: Path) -> str:
    """The `package==X` pin in a requirements file (not following -r includes)."""
    pins = re.findall(rf"^{re.escape(package)}==(\S+)\s*$", requirements.read_text(), re.MULTILINE)
    if len(pins) != 1:
        raise ValueError(f"{requirements.name}: expected one `{package}==` pin, found {pins}")
    return pins[0]


def dev_airflow_pin() -> str:
    return pinned_version("apache-airflow", REPO / "requirements-dev.txt")
