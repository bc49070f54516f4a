"""The no-skips rule fails a run with a skipped test and leaves a clean run alone."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.image.astro_runtime import REPO


def _pytest(tmp_path, body: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_sample.py").write_text(body)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.image.no_skips", "-p", "no:cacheprovider",
                           "-q", "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path)],
                          check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_skipped_test_fails_the_run(tmp_path):
    done = _pytest(tmp_path, "import pytest\n\ndef test_ok():\n    pass\n\n"
                             "def test_skipped():\n    pytest.skip('no service here')\n")
    assert done.returncode == 1, done.stdout
    assert "1 test(s) skipped: a test that cannot run here is a failure" in done.stdout


def test_a_clean_run_passes(tmp_path):
    done = _pytest(tmp_path, "def test_ok():\n    pass\n")
    assert done.returncode == 0, done.stdout
    assert "1 passed" in done.stdout
