"""`make bench`: run every benchmark module in bench/ (or the ones named) and list the result files.

Each module exposes main(), which starts what it needs, writes bench/results/<name>.md and .json,
and stops what it started.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).parent


def main(argv: list[str]) -> int:
    names = argv or sorted(m.name for m in pkgutil.iter_modules([str(BENCH_DIR)]) if not m.name.startswith("_"))
    failed = []
    for name in names:
        print(f"== bench {name} ==", flush=True)
        try:
            importlib.import_module(f"bench.{name}").main()
        except Exception as exc:  # noqa: BLE001 - report and go on to the next benchmark
            print(f"bench {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed.append(name)
    print("results:", *sorted(str(p) for p in (BENCH_DIR / "results").glob("*.md")), sep="\n  ")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH_DIR.parent / "plugins"))
    sys.exit(main(sys.argv[1:]))
