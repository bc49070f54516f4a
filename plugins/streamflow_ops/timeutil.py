"""Timestamps as the APIs write them (RFC 3339) and durations as people read them."""
from __future__ import annotations

from datetime import datetime, timezone


def parse_time(stamp: str | None) -> datetime | None:
    """An RFC 3339 / ISO 8601 timestamp as an aware datetime (naive ones are UTC); None stays None."""
    if not stamp:
        return None
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def utcnow(now: datetime | None = None) -> datetime:
    return now if now is not None else datetime.now(timezone.utc)


def human_duration(seconds: float) -> str:
    """45 s, 12 min, 3.5 h, 2.1 d."""
    seconds = max(seconds, 0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
