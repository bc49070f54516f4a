"""Real-shaped API answers (Kubernetes, Airflow, Prometheus, Alertmanager, Grafana) for the fake far ends."""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).parent


@lru_cache(maxsize=None)
def _read(area: str, name: str):
    return json.loads((HERE / area / f"{name}.json").read_text())


def load(area: str, name: str):
    """A fresh copy of tests/fakes/payloads/<area>/<name>.json (tests may edit it)."""
    return copy.deepcopy(_read(area, name))
