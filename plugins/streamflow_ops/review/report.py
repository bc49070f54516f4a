"""The weekly review as people read it: report.md, and the Slack summary with the worst findings (pure)."""
from __future__ import annotations

from typing import Any

from streamflow_ops.alerting.slack import SlackMessage
from streamflow_ops.timeutil import human_duration

GIB = 2**30


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _days(value: float | None) -> str:
    return "not growing" if value is None else f"{value:.0f} days"


def _size(value: float | None) -> str:
    return "n/a" if value is None else f"{value / GIB:.2f} GiB"


def _rate(rate: dict) -> str:
    return f"{_pct(rate['rate'])} ({rate['flagged']:,} of {rate['transactions']:,} transactions)"


def findings(report: dict[str, Any], pvc_warning_ratio: float, top_n: int) -> list[str]:
    """The worst of the week, worst first: PVCs filling up, rules to review, resources over their requests,
    a consumer without headroom, incidents still open, the noisiest checks."""
    capacity, out = report["capacity"], []
    if isinstance(capacity.get("pvcs"), list):
        for pvc in capacity["pvcs"]:
            days, ratio = pvc["days_until_full"], pvc["usage_ratio"]
            if (days is not None and days < 30) or (ratio is not None and ratio >= pvc_warning_ratio):
                out.append(f"PVC {pvc['pvc']}: {_pct(ratio)} used, full in {_days(days)} "
                           f"({report['runbook']['pvc']})")
    if report["threshold_review"] and report["volume_note"]:
        out.append(f"rules to review: note that {report['volume_note']}")
    for rule in report["threshold_review"]:
        was = f"{rule['change_ratio']:+.0%}" if rule["change_ratio"] is not None else "new this week"
        out.append(f"rule {rule['rule_id']}: {rule['last_week']} -> {rule['this_week']} alerts ({was}): "
                   f"{rule['consider']}")
    for key in ("cpu", "memory"):
        if isinstance(capacity.get(key), list):
            out += [f"{row['namespace']}: {key} peak {row['peak_over_request']:.0%} of its requests"
                    for row in capacity[key] if row["peak_over_request"] is not None and row["peak_over_request"] > 1]
    lag = capacity["kafka_lag_headroom"]
    if lag.get("headroom") is not None and lag["headroom"] < 1.5:
        out.append(f"Kafka group {lag['group']}: best consumer rate {lag['best_consumer_per_s']:.1f}/s against a peak "
                   f"input of {lag['peak_input_per_s']:.1f}/s (headroom {lag['headroom']:.2f}x)")
    alerts = report["alerts"]
    out += [f"{c['check_name']}: {c['open_incidents']} incident(s) still open" for c in alerts["checks"]
            if c["open_incidents"]]
    if alerts["noisiest"]:
        out.append("noisiest checks: " + ", ".join(alerts["noisiest"]))
    return out[:top_n]


def markdown(report: dict[str, Any], charts: dict[str, str]) -> str:
    window, rates, capacity = report["window"], report["fraud_rate"], report["capacity"]
    lines = [f"# Weekly review: week of {report['week_start']}", "",
             f"From {window['this_week'][0]} to {window['this_week'][1]} (last week: from {window['last_week'][0]}). "
             f"Runbook: {report['runbook']['review']}.", ""]
    lines += ["## Alert history", "", "| check | Slack messages | pages | open incidents | median time to resolve | "
              "flapping |", "|---|---|---|---|---|---|"]
    for c in report["alerts"]["checks"]:
        median = c["median_time_to_resolve_s"]
        lines.append(f"| {c['check_name']} | {c['slack_messages']} | {c['pages_sent']} | {c['open_incidents']} | "
                     f"{'n/a' if median is None else human_duration(median)} | {', '.join(c['flapping']) or '-'} |")
    lines += ["", f"Noisiest: {', '.join(report['alerts']['noisiest']) or 'none'}.", ""]
    lines += ["## Fraud by rule", "", f"Fraud rate this week {_rate(rates['this_week'])}; last week "
              f"{_rate(rates['last_week'])}.", "", "| rule | this week | last week |", "|---|---|---|"]
    lines += [f"| {r['rule_id']} | {r['this_week']} | {r['last_week']} |" for r in report["fraud_by_rule"]]
    lines += ["", f"## Threshold review (moved by more than {report['rule_change_ratio']:.0%})", ""]
    lines += [f"Note: {report['volume_note']}.", ""] if report["volume_note"] else []
    lines += [f"- **{r['rule_id']}**: {r['last_week']} -> {r['this_week']} "
              f"({'new' if r['change_ratio'] is None else format(r['change_ratio'], '+.0%')}): {r['consider']}. "
              f"See {r['runbook']}." for r in report["threshold_review"]] or ["No rule moved that much."]
    lines += ["", "## Capacity", "", f"### PVCs ({report['runbook']['pvc']})", ""]
    if isinstance(capacity["pvcs"], str):
        lines.append(capacity["pvcs"])
    else:
        lines += ["| PVC | used | of | growth per day | full in |", "|---|---|---|---|---|"]
        lines += [f"| {p['pvc']} | {_pct(p['usage_ratio'])} | {_size(p['capacity_bytes'])} | "
                  f"{_size(p['growth_bytes_per_day'])} | {_days(p['days_until_full'])} |" for p in capacity["pvcs"]]
    lines += ["", f"### CPU and memory against requests ({report['runbook']['resources']})", ""]
    for key, unit, scale in (("cpu", "cores", 1), ("memory", "GiB", GIB)):
        if isinstance(capacity[key], str):
            lines.append(f"{key}: {capacity[key]}")
            continue
        lines += [f"| {key} | average | peak | requested | peak / request |", "|---|---|---|---|---|"]
        lines += [f"| {r['namespace']} | {r['average'] / scale:.2f} {unit} | {r['peak'] / scale:.2f} {unit} | "
                  f"{'n/a' if r['requested'] is None else format(r['requested'] / scale, '.2f')} | "
                  f"{_pct(r['peak_over_request'])} |" for r in capacity[key]]
        lines.append("")
    lines += ["", f"### Rows per day and table sizes ({report['runbook']['tables']})", "", "| day | bronze | silver |",
              "|---|---|---|"]
    by_layer = {layer: {r["day"]: r["rows"] for r in rows} for layer, rows in capacity["rows_per_day"].items()}
    for day in sorted(set(by_layer["bronze"]) | set(by_layer["silver"])):
        lines.append(f"| {day} | {by_layer['bronze'].get(day, 0):,} | {by_layer['silver'].get(day, 0):,} |")
    lines.append("")
    lines += [f"- {t['name']}: {'absent' if t['bytes'] is None else _size(t['bytes'])}"
              for t in capacity["table_sizes"]]
    lag = capacity["kafka_lag_headroom"]
    lines += ["", f"### Kafka lag headroom ({report['runbook']['lag']})", ""]
    if "not_gathered" in lag:
        lines.append(f"not gathered: {lag['not_gathered']}")
    else:
        best = "n/a" if lag["best_consumer_per_s"] is None else f"{lag['best_consumer_per_s']:.1f}/s"
        headroom = "n/a" if lag["headroom"] is None else f"{lag['headroom']:.2f}x"
        lines.append(f"Group {lag['group']}: best consumer rate {best} against a peak input rate of "
                     f"{lag['peak_input_per_s']:.1f}/s: headroom {headroom} ({lag['samples']} samples, "
                     f"{lag['from']} to {lag['to']}).")
    lines += ["", "## Charts", ""] + [f"![{what}]({name})" for name, what in charts.items()]
    return "\n".join(lines) + "\n"


def slack_message(report: dict[str, Any], worst: list[str], folder: str) -> SlackMessage:
    rates, alerts = report["fraud_rate"], report["alerts"]["totals"]
    summary = (f"Week of {report['week_start']}: {alerts['slack_messages']} alert messages, {alerts['pages_sent']} "
               f"pages, {alerts['open_incidents']} incidents still open. Fraud rate {_pct(rates['this_week']['rate'])} "
               f"(last week {_pct(rates['last_week']['rate'])}); {len(report['threshold_review'])} rule(s) to review.")
    title = f"Weekly review: week of {report['week_start']}"
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": title}},
              {"type": "section", "text": {"type": "mrkdwn", "text": summary}}]
    if worst:
        text = "*Worst findings*\n" + "\n".join(f"• {w}" for w in worst)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"weekly_review: {folder} | "
                                                                              f"{report['runbook']['review']}"}]})
    return SlackMessage(summary, blocks)
