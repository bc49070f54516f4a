"""The weekly review's sections from plain rows and series (pure: no I/O, every number testable by hand).

Each function takes what a probe read and returns the JSON-safe section the report stores. The alert
history is counted from the stored sweep results with the alerting rules' own definitions (a change is
what Slack hears, a turn to critical is what PagerDuty is paged for, flapping is `flips` over the last
`flap_window` answers): `ops.alert_state` keeps the present, not a delivery log, so the week is replayed.
"""
from __future__ import annotations

import math
import statistics
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Sequence

from streamflow_ops.alerting.state import flips
from streamflow_ops.kafka.model import OffsetSample

PROBLEMS = ("warning", "critical")
DAY_S = 86400.0


@dataclass(frozen=True)
class Answer:
    """One answered (ok/warning/critical) result of ops.health_check_results."""

    check_name: str
    subject: str
    checked_at: datetime
    status: str


def alert_history(answers: Iterable[Answer], states: Iterable[dict], since: datetime, until: datetime,
                  flap_threshold: int, flap_window: int, top_n: int) -> dict[str, Any]:
    """Per check: changes told to Slack, pages (turns to critical), incidents still open, median time from
    a problem's start to the ok that ended it (resolutions inside the week), subjects that flapped.
    `answers` may reach back before `since`: those only set where each subject stood when the week began."""
    per_check: dict[str, dict[str, Any]] = defaultdict(lambda: {"slack_messages": 0, "pages_sent": 0, "resolved": 0,
                                                                "open_incidents": 0, "flapping": set(),
                                                                "_durations": []})
    by_subject: dict[tuple[str, str], list[Answer]] = defaultdict(list)
    for answer in answers:
        by_subject[(answer.check_name, answer.subject)].append(answer)
    for (check, subject), rows in by_subject.items():
        entry, previous, problem_since, incident = per_check[check], None, None, False
        recent: deque[str] = deque(maxlen=flap_window)
        for row in sorted(rows, key=lambda r: r.checked_at):
            if row.checked_at >= until:
                break
            in_week = row.checked_at >= since
            told = previous or "ok"
            entry["slack_messages"] += in_week and row.status != told
            # PagerDuty: triggered when a check turns critical, open until it answers ok (a de-escalation
            # to warning keeps the incident open, so a second critical is not a second page).
            entry["pages_sent"] += in_week and row.status == "critical" and not incident
            incident = (incident or row.status == "critical") and row.status != "ok"
            if row.status in PROBLEMS and told == "ok":
                problem_since = row.checked_at
            elif row.status == "ok" and told in PROBLEMS:
                if in_week and problem_since is not None:
                    entry["_durations"].append((row.checked_at - problem_since).total_seconds())
                    entry["resolved"] += 1
                problem_since = None
            recent.append(row.status)
            if in_week and flips(list(recent)) > flap_threshold:
                entry["flapping"].add(subject)
            previous = row.status
    for state in states:
        entry = per_check[state["check_name"]]
        entry["open_incidents"] += bool(state["incident_open"])
        if state["flapping"]:
            entry["flapping"].add(state["subject"])
    checks = []
    for check, entry in sorted(per_check.items()):
        durations = entry.pop("_durations")
        checks.append({"check_name": check, **entry, "flapping": sorted(entry["flapping"]),
                       "median_time_to_resolve_s": statistics.median(durations) if durations else None})
    noisy = sorted((c for c in checks if c["slack_messages"] or c["pages_sent"]),
                   key=lambda c: (-(c["slack_messages"] + c["pages_sent"]), c["check_name"]))
    return {"checks": checks, "noisiest": [c["check_name"] for c in noisy[:top_n]],
            "totals": {k: sum(c[k] for c in checks) for k in ("slack_messages", "pages_sent", "open_incidents")}}


def fraud_rate(total: int, flagged: int) -> dict[str, Any]:
    return {"transactions": total, "flagged": flagged, "rate": flagged / total if total else None}


def volume_note(rates: dict[str, dict[str, Any]]) -> str | None:
    """Said when one week holds less than half the other's transactions: a rule's change may then be the
    data (an outage, a retention gap, a fresh deploy) rather than the rule."""
    this, last = rates["this_week"]["transactions"], rates["last_week"]["transactions"]
    if min(this, last) >= max(this, last) / 2:
        return None
    return (f"last week holds {last:,} transactions against {this:,} this week: a rule's change may reflect "
            f"the volume of data rather than the rule")


def threshold_review(fraud_by_rule: Sequence[dict], ratio: float, runbook: str) -> list[dict[str, Any]]:
    """Rules whose weekly count moved by more than `ratio` of last week's (a rule new this week always moves)."""
    flagged = []
    for rule in fraud_by_rule:
        this, last = rule["this_week"], rule["last_week"]
        change = (this - last) / last if last else (math.inf if this else 0.0)
        if abs(change) <= ratio:
            continue
        direction = "up" if this > last else "down"
        consider = ("more alerts: rule out a data quality problem or a test before raising the rule's threshold"
                    if direction == "up" else
                    "fewer alerts: check that the rule still receives its inputs before lowering its threshold")
        flagged.append({"rule_id": rule["rule_id"], "this_week": this, "last_week": last,
                        "change_ratio": None if math.isinf(change) else round(change, 4),
                        "direction": direction, "consider": consider, "runbook": runbook})
    return flagged


def _finite_points(series: dict) -> list[tuple[float, float]]:
    points = []
    for stamp, value in series.get("values") or []:
        number = float(value)
        if math.isfinite(number):
            points.append((float(stamp), number))
    return points


def slope_per_s(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope (what PromQL's deriv() computes) of (t, v) points; None under two points."""
    if len(points) < 2:
        return None
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


def _finite_values(vector: Sequence[dict], key) -> dict:
    """An instant vector as {key(labels): value}, without NaN/Inf readings (JSON and jsonb refuse them)."""
    values = {key(s.get("metric") or {}): float(s["value"][1]) for s in vector}
    return {k: v for k, v in values.items() if math.isfinite(v)}


def _pvc_key(labels: dict) -> tuple[str, str]:
    return labels.get("namespace", ""), labels.get("persistentvolumeclaim", "")


def pvc_projection(used_range: Sequence[dict], capacity: Sequence[dict]) -> list[dict[str, Any]]:
    """Per PVC: usage now (the week's last reading), growth per day (least squares over the week) and days
    until full at that growth (None when it is not growing); the week's readings for the chart."""
    capacity_by = _finite_values(capacity, _pvc_key)
    pvcs = []
    for series in used_range:
        key, points = _pvc_key(series.get("metric") or {}), _finite_points(series)
        if not key[1] or not points:
            continue
        used_now, total = points[-1][1], capacity_by.get(key)
        slope = slope_per_s(points)
        growth = slope * DAY_S if slope is not None else None
        free = total - used_now if total is not None else None
        days = free / growth if free is not None and growth and growth > 0 else None
        pvcs.append({"pvc": f"{key[0]}/{key[1]}", "used_bytes": used_now, "capacity_bytes": total,
                     "usage_ratio": used_now / total if total else None, "growth_bytes_per_day": growth,
                     "days_until_full": days, "points": points})
    return sorted(pvcs, key=lambda p: (p["days_until_full"] is None, p["days_until_full"] or 0, p["pvc"]))


def against_requests(usage_range: Sequence[dict], requests: Sequence[dict]) -> list[dict[str, Any]]:
    """Per namespace: the week's average and peak usage against the sum of its containers' requests."""
    requested = _finite_values(requests, lambda labels: labels.get("namespace", ""))
    rows = []
    for series in usage_range:
        namespace, values = (series.get("metric") or {}).get("namespace", ""), [v for _, v in _finite_points(series)]
        if not namespace or not values:
            continue
        request = requested.get(namespace)
        average, peak = sum(values) / len(values), max(values)
        rows.append({"namespace": namespace, "average": average, "peak": peak, "requested": request,
                     "peak_over_request": peak / request if request else None,
                     "average_over_request": average / request if request else None})
    return sorted(rows, key=lambda r: r["namespace"])


def lag_headroom(samples: Sequence[OffsetSample], group: str) -> dict[str, Any]:
    """The consumer's best rate against the peak input rate between consecutive offset samples of `group`
    (summed over the partitions both samples have). Headroom > 1: it can drain a backlog at the week's peak."""
    instants: dict[datetime, dict[tuple[str, int], OffsetSample]] = defaultdict(dict)
    for sample in samples:
        instants[sample.sampled_at][(sample.topic, sample.partition)] = sample
    ordered = sorted(instants)
    peak_in = best_out = None
    for before, after in zip(ordered, ordered[1:]):
        seconds = (after - before).total_seconds()
        common = instants[before].keys() & instants[after].keys()
        if seconds <= 0 or not common:
            continue
        produced = sum(instants[after][p].log_end - instants[before][p].log_end for p in common) / seconds
        committed = [p for p in common if instants[after][p].committed is not None
                     and instants[before][p].committed is not None]
        consumed = sum(instants[after][p].committed - instants[before][p].committed for p in committed) / seconds
        peak_in = produced if peak_in is None else max(peak_in, produced)
        if committed:
            best_out = consumed if best_out is None else max(best_out, consumed)
    if peak_in is None:
        return {"group": group, "not_gathered": f"fewer than two offset samples of group {group} in the week "
                                                f"(the sweep stores them; kafka.sample_horizon_hours keeps them)"}
    return {"group": group, "samples": len(ordered), "from": ordered[0].isoformat(), "to": ordered[-1].isoformat(),
            "peak_input_per_s": peak_in, "best_consumer_per_s": best_out,
            "headroom": best_out / peak_in if best_out is not None and peak_in > 0 else None}
