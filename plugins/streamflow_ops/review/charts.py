"""The weekly review's four charts as PNG files, drawn with matplotlib's headless Agg backend.

matplotlib is imported here, inside the task, never when a DAG file is parsed (it costs ~0.3 s). Each
chart function takes the report's own section and returns the file it wrote, or None when the section
has nothing to draw (for example the PVC chart without Prometheus): the report then says why.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

GIB = 2**30
SIZE_IN, DPI = (8, 4.5), 100  # 800 x 450 pixels: readable in Slack's preview and in report.md


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=DPI)
    _pyplot().close(fig)
    return path


def alerts_per_check(alerts: dict[str, Any], path: Path) -> Path | None:
    checks = [c for c in alerts["checks"] if c["slack_messages"] or c["pages_sent"]]
    if not checks:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=SIZE_IN)
    names = [c["check_name"] for c in checks]
    positions = range(len(names))
    ax.barh([p + 0.2 for p in positions], [c["slack_messages"] for c in checks], height=0.4, label="Slack messages")
    ax.barh([p - 0.2 for p in positions], [c["pages_sent"] for c in checks], height=0.4, label="pages")
    ax.set_yticks(list(positions), names, fontsize=8)
    ax.set_xlabel("alerts this week")
    ax.set_title("Alerts per check")
    ax.legend()
    return _save(fig, path)


def fraud_by_rule(rules: list[dict], path: Path) -> Path | None:
    if not rules:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=SIZE_IN)
    names = [r["rule_id"] for r in rules]
    positions = range(len(names))
    ax.bar([p - 0.2 for p in positions], [r["last_week"] for r in rules], width=0.4, label="last week")
    ax.bar([p + 0.2 for p in positions], [r["this_week"] for r in rules], width=0.4, label="this week")
    ax.set_xticks(list(positions), names, rotation=20, fontsize=8)
    ax.set_ylabel("fraud alerts")
    ax.set_title("Fraud alerts per rule: this week against last")
    ax.legend()
    return _save(fig, path)


def pvc_usage(pvcs: list[dict] | str, path: Path) -> Path | None:
    """Each PVC's used share over the week, and the week's growth carried on to 100 % (dashed)."""
    if isinstance(pvcs, str) or not any(p["points"] and p["capacity_bytes"] for p in pvcs):
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=SIZE_IN)
    for pvc in (p for p in pvcs if p["points"] and p["capacity_bytes"]):
        times = [datetime.fromtimestamp(t, timezone.utc) for t, _ in pvc["points"]]
        line, = ax.plot(times, [100 * v / pvc["capacity_bytes"] for _, v in pvc["points"]], label=pvc["pvc"])
        days = pvc["days_until_full"]
        if days is not None:
            last = pvc["points"][-1][0]
            shown = min(days, 90.0)  # a projection months away is drawn to 90 days, its label says the rest
            end = last + shown * 86400
            end_pct = 100 * (pvc["used_bytes"] + pvc["growth_bytes_per_day"] * shown) / pvc["capacity_bytes"]
            ax.plot([times[-1], datetime.fromtimestamp(end, timezone.utc)],
                    [100 * pvc["used_bytes"] / pvc["capacity_bytes"], end_pct], linestyle="--", color=line.get_color(),
                    label=f"{pvc['pvc']}: full in {days:.0f} d")
    ax.axhline(100, color="black", linewidth=0.8)
    ax.set_ylabel("% of capacity")
    ax.set_ylim(0, 105)
    ax.set_title("PVC usage and the projection to full at this week's growth")
    ax.legend(fontsize=7)
    fig.autofmt_xdate()
    return _save(fig, path)


def rows_per_day(rows: dict[str, list[dict]], path: Path) -> Path | None:
    days = sorted({r["day"] for series in rows.values() for r in series})
    if not days:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=SIZE_IN)
    width = 0.8 / max(len(rows), 1)
    for index, (layer, series) in enumerate(rows.items()):
        counts = {r["day"]: r["rows"] for r in series}
        ax.bar([d + index * width - 0.4 + width / 2 for d in range(len(days))], [counts.get(d, 0) for d in days],
               width=width, label=layer)
    ax.set_xticks(range(len(days)), days, rotation=20, fontsize=8)
    ax.set_ylabel("rows")
    ax.set_title("Rows per day")
    ax.legend()
    return _save(fig, path)


def draw_all(report: dict[str, Any], pvcs: list[dict] | str, folder: Path) -> dict[str, str]:
    """Every chart that has data: {file name: what it shows}."""
    drawn = {}
    for name, what, draw in (
            ("alerts_per_check.png", "alerts per check", lambda p: alerts_per_check(report["alerts"], p)),
            ("fraud_by_rule.png", "fraud alerts per rule, this week against last",
             lambda p: fraud_by_rule(report["fraud_by_rule"], p)),
            ("pvc_usage.png", "PVC usage with the projection to full", lambda p: pvc_usage(pvcs, p)),
            ("rows_per_day.png", "bronze and silver rows per day",
             lambda p: rows_per_day(report["capacity"]["rows_per_day"], p))):
        if draw(folder / name) is not None:
            drawn[name] = what
    return drawn
