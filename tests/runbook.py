"""The runbook headings the tests check citations against: the repository's own index of them
(`streamflow_ops.runbook.INDEX`, names only). The runbook itself is not part of this repository."""
from __future__ import annotations

from streamflow_ops.runbook import ALERTS, HEADINGS, INDEX

__all__ = ["ALERTS", "HEADINGS", "INDEX"]
