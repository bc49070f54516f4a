"""The monitoring stack from Debian's packages: Prometheus, Alertmanager, the Pushgateway, and a webhook receiver.

Prometheus scrapes the Pushgateway (honor_labels, so the pushed `job` label survives), itself and
Alertmanager every second, evaluates the package's rules (include/prometheus/streamflow_ops_rules.yml)
every second, and sends its alerts to Alertmanager, which routes every alert to a local webhook
receiver; that receiver appends each notification to `<profile>/monitoring/webhook/notifications.jsonl`
(`webhook_notifications(layout)` reads it back). The sandbox also pushes kubelet-style
`kubelet_volume_stats_*` series (job `kubelet`), so `kubernetes.pvc_usage` runs a real PromQL query.

Backfill (history for the weekly review): `backfill(layout, openmetrics_text, name)` writes
`<profile>/monitoring/backfill/<name>.om`; before Prometheus starts, every *.om file there is imported with
`promtool tsdb create-blocks-from openmetrics FILE <tsdb dir>` and moved to `backfill/imported/`.
Each service runs in its own process group with a pid file (sandbox.proc), on the profile's ports.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from sandbox.proc import (REPO, Layout, SandboxError, ensure_port_free, running_group, spawn, stop_group,
                          wait_until)

RULES = REPO / "include" / "prometheus" / "streamflow_ops_rules.yml"
BINARIES = {"prometheus": "/usr/bin/prometheus", "alertmanager": "/usr/bin/prometheus-alertmanager",
            "pushgateway": "/usr/bin/prometheus-pushgateway", "promtool": "/usr/bin/promtool"}
INTERVAL = "1s"  # scrape and rule evaluation: tests see a push within seconds
KUBELET_JOB = "kubelet"
# (namespace, persistentvolumeclaim, used bytes, capacity bytes): every PVC well under the 80 % warning.
SANDBOX_PVCS = (("streamflow-data", "streamflow-postgres-1", 12 * 2**30, 50 * 2**30),
                ("streamflow-kafka", "data-streamflow-kafka-kafka-0", 9 * 2**30, 20 * 2**30))
SERVICES = ("pushgateway", "webhook", "alertmanager", "prometheus")  # start order


def _base(layout: Layout) -> Path:
    return layout.service_dir("monitoring")


def _paths(layout: Layout, service: str) -> tuple[Path, Path]:
    base = _base(layout)
    return base / f"{service}.pid", base / f"{service}.log"


def tsdb_dir(layout: Layout) -> Path:
    return _base(layout) / "prometheus-data"


def rules_dir(layout: Layout) -> Path:
    """The rule files Prometheus loads (`rule_files: <rules_dir>/*.yml`): a copy of the shipped file."""
    path = _base(layout) / "rules"
    path.mkdir(parents=True, exist_ok=True)
    return path


def backfill_dir(layout: Layout) -> Path:
    path = _base(layout) / "backfill"
    path.mkdir(parents=True, exist_ok=True)
    return path


def webhook_file(layout: Layout) -> Path:
    path = _base(layout) / "webhook"
    path.mkdir(parents=True, exist_ok=True)
    return path / "notifications.jsonl"


def url(layout: Layout, service: str) -> str:
    port = {"prometheus": layout.prometheus_port, "alertmanager": layout.alertmanager_port,
            "pushgateway": layout.pushgateway_port, "webhook": layout.webhook_port}[service]
    return f"http://127.0.0.1:{port}"


def _binary(name: str) -> str:
    path = BINARIES[name]
    if not Path(path).exists():
        raise SandboxError(f"monitoring: {path} is missing; run `make monitoring-install` "
                           f"(apt-get install prometheus prometheus-alertmanager prometheus-pushgateway)")
    return path


def prometheus_config(layout: Layout) -> dict:
    """Scrape the Pushgateway (honor_labels), Prometheus and Alertmanager; alert to Alertmanager."""
    def target(service: str) -> dict:
        return {"targets": [url(layout, service).removeprefix("http://")]}

    return {
        "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
        "rule_files": [str(rules_dir(layout) / "*.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [target("alertmanager")]}]},
        "scrape_configs": [
            {"job_name": "pushgateway", "honor_labels": True, "static_configs": [target("pushgateway")]},
            {"job_name": "prometheus", "static_configs": [target("prometheus")]},
            {"job_name": "alertmanager", "static_configs": [target("alertmanager")]},
        ],
    }


def alertmanager_config(layout: Layout) -> dict:
    """Every alert to the webhook receiver at once (resolved ones too), grouped by alert name."""
    return {
        "route": {"receiver": "webhook", "group_by": ["alertname"], "group_wait": "1s", "group_interval": "1s",
                  "repeat_interval": "1h"},
        "receivers": [{"name": "webhook", "webhook_configs": [
            {"url": f"{url(layout, 'webhook')}/alerts", "send_resolved": True}]}],
    }


HOURS_IN_SECONDS = re.compile(r"\b(\d+(?:\.\d+)?) \* 3600\b")
DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w)")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(text: str) -> float:
    """A Prometheus duration ("26h", "1h30m", "250ms") in seconds."""
    parts = DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * UNIT_SECONDS[u] for n, u in parts)


def compressed_rules(text: str, factor: float) -> str:
    """The shipped rule file with time running `factor` times faster, for end-to-end tests on the real stack.

    The documented transformation, and the only one: every rule's `for:` and every `N * 3600` in an `expr`
    (the rule file writes its thresholds in hours that way) are divided by `factor`; names, labels,
    annotations and the shape of every expression stay as shipped. tests/monitoring/test_rules.py holds
    the shipped file to that form (no other time constant in an expr)."""
    document = yaml.safe_load(text)
    for group in document["groups"]:
        for rule in group["rules"]:
            rule["expr"] = HOURS_IN_SECONDS.sub(lambda m: repr(float(m.group(1)) * 3600 / factor), rule["expr"])
            if "for" in rule:
                rule["for"] = f"{max(1, round(duration_seconds(rule['for']) * 1000 / factor))}ms"
    return yaml.safe_dump(document, sort_keys=False)


def _write_yaml(path: Path, document: dict) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def backfill(layout: Layout, openmetrics_text: str, name: str) -> Path:
    """Load history into the profile's Prometheus: `openmetrics_text` (OpenMetrics, ending `# EOF`) is
    written to backfill/<name>.om and imported with promtool before Prometheus (re)starts. A running
    Prometheus is restarted so that it reads the new blocks. Returns the .om file (moved to imported/)."""
    if not name.replace("-", "").replace("_", "").isalnum():
        raise SandboxError(f"monitoring backfill: name {name!r} must be letters, digits, - or _")
    path = backfill_dir(layout) / f"{name}.om"
    path.write_text(openmetrics_text if openmetrics_text.endswith("\n") else openmetrics_text + "\n")
    pid_file, _ = _paths(layout, "prometheus")
    if running_group(pid_file) is not None:
        stop_group(pid_file)
        _start_prometheus(layout)
    else:
        import_backfill(layout)
    return backfill_dir(layout) / "imported" / path.name


def import_backfill(layout: Layout) -> list[Path]:
    """The backfill hook: promtool turns every backfill/*.om into TSDB blocks (Prometheus must be stopped)."""
    done = backfill_dir(layout) / "imported"
    imported = []
    for source in sorted(backfill_dir(layout).glob("*.om")):
        proc = subprocess.run([_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source),
                               str(tsdb_dir(layout))], capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            raise SandboxError(f"monitoring backfill: promtool refused {source}: "
                               f"{(proc.stderr or proc.stdout).strip()[-500:]}")
        done.mkdir(exist_ok=True)
        imported.append(Path(shutil.move(str(source), done / source.name)))
    return imported


def _ready(service_url: str, path: str) -> bool:
    with urllib.request.urlopen(service_url + path, timeout=2) as response:
        return response.status == 200


def _start_service(layout: Layout, service: str, cmd: list[str], port: int, ready_path: str,
                   timeout: float = 30) -> None:
    pid_file, log_file = _paths(layout, service)
    if running_group(pid_file) is None:
        ensure_port_free(port, f"monitoring ({service})")
        spawn(cmd, pid_file, log_file, cwd=REPO)  # the webhook receiver runs as `python -m sandbox.monitoring`
    wait_until(lambda: _ready(url(layout, service), ready_path), timeout, f"monitoring ({service})", log_file,
               pid_file)


def _listen(layout: Layout, port: int) -> str:
    return f"{layout.bind_host}:{port}"


def _start_prometheus(layout: Layout, rules_text: str | None = None) -> None:
    (rules_dir(layout) / RULES.name).write_text(RULES.read_text() if rules_text is None else rules_text)
    config = _write_yaml(_base(layout) / "prometheus.yml", prometheus_config(layout))
    pid_file, _ = _paths(layout, "prometheus")
    if running_group(pid_file) is None:
        import_backfill(layout)
    _start_service(layout, "prometheus", [
        _binary("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={tsdb_dir(layout)}",
        f"--web.listen-address={_listen(layout, layout.prometheus_port)}", "--web.enable-lifecycle",
        # a firing alert is re-sent every second (default 1 m): one dropped while a reload re-discovers
        # Alertmanager reaches it at once
        "--rules.alert.resend-delay=1s", "--storage.tsdb.retention.time=30d"], layout.prometheus_port, "/-/ready")
    _wait_for_alertmanager(layout)


def start(layout: Layout, rules_text: str | None = None) -> None:
    """Start the four services (idempotent). `rules_text` replaces the shipped rule file (tests load a
    time-compressed copy into a private profile this way); a running Prometheus is reloaded with it."""
    base = _base(layout)
    _start_service(layout, "pushgateway", [
        _binary("pushgateway"), f"--web.listen-address={_listen(layout, layout.pushgateway_port)}",
        "--persistence.file="], layout.pushgateway_port, "/-/ready")
    _start_service(layout, "webhook", [
        sys.executable, "-m", "sandbox.monitoring", "webhook", str(layout.webhook_port), str(webhook_file(layout)),
        layout.bind_host], layout.webhook_port, "/ready")
    am_config = _write_yaml(base / "alertmanager.yml", alertmanager_config(layout))
    _start_service(layout, "alertmanager", [
        _binary("alertmanager"), f"--config.file={am_config}", f"--storage.path={base / 'alertmanager-data'}",
        f"--web.listen-address={_listen(layout, layout.alertmanager_port)}", "--cluster.listen-address="],
        layout.alertmanager_port, "/-/ready")
    was_running = running_group(_paths(layout, "prometheus")[0]) is not None
    _start_prometheus(layout, rules_text)
    if was_running:
        reload_prometheus(layout)
    push_kubelet_volume_stats(layout)


def reload_prometheus(layout: Layout) -> None:
    """POST /-/reload: Prometheus re-reads its config and rule files (refused rules raise here)."""
    request = urllib.request.Request(url(layout, "prometheus") + "/-/reload", method="POST")
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except urllib.error.HTTPError as exc:
        raise SandboxError(f"monitoring (prometheus): reload refused: {exc.read().decode(errors='replace')}")
    _wait_for_alertmanager(layout)


def _wait_for_alertmanager(layout: Layout) -> None:
    """Until Prometheus has discovered its Alertmanager again (start and reload): alerts before that are
    dropped."""
    def discovered() -> bool:
        with urllib.request.urlopen(url(layout, "prometheus") + "/api/v1/alertmanagers", timeout=5) as response:
            active = json.load(response)["data"]["activeAlertmanagers"]
        return any(url(layout, "alertmanager") in a["url"] for a in active)

    wait_until(discovered, 30, "monitoring (prometheus -> alertmanager)", _paths(layout, "prometheus")[1])


def push(layout: Layout, job: str, text: str, method: str = "PUT") -> None:
    """PUT (replace) or POST a text-format group to the profile's Pushgateway (sandbox and test data only;
    the package pushes through its own connection)."""
    request = urllib.request.Request(f"{url(layout, 'pushgateway')}/metrics/job/{job}", data=text.encode(),
                                     method=method, headers={"Content-Type": "text/plain; version=0.0.4"})
    urllib.request.urlopen(request, timeout=10).close()


def kubelet_volume_stats(pvcs=SANDBOX_PVCS) -> str:
    """kube-prometheus-stack's kubelet volume statistics, in the text format the kubelet exposes."""
    lines = []
    for metric, index in (("kubelet_volume_stats_used_bytes", 2), ("kubelet_volume_stats_capacity_bytes", 3)):
        lines.append(f"# TYPE {metric} gauge")
        lines += [f'{metric}{{namespace="{pvc[0]}",persistentvolumeclaim="{pvc[1]}"}} {pvc[index]}' for pvc in pvcs]
    return "\n".join(lines) + "\n"


def push_kubelet_volume_stats(layout: Layout, pvcs=SANDBOX_PVCS) -> None:
    push(layout, KUBELET_JOB, kubelet_volume_stats(pvcs))


def query(layout: Layout, promql: str) -> list[dict]:
    """An instant query against the profile's Prometheus (data.result); an error answer raises."""
    with urllib.request.urlopen(f"{url(layout, 'prometheus')}/api/v1/query?"
                                + urllib.parse.urlencode({"query": promql}), timeout=10) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise SandboxError(f"monitoring (prometheus): query {promql!r} failed: {body}")
    return body["data"]["result"]


def wait_for(layout: Layout, promql: str, timeout: float = 30, predicate=bool) -> list[dict]:
    """Poll `promql` until predicate(result) holds (default: non-empty); the last result otherwise raises."""
    deadline, result = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        result = query(layout, promql)
        if predicate(result):
            return result
        time.sleep(0.5)
    raise SandboxError(f"monitoring (prometheus): {promql!r} still {result!r} after {timeout:.0f}s")


def webhook_notifications(layout: Layout) -> list[dict]:
    """Every Alertmanager webhook notification the receiver got, oldest first."""
    path = webhook_file(layout)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def stop(layout: Layout) -> bool:
    stopped = [stop_group(_paths(layout, service)[0]) for service in reversed(SERVICES)]  # every one, always
    return any(stopped)


def status(layout: Layout) -> str:
    running = {s: running_group(_paths(layout, s)[0]) for s in SERVICES}
    if not any(running.values()):
        return "monitoring: stopped"
    parts = [f"{s} {'on ' + url(layout, s) if pgid else 'STOPPED'}" for s, pgid in running.items()]
    return f"monitoring: running: {', '.join(parts)}; logs in {_base(layout)}"


def _serve_webhook(port: int, out: Path, host: str) -> None:
    """The Alertmanager webhook receiver: one JSON line per notification (POST /alerts); GET /ready."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # http.server's naming
            self.send_response(200 if self.path == "/ready" else 404)
            self.end_headers()

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with out.open("a") as sink:
                sink.write(json.dumps(json.loads(body)) + "\n")
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    ThreadingHTTPServer((host, port), Handler).serve_forever()


if __name__ == "__main__" and sys.argv[1:2] == ["webhook"]:
    _serve_webhook(int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
