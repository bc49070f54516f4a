"""Flink for the sandbox: a standalone session cluster (JobManager + one TaskManager) running the
Flink 2.3.0 distribution shipped in the `apache-flink` / `apache-flink-libraries` wheels, plus the
FraudDetectionJob (sandbox/flink_job) submitted over Flink's own REST API.

Each JVM runs `start-foreground` under proc.spawn() (own process group, pid file), never the daemon
scripts, so stop() can signal exactly what we started. Everything the cluster writes (config,
logs, checkpoints, compiled job) lives under layout.service_dir("flink").
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import requests
import yaml

from sandbox.proc import (
    Layout, SandboxError, ensure_port_free, running_group, spawn, stop_group, wait_until,
)

JOB_NAME = "FraudDetectionJob"
MAIN_CLASS = "streamflow.sandbox.FraudDetectionJob"
JOB_SOURCES = Path(__file__).resolve().parent / "flink_job" / "src" / "main" / "java"
TASK_SLOTS = 4  # the default job plus a few test jobs side by side
TERMINAL_STATES = {"FINISHED", "CANCELED", "FAILED", "SUSPENDED"}
HTTP_TIMEOUT = 10.0
# C1-only JIT and the serial GC: on a shared 2-core machine this measured ~40% less CPU until the
# first checkpoint and ~150 MiB less RSS than the defaults; throughput is irrelevant at 50 records/s.
SANDBOX_JVM_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def rest_url(layout: Layout) -> str:
    return f"http://127.0.0.1:{layout.flink_rest_port}"


# --- locations -------------------------------------------------------------------------------

def flink_home() -> Path:
    """The Flink distribution inside the installed pyflink package (found without importing it)."""
    spec = importlib.util.find_spec("pyflink")
    if spec is None or not spec.submodule_search_locations:
        raise SandboxError("flink: the pyflink package is not installed in this Python; "
                           "run make venv (installs requirements-flink.txt)")
    home = Path(next(iter(spec.submodule_search_locations)))
    if not (home / "bin" / "jobmanager.sh").is_file() or not any((home / "lib").glob("flink-dist-*.jar")):
        raise SandboxError(f"flink: incomplete distribution under {home} (bin/ comes from apache-flink, "
                           f"lib/ from apache-flink-libraries); run make venv")
    return home


def _jdk_tool(name: str) -> str:
    """java/javac from JAVA_HOME or PATH, the same lookup order as Flink's config.sh."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(Path(java_home, "bin", name), os.X_OK):
        return str(Path(java_home, "bin", name))
    found = shutil.which(name)
    if found is None:
        package = "openjdk-17-jre-headless" if name == "java" else "openjdk-17-jdk-headless"
        raise SandboxError(f"{name} not found: install a JDK 17 (apt-get install {package}) "
                           f"or set JAVA_HOME; Flink needs Java 11+ (17 tested)")
    return found


def _paths(layout: Layout) -> dict[str, Path]:
    svc = layout.service_dir("flink")
    return {
        "svc": svc,
        "conf": svc / "conf",
        "jm_pid": svc / "jobmanager.pid",
        "tm_pid": svc / "taskmanager.pid",
        "jm_log": svc / "jobmanager.log",
        "tm_log": svc / "taskmanager.log",
        "build": svc / "build",
        "jar_id": svc / "build" / "uploaded-jar-id",
    }


# --- the job jar ---------------------------------------------------------------------------

def build_job(layout: Layout) -> Path:
    """Compile sandbox/flink_job into a jar under the sandbox dir; rebuilt when the sources change."""
    paths = _paths(layout)
    build = paths["build"]
    jar = build / "fraud-detection-job.jar"
    stamp = build / "sources.sha256"
    sources = sorted(JOB_SOURCES.rglob("*.java"))
    digest = hashlib.sha256(b"".join(s.read_bytes() for s in sources)).hexdigest()
    if jar.is_file() and stamp.is_file() and stamp.read_text() == digest:
        return jar
    classes = build / "classes"
    shutil.rmtree(classes, ignore_errors=True)
    classes.mkdir(parents=True)
    cmd = [_jdk_tool("javac"), "--release", "11", "-cp", str(flink_home() / "lib" / "*"),
           "-d", str(classes), *map(str, sources)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SandboxError(f"flink: compiling the job failed: {result.stderr.strip()[-800:]}")
    tmp = jar.with_suffix(".jar.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", f"Manifest-Version: 1.0\nMain-Class: {MAIN_CLASS}\n")
        for path in sorted(classes.rglob("*.class")):
            zf.write(path, path.relative_to(classes).as_posix())
    tmp.replace(jar)
    stamp.write_text(digest)
    return jar


# --- REST ------------------------------------------------------------------------------------

def _rest(layout: Layout, method: str, path: str, **kwargs) -> dict:
    response = requests.request(method, rest_url(layout) + path, timeout=HTTP_TIMEOUT, **kwargs)
    response.raise_for_status()
    return response.json() if response.content else {}


def _call(layout: Layout, method: str, path: str, **kwargs) -> dict:
    """A REST call made on the user's behalf: connection problems become one actionable line."""
    try:
        return _rest(layout, method, path, **kwargs)
    except requests.ConnectionError as exc:
        raise SandboxError(f"flink: REST API at {rest_url(layout)} is not reachable; "
                           f"start it with: python -m sandbox start") from exc
    except requests.HTTPError as exc:
        raise SandboxError(f"flink: {method} {path} failed: {exc.response.status_code} "
                           f"{exc.response.text[:300]}") from exc


def _jobs(layout: Layout) -> list[dict]:
    return _call(layout, "GET", "/jobs/overview")["jobs"]


def running_jobs(layout: Layout) -> list[dict]:
    """Jobs in state RUNNING, in the /jobs/overview shape (jid, name, state, start-time, ...)."""
    return [job for job in _jobs(layout) if job["state"] == "RUNNING"]


def _upload_jar(layout: Layout) -> str:
    """Upload the job jar once per cluster and jar content; later submissions reuse its id."""
    jar = build_job(layout)
    cache = _paths(layout)["jar_id"]
    digest = hashlib.sha256(jar.read_bytes()).hexdigest()
    if cache.is_file():
        cached_digest, _, jar_id = cache.read_text().partition(" ")
        uploaded = {f["id"] for f in _call(layout, "GET", "/jars")["files"]}
        if cached_digest == digest and jar_id in uploaded:
            return jar_id
    with jar.open("rb") as fh:
        answer = _call(layout, "POST", "/jars/upload",
                       files={"jarfile": (jar.name, fh, "application/x-java-archive")})
    jar_id = Path(answer["filename"]).name
    cache.write_text(f"{digest} {jar_id}")
    return jar_id


def submit_job(layout: Layout, name: str = JOB_NAME, checkpoint_interval_ms: int = 2000,
               checkpoint_timeout_ms: int = 60000, snapshot_delay_ms: int = 0, rate: int = 50) -> str:
    """Run the sandbox job; snapshot_delay_ms > checkpoint_timeout_ms makes every checkpoint expire."""
    args = ["--name", name, "--checkpoint-interval-ms", str(checkpoint_interval_ms),
            "--checkpoint-timeout-ms", str(checkpoint_timeout_ms),
            "--snapshot-delay-ms", str(snapshot_delay_ms), "--rate", str(rate)]
    jar_id = _upload_jar(layout)
    answer = _call(layout, "POST", f"/jars/{jar_id}/run",
                   json={"entryClass": MAIN_CLASS, "programArgsList": args})
    return answer["jobid"]


def cancel_job(layout: Layout, job_id: str, timeout: float = 60.0) -> None:
    """Cancel a job and wait until Flink reports it CANCELED (a job already finished is left alone)."""
    if _call(layout, "GET", f"/jobs/{job_id}")["state"] in TERMINAL_STATES:
        return
    _call(layout, "PATCH", f"/jobs/{job_id}", params={"mode": "cancel"})
    paths = _paths(layout)
    wait_until(lambda: _rest(layout, "GET", f"/jobs/{job_id}")["state"] == "CANCELED",
               timeout, f"flink job {job_id} cancellation", paths["jm_log"], paths["jm_pid"])


# --- cluster ---------------------------------------------------------------------------------

def _set(config: dict, dotted: str, value) -> None:
    node = config
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _write_conf(layout: Layout, home: Path) -> Path:
    """A private FLINK_CONF_DIR: the shipped config (it carries the JVM --add-opens Java 17 needs)
    with this layout's binds (loopback unless --for-containers) and ports, small memory and file:// checkpoints."""
    paths = _paths(layout)
    conf = paths["conf"]
    conf.mkdir(exist_ok=True)
    config = yaml.safe_load((home / "conf" / "config.yaml").read_text())
    svc = paths["svc"]
    shipped_opts = config.get("env", {}).get("java", {}).get("opts", {}).get("all", "")
    for key, value in {
        "env.java.opts.all": f"{shipped_opts} {SANDBOX_JVM_OPTS}".strip(),
        "jobmanager.bind-host": layout.bind_host,
        "jobmanager.rpc.address": "127.0.0.1",
        "jobmanager.rpc.port": layout.flink_rpc_port,
        "jobmanager.memory.process.size": "768m",
        "taskmanager.bind-host": layout.bind_host,
        "taskmanager.host": "127.0.0.1",
        "taskmanager.rpc.port": "0",
        "taskmanager.data.port": 0,
        "taskmanager.numberOfTaskSlots": TASK_SLOTS,
        "taskmanager.memory.process.size": "1024m",
        "metrics.internal.query-service.port": "0",
        "rest.address": "127.0.0.1",
        "rest.bind-address": layout.bind_host,
        "rest.port": layout.flink_rest_port,
        "blob.server.port": str(layout.flink_blob_port),
        "state.backend.type": "hashmap",
        "execution.checkpointing.dir": (svc / "checkpoints").as_uri(),
        "io.tmp.dirs": str(svc / "tmp"),
        "web.tmpdir": str(svc / "web"),
    }.items():
        _set(config, key, value)
    (conf / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copy(home / "conf" / "log4j-console.properties", conf)
    return conf


def _env(layout: Layout, conf: Path) -> dict:
    paths = _paths(layout)
    env = dict(os.environ)
    env.update(FLINK_CONF_DIR=str(conf), FLINK_LOG_DIR=str(paths["svc"] / "log"),
               FLINK_PID_DIR=str(paths["svc"]))
    java = Path(_jdk_tool("java")).resolve()
    env.setdefault("JAVA_HOME", str(java.parent.parent))
    return env


def _overview(layout: Layout) -> dict:
    return _rest(layout, "GET", "/overview")


def _ensure_job(layout: Layout) -> str:
    """The id of the live FraudDetectionJob, submitting it when there is none."""
    for job in _jobs(layout):
        if job["name"] == JOB_NAME and job["state"] not in TERMINAL_STATES:
            return job["jid"]
    return submit_job(layout)


def _has_completed_checkpoint(layout: Layout, job_id: str) -> bool:
    if _rest(layout, "GET", f"/jobs/{job_id}")["state"] != "RUNNING":
        return False
    return _rest(layout, "GET", f"/jobs/{job_id}/checkpoints")["counts"]["completed"] >= 1


def _backpressure_sampled(layout: Layout, job_id: str) -> bool:
    """Flink's metric fetcher has every vertex's backpressure: health checks then see the real state
    instead of "not sampled yet" (an HTTP 500 while the metrics do not exist, raised here)."""
    vertices = _rest(layout, "GET", f"/jobs/{job_id}")["vertices"]
    return all(_rest(layout, "GET", f"/jobs/{job_id}/vertices/{v['id']}/backpressure").get("status") == "ok"
               for v in vertices)


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.0)


def start(layout: Layout, timeout: float = 120) -> None:
    """Start JobManager + TaskManager (if not running) and keep FraudDetectionJob RUNNING with at
    least one completed checkpoint and sampled backpressure. Safe to call again on a running sandbox."""
    deadline = time.monotonic() + timeout
    paths = _paths(layout)
    _jdk_tool("java")
    home = flink_home()
    build_job(layout)
    if running_group(paths["jm_pid"]) is None:
        for port, what in ((layout.flink_rest_port, "flink REST"), (layout.flink_rpc_port, "flink RPC"),
                           (layout.flink_blob_port, "flink blob server")):
            ensure_port_free(port, what)
        # Without HA a new JobManager never restores old jobs: their checkpoints are dead weight.
        shutil.rmtree(paths["svc"] / "checkpoints", ignore_errors=True)
        conf = _write_conf(layout, home)
        spawn(["bash", str(home / "bin" / "jobmanager.sh"), "start-foreground"],
              paths["jm_pid"], paths["jm_log"], env=_env(layout, conf))
    if running_group(paths["tm_pid"]) is None:
        spawn(["bash", str(home / "bin" / "taskmanager.sh"), "start-foreground"],
              paths["tm_pid"], paths["tm_log"], env=_env(layout, paths["conf"]))
    wait_until(lambda: "taskmanagers" in _overview(layout), _left(deadline),
               "flink jobmanager", paths["jm_log"], paths["jm_pid"])
    wait_until(lambda: _overview(layout)["taskmanagers"] >= 1, _left(deadline),
               "flink taskmanager", paths["tm_log"], paths["tm_pid"])
    job_id = _ensure_job(layout)
    wait_until(lambda: _has_completed_checkpoint(layout, job_id), _left(deadline),
               f"flink {JOB_NAME} ({job_id}) first checkpoint", paths["jm_log"], paths["jm_pid"])
    wait_until(lambda: _backpressure_sampled(layout, job_id), _left(deadline),
               f"flink {JOB_NAME} ({job_id}) backpressure metrics", paths["jm_log"], paths["jm_pid"], interval=1.0)


def stop(layout: Layout) -> None:
    """Stop the TaskManager, then the JobManager; each whole process group, escalating to SIGKILL."""
    paths = _paths(layout)
    stop_group(paths["tm_pid"])
    stop_group(paths["jm_pid"])


def _rss_mib(pgid: int) -> str:
    try:
        for line in Path(f"/proc/{pgid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return f"{int(line.split()[1]) // 1024} MiB"
    except OSError:
        pass
    return "?"


def status(layout: Layout) -> str:
    """One line, "flink: running ..." only when both JVMs are up and the REST API answers."""
    paths = _paths(layout)
    jm, tm = running_group(paths["jm_pid"]), running_group(paths["tm_pid"])
    if jm is None and tm is None:
        return "flink: stopped"
    procs = ", ".join(f"{name} pgid {pgid} rss {_rss_mib(pgid)}"
                      for name, pgid in (("jobmanager", jm), ("taskmanager", tm)) if pgid is not None)
    try:
        overview = _overview(layout)
        jobs = _rest(layout, "GET", "/jobs/overview")["jobs"]
    except requests.RequestException:
        return f"flink: unhealthy ({procs}); REST {rest_url(layout)} not answering, log {paths['jm_log']}"
    live = ", ".join(f"{j['name']} {j['state']}" for j in jobs if j["state"] not in TERMINAL_STATES)
    state = "running" if jm is not None and tm is not None else "degraded"
    return (f"flink: {state} ({procs}) on {rest_url(layout)}, taskmanagers {overview['taskmanagers']}, "
            f"slots free {overview['slots-available']}/{overview['slots-total']}, "
            f"jobs: {live or 'none running'}, log {paths['jm_log']}")
