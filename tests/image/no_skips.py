"""A test that cannot run here is a failure, not a skip: any skipped test fails the session.

Loaded by tests/conftest.py for every run (the full `make test` run and the image-shaped check alike).
Tests that do not belong to a layout are deselected by tests/conftest.py, never skipped.
"""
from __future__ import annotations

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped and exitstatus == pytest.ExitCode.OK:
        reporter.write_line(f"{len(skipped)} test(s) skipped: a test that cannot run here is a failure, "
                            "not a skip", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
