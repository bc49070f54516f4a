"""Polling instead of sleeps: wait for a condition on a real service, with a timeout that names what was awaited."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(what: str, condition: Callable[[], Any], timeout: float = 90, every: float = 0.5) -> Any:
    """Poll until condition() is truthy and return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
