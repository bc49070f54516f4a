"""The benchmarks: `python -m bench [name ...]` (see __main__)."""
from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def write_results(name: str, data: dict, markdown: str) -> None:
    """A benchmark's record: bench/results/<name>.json (the figures) and <name>.md (the report), printed too."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    print(markdown)
