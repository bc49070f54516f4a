"""Pure verdicts on Prometheus, Alertmanager and Grafana API answers."""
from __future__ import annotations

from typing import Any

from streamflow_ops.results import CheckResult, Status
from streamflow_ops import registry

TARGETS = registry.MONITORING_TARGETS
ALERTS = registry.MONITORING_ALERTMANAGER
GRAFANA = registry.MONITORING_GRAFANA
MAX_LISTED = 8


def _listing(items: list[str]) -> str:
    more = f", and {len(items) - MAX_LISTED} more (see details)" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more


def evaluate_targets(answer: dict[str, Any]) -> CheckResult:
    """Every active scrape target up is ok; any down is a warning that names them and their last error."""
    base = dict(check_name=TARGETS.name, runbook=TARGETS.runbook, threshold="warning: any active target down")
    if answer.get("status") != "success":
        return CheckResult(status=Status.UNKNOWN, **base,
                           message=f"Prometheus answered {answer.get('status')}: {answer.get('errorType')}: "
                                   f"{answer.get('error')}")
    targets = (answer.get("data") or {}).get("activeTargets", [])
    down = [t for t in targets if t.get("health") == "down"]
    details = {"active": len(targets), "down": [
        {"job": t.get("labels", {}).get("job") or t.get("scrapePool"), "instance": t.get("labels", {}).get("instance"),
         "scrapeUrl": t.get("scrapeUrl"), "lastError": t.get("lastError"), "lastScrape": t.get("lastScrape")}
        for t in down]}
    if not targets:
        return CheckResult(status=Status.WARNING, value=0, details=details, **base,
                           message="Prometheus has no active scrape targets: service discovery or the "
                                   "ServiceMonitors are broken - check the Prometheus pod, its config and operator")
    if not down:
        return CheckResult(status=Status.OK, value=0, details=details, **base,
                           message=f"all {len(targets)} Prometheus targets up")
    named = _listing([f"{d['job']}/{d['instance']} ({d['lastError'] or 'no error text'})" for d in details["down"]])
    return CheckResult(status=Status.WARNING, value=len(down), details=details, **base,
                       message=f"{len(down)} of {len(targets)} Prometheus targets down: {named} - "
                               f"metrics and alerts for them are blind - {TARGETS.first_step}")


def evaluate_alerts(alerts: list[dict[str, Any]]) -> CheckResult:
    """Firing alerts by labels.severity: any critical is critical, any warning is a warning, all are listed."""
    base = dict(check_name=ALERTS.name, runbook=ALERTS.runbook,
                threshold="critical: a severity=critical alert firing; warning: a severity=warning alert firing")
    firing = [a for a in alerts if (a.get("status") or {}).get("state", "active") == "active"]
    by_severity: dict[str, list[str]] = {}
    for alert in sorted(firing, key=lambda a: a.get("startsAt", "")):
        labels = alert.get("labels", {})
        where = ", ".join(f"{k}={labels[k]}" for k in ("namespace", "service", "pod", "instance", "job") if k in labels)
        summary = (alert.get("annotations") or {}).get("summary")
        text = f"{labels.get('alertname', '?')}{' (' + where + ')' if where else ''}{': ' + summary if summary else ''}"
        by_severity.setdefault(labels.get("severity", "none"), []).append(text)
    # alertnames: what Alertmanager pages for right now (the sweep's alerting defers to it, never pages twice).
    alertnames = sorted({a.get("labels", {}).get("alertname", "?") for a in firing})
    # The runbook's own section for the alerts it documents (KafkaConsumerLagHigh, PostgresPVCNearlyFull...).
    sections = {spec.alert: spec.runbook for spec in registry.SPECS.values() if spec.alert in alertnames}
    details = {"firing": dict(by_severity), "count": len(firing), "alertnames": alertnames,
               "runbook_sections": sections}
    if "critical" in by_severity:
        status = Status.CRITICAL
    elif "warning" in by_severity:
        status = Status.WARNING
    else:
        status = Status.OK
    parts = [f"{len(by_severity[s])} {s}: {_listing(by_severity[s])}"
             for s in ("critical", "warning") if s in by_severity]
    others = sum(len(v) for s, v in by_severity.items() if s not in ("critical", "warning"))
    if others:
        parts.append(f"{others} other (info/none, e.g. Watchdog)")
    if status is Status.OK:
        return CheckResult(status=status, value=0, details=details, **base,
                           message=f"Alertmanager reachable, no critical or warning alerts firing"
                                   f"{' (' + parts[-1] + ')' if others else ''}")
    return CheckResult(status=status, value=len(firing), details=details, **base,
                       message=f"firing alerts - {'; '.join(parts)} - "
                               + (f"runbook: {'; '.join(sorted(set(sections.values())))}; " if sections else "")
                               + "follow each alert's own runbook section, silence it in Alertmanager once handled")


def evaluate_grafana(http_status: int, health: dict[str, Any]) -> CheckResult:
    """Grafana answers with database "ok" when healthy; anything else leaves the dashboards dark."""
    base = dict(check_name=GRAFANA.name, runbook=GRAFANA.runbook, threshold='warning: database not "ok"',
                details={"http_status": http_status, **health})
    if http_status == 200 and health.get("database") == "ok":
        return CheckResult(status=Status.OK, **base,
                           message=f"Grafana {health.get('version', '?')} healthy, database ok")
    return CheckResult(status=Status.WARNING, **base,
                       message=f"Grafana unhealthy (HTTP {http_status}, database {health.get('database')!r}): "
                               f"dashboards are down - {GRAFANA.first_step}")
