"""The runbook heading ("Section > Heading" of RUNBOOK.md) a result of a check or action cites.

A lookup into `streamflow_ops.registry`, for callers that hold a name rather than its CheckSpec (names
built at run time, such as `maintenance.<capability>`). An undeclared name raises KeyError: there is
no generic fallback text to hide a typo.
"""
from __future__ import annotations

from streamflow_ops.registry import heading as section

__all__ = ["section"]
