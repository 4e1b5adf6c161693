"""Service scale benchmark driver: a REPLICA service scaled 0 -> N -> 0 through the ECS API, next
to raw `docker run -d` / `docker rm -f` of N containers on the same engine at the worker's own
parallelism; the storage requests and function executions of one cycle; and the storage cost of
one reconcile of a 10-task service, with the cluster otherwise empty and with 2,000 other task
rows in it.

    servicescale.py run --url URL --cluster C ...   (service-scale.sh starts the processes)

See bench/README.md ("Service scale").
"""

import argparse
import concurrent.futures
import datetime
import hashlib
import json
import socket
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from urllib.parse import unquote

import servicescale_storage as st
from readbench import machine_cpu, tree_cpu_seconds
from benchcommon import BenchmarkFailed, Client, local_epoch, median, write_report

IMAGE = "local/busybox:latest"
FAMILY = "bench-scale-sleep"
SERVICE = "scale"
STEADY = "steady"    # the 10-task service whose reconcile is measured (a fresh partition)
CLUSTER_LABEL = "com.amazonaws.ecs.cluster"
RAW_LABEL = "bench-service-scale"
POLL = 0.25          # DescribeServices interval, seconds

# What the worker and the control plane do at once (read from src/Worker and src/Core):
WORKER_MAX_CONCURRENT_COMMANDS = 64      # WorkerOptions.MaxConcurrentCommands (default)
WORKER_MAX_BATCH = 32                    # CommandLoop.MaxBatch: messages per receive
LAUNCH_BATCH = 10                        # ServiceReconciler: LaunchAsync for at most 10 at a time


# ---------------------------------------------------------------- the ECS API

class Ecs(Client):
    def call(self, action: str, params: dict, timeout: float = 60) -> dict:
        status, body = self.send(action, params, timeout)
        if status != 200:
            raise BenchmarkFailed(f"{action} -> HTTP {status}: {body[:500]!r}")
        return json.loads(body)


# ---------------------------------------------------------------- .NET console logs

# "04:56:20.721 info: Serverless.Core.Api.ApiEndpoint[0] RunTask 200 90.9 ms <request id>"
_NET_RE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) (\w+): ([^\[\s]+)\[\d+\] ?(.*)$")


class NetLog:
    """Follows a growing single-line console log; lines are (t, level, category, message)."""

    def __init__(self, path: str):
        self.path, self.offset, self.partial, self.lines = path, 0, "", []

    def poll(self) -> None:
        try:
            with open(self.path, "r", encoding="utf-8", errors="replace") as f:
                f.seek(self.offset)
                data = f.read()
                self.offset = f.tell()
        except OSError:
            return
        *complete, self.partial = (self.partial + data).split("\n")
        now = time.time()
        for raw in complete:
            m = _NET_RE.match(raw)
            if m:
                h, mi, s, ms, level, category, message = m.groups()
                self.lines.append((local_epoch(int(h), int(mi), int(s), int(ms), now), level, category, message))

    def window(self, start: float, end: float) -> list:
        self.poll()
        return [line for line in self.lines if start <= line[0] <= end]


def executions(lines: list) -> dict:
    """Function executions in the given control-plane log lines, by kind.

    HTTP: one ApiEndpoint line per API request ("<Action> <status> <ms> ms <id>").
    Queue: the standalone host's QueueTriggerListener logs "Function X completed message ..." at
    Debug (enabled for this benchmark: Logging__LogLevel__Function=Debug), "... failed on ..." at
    Warning, "Moved message ..." when poisoned. Timer: "Timer function X completed ..." (Debug).
    TaskStateApplier and ServiceReconciler lines are counted as a cross-check."""
    out = {"api": {}, "queue": {}, "timer": {}, "task_state_applied": 0, "reconciler_lines": 0,
           "warnings": []}
    for t, level, category, message in lines:
        if category == "Serverless.Core.Api.ApiEndpoint":
            m = re.match(r"(\w+) (\d{3}) ", message)
            if m:
                out["api"][m.group(1)] = out["api"].get(m.group(1), 0) + 1
        elif category.startswith("Function."):
            name = category[len("Function."):]
            if message.startswith(f"Function {name} completed message"):
                out["queue"][name] = out["queue"].get(name, 0) + 1
            elif message.startswith(f"Function {name} failed on message") or message.startswith("Moved message"):
                out["queue"][name + " (failed)"] = out["queue"].get(name + " (failed)", 0) + 1
            elif message.startswith(f"Timer function {name} completed"):
                out["timer"][name] = out["timer"].get(name, 0) + 1
            elif message.startswith(f"Timer function {name} failed"):
                out["timer"][name + " (failed)"] = out["timer"].get(name + " (failed)", 0) + 1
        elif category == "Serverless.Core.Tasks.TaskStateApplier":
            out["task_state_applied"] += 1
        elif category == "Serverless.Core.Reconciliation.ServiceReconciler":
            out["reconciler_lines"] += 1
        if level in ("warn", "fail", "crit"):
            out["warnings"].append(f"{category}: {message[:200]}")
    out["total"] = sum(out["api"].values()) + sum(out["queue"].values()) + sum(out["timer"].values())
    return out


# ---------------------------------------------------------------- docker

def docker(*args, check=True) -> str:
    out = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and out.returncode != 0:
        raise BenchmarkFailed(f"docker {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


class DockerEvents:
    """`docker events` (start, destroy) of this run's containers: the cluster's and the raw ones."""

    def __init__(self, cluster: str, run_id: str):
        self.cluster, self.run_id = cluster, run_id
        self.events = []                 # (epoch, action, container id, "ours" | "raw")
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            ["docker", "events", "--filter", "type=container", "--filter", "event=start",
             "--filter", "event=destroy", "--format",
             "{{.TimeNano}} {{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        time.sleep(0.5)

    def _read(self):
        for line in self.proc.stdout:
            try:
                nanos, action, cid, attrs = line.rstrip("\n").split(" ", 3)
                a = json.loads(attrs)
            except ValueError:
                continue
            who = "ours" if a.get(CLUSTER_LABEL) == self.cluster else "raw" if a.get(RAW_LABEL) == self.run_id else None
            if who:
                with self.lock:
                    self.events.append((int(nanos) / 1e9, action, cid, who))

    def mark(self) -> int:
        with self.lock:
            return len(self.events)

    def since(self, mark: int, action: str, who: str) -> list:
        with self.lock:
            return [(t, cid) for t, act, cid, w in self.events[mark:] if act == action and w == who]

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---------------------------------------------------------------- the benchmark

class Bench:
    def __init__(self, a):
        self.a = a
        self.ecs = Ecs(a.url)
        self.cluster = a.cluster
        self.run_id = a.cluster      # the raw containers' label value: cleanup finds them by it
        self.cp_log = NetLog(a.cp_log)
        self.worker_log = NetLog(a.worker_log)
        # Only the counting phase reads Azurite's debug log: the timed cycles run against a silent Azurite.
        self.az = st.AzuriteLog(a.azurite_log) if a.phase == "counting" else None
        self.storage = st.Storage(a.table_port, a.queue_port)
        self.events = None
        self.pids = {"control plane": [a.cp_pid], "worker": [a.worker_pid], "azurite": [a.azurite_pid]}
        engine = subprocess.run(["pgrep", "-x", "dockerd|containerd"], capture_output=True, text=True).stdout.split()
        self.pids["docker engine"] = [int(p) for p in engine]
        self.results = {"config": {
            "count": a.count, "repeats": a.repeats, "raw_parallelism": self.raw_parallelism(),
            "poll_interval_s": POLL, "reconcile_service_tasks": a.reconcile_tasks,
            "other_task_rows": a.other_tasks, "cluster": a.cluster, "quick": a.quick,
            "worker_max_concurrent_commands": WORKER_MAX_CONCURRENT_COMMANDS,
            "worker_receive_batch": WORKER_MAX_BATCH, "control_plane_launch_batch": LAUNCH_BATCH,
            "nproc": os.cpu_count(), "busy_at_start": a.busy_note,
        }}

    def raw_parallelism(self) -> int:
        # The worker handles every command it has received at once, up to MaxConcurrentCommands,
        # taking up to 32 messages per receive; the control plane sends them in batches of 10,
        # one batch after the other, within one reconcile. So all N starts (N <= 64) can be in
        # flight together on the worker: the raw baseline runs N docker CLIs at once.
        return min(self.a.count, WORKER_MAX_CONCURRENT_COMMANDS)

    # -- helpers

    def check_busy(self, phase: str) -> None:
        """Records any test run or other benchmark that started while this one measures."""
        out = subprocess.run(["pgrep", "-af", self.a.busy_pattern], capture_output=True, text=True).stdout
        lines = [l[:160] for l in out.splitlines() if l.strip() and l.split()[0] != str(os.getpid())]
        if lines:
            self.results.setdefault("disturbed", []).append({"phase": phase, "processes": lines})
            print(f"  !! other jobs running during '{phase}': {lines}", flush=True)

    def cpu(self) -> dict:
        snap = {name: tree_cpu_seconds(pids) for name, pids in self.pids.items() if any(pids)}
        snap["_machine"] = machine_cpu()
        snap["_t"] = time.monotonic()
        return snap

    @staticmethod
    def cpu_between(a: dict, b: dict) -> dict:
        wall = max(1e-6, b["_t"] - a["_t"])
        out = {k: round(100 * (b[k] - a[k]) / wall, 1) for k in a if not k.startswith("_")}
        busy0, total0 = a["_machine"]
        busy1, total1 = b["_machine"]
        out["machine busy"] = round(100 * (os.cpu_count() or 1) * (busy1 - busy0) / max(1, total1 - total0), 1)
        out["other"] = round(max(0.0, out["machine busy"] - sum(v for k, v in out.items() if k != "machine busy")), 1)
        return out

    def describe(self, service: str = SERVICE) -> dict:
        d = self.ecs.call("DescribeServices", {"cluster": self.cluster, "services": [service]})
        if not d.get("services"):
            raise BenchmarkFailed(f"DescribeServices: {d}")
        return d["services"][0]

    def update(self, desired: int, service: str = SERVICE) -> None:
        self.ecs.call("UpdateService", {"cluster": self.cluster, "service": service, "desiredCount": desired})

    def wait_quiet(self, quiet: float = 2.0, timeout: float = 60) -> float:
        """Until the control plane wrote no function/reconcile/task line for `quiet` seconds and
        the container engine reported nothing for this run: the previous step is fully applied.
        Returns the time of the last such line."""
        deadline = time.monotonic() + timeout
        mark = self.events.mark() if self.events else 0
        while True:
            self.cp_log.poll()
            last = 0.0
            for t, _, category, message in reversed(self.cp_log.lines):
                # The timers that tick every few seconds (CapacityLoop, ScalingEvaluation) are not the step's
                # work: counted, they kept the control plane from ever looking quiet, and every wait ran to its timeout.
                if message.startswith("Timer function"):
                    continue
                if category.startswith("Function.") or category.startswith("Serverless.Core."):
                    last = t
                    break
            if self.events and self.events.mark() != mark:
                mark, last = self.events.mark(), time.time()
            if time.time() - last >= quiet:
                return last
            if time.monotonic() > deadline:
                return last
            time.sleep(0.1)

    # -- setup

    def setup(self) -> None:
        ecs = self.ecs
        deadline = time.monotonic() + 90
        ecs.call("CreateCluster", {"clusterName": self.cluster})
        while True:
            arns = ecs.call("ListContainerInstances", {"cluster": self.cluster}).get("containerInstanceArns", [])
            if arns:
                d = ecs.call("DescribeContainerInstances", {"cluster": self.cluster, "containerInstances": arns})
                if any(i["agentConnected"] and i["status"] == "ACTIVE" for i in d["containerInstances"]):
                    break
            if time.monotonic() > deadline:
                raise BenchmarkFailed("the worker did not register within 90 s")
            time.sleep(0.3)
        ecs.call("RegisterTaskDefinition", {
            "family": FAMILY,
            "containerDefinitions": [{
                "name": "app", "image": IMAGE, "command": ["sleep", "600"], "memory": 16, "cpu": 0,
                "essential": True,
                # busybox sleep as PID 1 ignores SIGTERM, so every stop would wait out the stop
                # timeout (30 s by default) before SIGKILL. With an init process (docker run
                # --init) SIGTERM ends it at once; the raw baseline uses --init as well.
                "linuxParameters": {"initProcessEnabled": True},
            }],
        })
        ecs.call("CreateService", {"cluster": self.cluster, "serviceName": SERVICE, "taskDefinition": FAMILY,
                                   "desiredCount": 0, "schedulingStrategy": "REPLICA"})
        self.events = DockerEvents(self.cluster, self.run_id)

    # -- phase 1: ours

    def ours_cycle(self, n: int, label: str) -> dict:
        self.wait_quiet()
        mark = self.events.mark()
        self.cp_log.poll()
        cpu0 = self.cpu()
        t0 = time.time()
        self.update(n)
        t_answer = time.time()
        timeline, t_up, polls = [], None, 0
        deadline = time.monotonic() + 180
        while t_up is None:
            s = self.describe()
            polls += 1
            now = time.time()
            timeline.append((round(now - t0, 3), s["runningCount"], s["pendingCount"], len(s["deployments"])))
            if s["runningCount"] == n and len(s["deployments"]) == 1:
                t_up = now
                break
            if time.monotonic() > deadline:
                raise BenchmarkFailed(f"{label}: runningCount {s['runningCount']} of {n} after 180 s")
            time.sleep(max(0.0, POLL - (time.time() - now)))
        cpu1 = self.cpu()
        starts = self.events.since(mark, "start", "ours")
        ids = {cid for _, cid in starts}
        if len(ids) != n:
            raise BenchmarkFailed(f"{label}: {len(ids)} containers started for {n} tasks")

        # Between the phases: let the last reports and reconciles finish (not timed).
        self.wait_quiet()
        mark_down = self.events.mark()
        cpu2 = self.cpu()
        t1 = time.time()
        self.update(0)
        t_down, t_zero_seen, down_timeline = None, None, []
        deadline = time.monotonic() + 180
        while t_down is None:
            s = self.describe()
            polls += 1
            now = time.time()
            down_timeline.append((round(now - t1, 3), s["runningCount"], s["pendingCount"], len(s["deployments"])))
            gone = {cid for _, cid in self.events.since(mark_down, "destroy", "ours")}
            if s["runningCount"] == 0 and t_zero_seen is None:
                t_zero_seen = now
            if s["runningCount"] == 0 and ids <= gone:
                t_down = now
                break
            if time.monotonic() > deadline:
                raise BenchmarkFailed(f"{label}: runningCount {s['runningCount']}, {len(ids & gone)} of {n} "
                                      f"containers removed after 180 s")
            time.sleep(max(0.0, POLL - (time.time() - now)))
        cpu3 = self.cpu()
        left = docker("ps", "-aq", "--filter", f"label={CLUSTER_LABEL}={self.cluster}")
        if left:
            raise BenchmarkFailed(f"{label}: containers left after scale-in: {left.split()}")
        last = self.wait_quiet()
        t_end = max(last, t_down) + 0.3
        destroys = [t for t, cid in self.events.since(mark_down, "destroy", "ours") if cid in ids]
        up_marks = self.milestones(t0, t_up, "RUNNING")
        up_marks.update({"containers started (docker events)": (min(t for t, _ in starts), max(t for t, _ in starts)),
                         f"runningCount {n} seen": (t_up, t_up)})
        down_marks = self.milestones(t1, t_down, "STOPPED")
        down_marks.update({"containers removed (docker events)": (min(destroys), max(destroys)),
                           "runningCount 0 seen": (t_zero_seen, t_zero_seen)})
        return {
            "up_milestones": {k: (v[0] - t0, v[1] - t0) for k, v in up_marks.items()},
            "down_milestones": {k: (v[0] - t1, v[1] - t1) for k, v in down_marks.items()},
            "label": label, "t0": t0, "t_end": t_end,
            "up_s": t_up - t0, "down_s": t_down - t1,
            "update_answer_ms": 1000 * (t_answer - t0),
            "first_start_s": min(t for t, _ in starts) - t0, "last_start_s": max(t for t, _ in starts) - t0,
            "first_destroy_s": min(destroys) - t1, "last_destroy_s": max(destroys) - t1,
            "running_zero_seen_s": t_zero_seen - t1,
            "describe_polls": polls,
            "up_timeline": timeline, "down_timeline": down_timeline,
            "cpu_up": self.cpu_between(cpu0, cpu1), "cpu_down": self.cpu_between(cpu2, cpu3),
            "window_s": t_end - t0,
        }

    def milestones(self, start: float, end: float, status: str) -> dict:
        """First and last time of each step the two logs show for the tasks of one phase."""
        cp = self.cp_log.window(start, end + 0.5)
        wk = self.worker_log.window(start, end + 0.5)
        found = {}

        def add(name, t):
            lo, hi = found.get(name, (t, t))
            found[name] = (min(lo, t), max(hi, t))

        for t, _, category, message in cp:
            if category == "Serverless.Core.Tasks.TaskLauncher" and message.startswith("Placed "):
                add("control plane: task placed, Start sent", t)
            elif category == "Serverless.Core.Reconciliation.ServiceReconciler" and " stops " in message:
                add("control plane: task set to STOPPED, Stop sent", t)
            elif category == "Serverless.Core.Tasks.TaskStateApplier" and f" is {status} " in message:
                add(f"control plane: {status} report applied", t)
            elif category == "Function.Reconcile" and message.startswith("Function Reconcile completed"):
                add("control plane: reconcile executions completed", t)
        for t, _, category, message in wk:
            if category == "Serverless.Worker.Docker.TaskRunner" and message.startswith("Starting "):
                add("worker: Start command taken", t)
            elif category == "Serverless.Worker.Docker.TaskRunner" and message.startswith("Stopping "):
                add("worker: Stop command taken", t)
            elif category == "Serverless.Worker.Reporting.TaskStateReporter" and message.startswith("Reported ") \
                    and f" {status} " in message:
                add(f"worker: {status} reported", t)
        if not found:
            near = [round(t - start, 2) for t, *_ in self.cp_log.lines[-3:]]
            print(f"  !! no control-plane or worker log lines between {start:.3f} and {end:.3f} "
                  f"({len(self.cp_log.lines)} control-plane lines parsed, last ones at {near} s)", flush=True)
        return found

    # -- phase 1: raw docker

    def raw_cycle(self, n: int, label: str) -> dict:
        par = self.raw_parallelism()
        self.wait_quiet()
        mark = self.events.mark()
        cpu0 = self.cpu()
        t0 = time.time()
        p0 = time.perf_counter()
        run = subprocess.run(
            ["xargs", "-P", str(par), "-I{}", "docker", "run", "-d", "--init", "--label", f"{RAW_LABEL}={self.run_id}",
             "--label", f"{RAW_LABEL}.n={{}}", IMAGE, "sleep", "600"],
            input="\n".join(str(i) for i in range(n)) + "\n", capture_output=True, text=True)
        up = time.perf_counter() - p0
        cpu1 = self.cpu()
        if run.returncode != 0:
            raise BenchmarkFailed(f"{label}: raw docker run failed: {run.stderr.strip()[:500]}")
        ids = run.stdout.split()
        running = docker("ps", "-q", "--no-trunc", "--filter", f"label={RAW_LABEL}={self.run_id}",
                         "--filter", "status=running").split()
        if len(ids) != n or set(ids) != set(running):
            raise BenchmarkFailed(f"{label}: {len(running)} of {n} raw containers running")
        starts = [t for t, _ in self.events.since(mark, "start", "raw")]
        time.sleep(1.0)
        mark_down = self.events.mark()
        cpu2 = self.cpu()
        p1 = time.perf_counter()
        t1 = time.time()
        rm = subprocess.run(["xargs", "-P", str(par), "-n", "1", "docker", "rm", "-f"],
                            input="\n".join(ids) + "\n", capture_output=True, text=True)
        down = time.perf_counter() - p1
        cpu3 = self.cpu()
        if rm.returncode != 0:
            raise BenchmarkFailed(f"{label}: raw docker rm -f failed: {rm.stderr.strip()[:500]}")
        left = docker("ps", "-aq", "--filter", f"label={RAW_LABEL}={self.run_id}")
        if left:
            raise BenchmarkFailed(f"{label}: raw containers left: {left.split()}")
        destroys = [t for t, _ in self.events.since(mark_down, "destroy", "raw")]
        return {"label": label, "up_s": up, "down_s": down, "parallelism": par,
                "last_start_s": (max(starts) - t0) if starts else None,
                "last_destroy_s": (max(destroys) - t1) if destroys else None,
                "cpu_up": self.cpu_between(cpu0, cpu1), "cpu_down": self.cpu_between(cpu2, cpu3)}

    # -- phase 2: storage and executions of a cycle

    def idle_baseline(self, seconds: float) -> dict:
        """Storage requests while nothing happens (pollers at their longest interval, heartbeats)."""
        self.wait_quiet()
        time.sleep(3)    # back-offs reach their cap (2 s) after ~3 s of empty polls
        t0 = time.time()
        time.sleep(seconds)
        t1 = time.time()
        time.sleep(0.5)
        reqs = self.az.window(t0, t1)
        return {"seconds": t1 - t0, "requests": len(reqs), "per_s": len(reqs) / (t1 - t0),
                "breakdown": st.breakdown(reqs)}

    def describe_cost(self, calls: int = 10) -> dict:
        """Storage requests of one DescribeServices (the benchmark's own polling), measured alone."""
        self.wait_quiet()
        t0 = time.time()
        for _ in range(calls):
            self.describe()
        t1 = time.time()
        time.sleep(0.5)
        reqs = [r for r in self.az.window(t0, t1) if r.process == st.CONTROL_PLANE and r.service == "table"]
        return {"calls": calls, "table_requests": len(reqs), "per_call": len(reqs) / calls,
                "breakdown": st.breakdown(reqs)}

    def cycle_cost(self, cycle: dict, idle: dict) -> dict:
        reqs = self.az.window(cycle["t0"], cycle["t_end"])
        execs = executions(self.cp_log.window(cycle["t0"], cycle["t_end"]))
        delayed = [r.delay for r in reqs if r.resource == "reconcile" and r.operation == "Messages_Enqueue"
                   and r.delay >= st.DELAYED]
        return {"requests": len(reqs), "window_s": cycle["t_end"] - cycle["t0"],
                "delayed_reconciles": len(delayed),
                "delayed_reconcile_s": (min(delayed), max(delayed)) if delayed else None,
                "idle_equivalent": idle["per_s"] * (cycle["t_end"] - cycle["t0"]),
                "by_process": {p: sum(1 for r in reqs if r.process == p) for p in (st.CONTROL_PLANE, st.WORKER, st.BENCH)},
                "breakdown": st.breakdown(reqs), "executions": execs}

    # -- phase 3: one reconcile

    def wait_timer_free(self) -> None:
        """The timers fire at seconds 0, 15, 30, 45 (health sweep; resync at 0): start a
        measurement 3-9 s after one, so none falls into a window of a second or two."""
        while not (3 <= time.time() % 15 <= 9):
            time.sleep(0.2)

    def one_reconcile(self, label: str) -> dict:
        self.wait_quiet(quiet=2.5)
        self.wait_timer_free()
        self.cp_log.poll()
        done_before = sum(1 for _, _, c, m in self.cp_log.lines
                          if c == "Function.Reconcile" and m.startswith("Function Reconcile completed message"))
        t0 = time.time()
        self.storage.put_message("reconcile", json.dumps({"v": 1, "cluster": self.cluster, "service": STEADY},
                                                         separators=(",", ":")))
        if self.a.wake_port:
            # As every sender does: one datagram naming the queue tells the control plane to look now.
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as wake:
                wake.sendto(b"reconcile", ("127.0.0.1", self.a.wake_port))
        deadline = time.monotonic() + 30
        t_done = None
        while t_done is None:
            self.cp_log.poll()
            completed = [t for t, _, c, m in self.cp_log.lines
                         if c == "Function.Reconcile" and m.startswith("Function Reconcile completed message")]
            if len(completed) > done_before:
                t_done = completed[done_before]
                break
            if time.monotonic() > deadline:
                raise BenchmarkFailed(f"{label}: the reconcile did not complete within 30 s")
            time.sleep(0.05)
        t_end = t_done + 0.05
        time.sleep(0.8)
        reqs = self.az.window(t0, t_end)
        cp = [r for r in reqs if r.process == st.CONTROL_PLANE]
        # The reconcile's own requests: every table request of the control plane in the window,
        # the dequeue that returned our message, its delete, anything it enqueued. Empty polls of
        # any queue are the listeners' background, listed apart.
        own, background = [], []
        for r in cp:
            if r.service == "queue" and r.operation == "Messages_Dequeue" and r.messages == 0:
                background.append(r)
            elif r.service == "queue" and r.resource != "reconcile":
                background.append(r)
            else:
                own.append(r)
        tasks_queries = [{"filter": r.query, "rows": r.rows} for r in own
                         if r.resource == "Tasks" and r.operation == "Table_QueryEntities"]
        execs = executions(self.cp_log.window(t0, t_end))
        return {"label": label, "ms": 1000 * (t_done - t0), "requests": len(own),
                "breakdown": st.breakdown(own), "background": st.breakdown(background),
                "tasks_queries": tasks_queries, "executions": execs,
                "worker_requests_in_window": sum(1 for r in reqs if r.process == st.WORKER)}

    def insert_other_tasks(self, count: int) -> dict:
        """`count` realistic task rows of other groups in the same cluster, written straight into
        the Tasks table: a real row of our service (fetched with its OData types) is the template."""
        template = None
        for row in self.storage.query_full("Tasks", f"Cluster eq '{self.cluster}'"):
            if row.get("LastStatus") == "RUNNING" and row.get("Group") == f"service:{STEADY}":
                template = row
                break
        if template is None:
            raise BenchmarkFailed("no RUNNING task row to use as template")
        for k in [k for k in template if k.startswith("odata.") or k in ("Timestamp", "Timestamp@odata.type")]:
            del template[k]
        fake_instance = secrets.token_hex(16)
        stopped_reason = "Scaling activity initiated by (deployment ecs-svc/0000000000000000000)"
        rows = []
        for i in range(count):
            running = i % 2 == 0
            group = "family:other" if i % 4 == 3 else f"service:other-{i % 40}"
            group_hash = hashlib.sha256(group.encode()).hexdigest()[:8]
            task_id = group_hash + secrets.token_hex(12)
            row = dict(template)
            row["PartitionKey"] = f"{self.cluster}|{group_hash}"
            row["RowKey"] = task_id
            row["Group"] = group
            row["Family"] = "other"
            row["TaskDefinitionArn"] = template["TaskDefinitionArn"].rsplit("/", 1)[0] + "/other:1"
            row["ContainerInstanceId"] = fake_instance
            row["StartedBy"] = "ecs-svc/0000000000000000000" if group.startswith("service:") else None
            row["LastStatus"] = "RUNNING" if running else "STOPPED"
            row["DesiredStatus"] = "RUNNING" if running else "STOPPED"
            if not running:
                now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
                for k in ("StoppingAt", "StoppedAt", "ExecutionStoppedAt"):
                    row[k], row[k + "@odata.type"] = now, "Edm.DateTime"
                row["StopCode"], row["StoppedReason"] = "ServiceSchedulerInitiated", stopped_reason
                if "Containers0" in row:
                    row["Containers0"] = row["Containers0"].replace('"RUNNING"', '"STOPPED"')
            rows.append({k: v for k, v in row.items() if v is not None})

        t0 = time.perf_counter()

        def insert(chunk):
            s = st.Storage(self.a.table_port, self.a.queue_port)
            for row in chunk:
                s.insert_entity("Tasks", row)

        workers = 4
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            list(pool.map(insert, [rows[i::workers] for i in range(workers)]))
        elapsed = time.perf_counter() - t0
        total = len(self.storage.query("Tasks", f"Cluster eq '{self.cluster}'", select="RowKey"))
        return {"inserted": count, "seconds": elapsed, "cluster_task_rows": total,
                "groups": len({r["Group"] for r in rows}), "template_keys": sorted(template.keys())}

    # -- the run

    def run(self) -> dict:
        a = self.a
        print(f"== setup: cluster {self.cluster}, one worker, task definition {FAMILY} (busybox sleep 600, "
              f"memory 16, cpu 0, initProcessEnabled)", flush=True)
        self.setup()
        return self.timing() if a.phase == "timing" else self.counting()

    def timing(self) -> dict:
        """Phase 1, against a silent Azurite (as scripts/run.sh runs it): the warm-up and the timed cycles."""
        a, R = self.a, self.results

        # The first cycle after start-up is the control plane's and the worker's JIT warm-up as much as
        # orchestration: it is reported on its own (R["warmup"]), never in the medians.
        print(f"== warm-up: 0 -> {a.warmup} -> 0 (ours), {a.warmup} raw containers", flush=True)
        wo = self.ours_cycle(a.warmup, "warm-up")
        print(f"  ours up {wo['up_s']:.2f} s, down {wo['down_s']:.2f} s", flush=True)
        wr = self.raw_cycle(a.warmup, "warm-up raw")
        print(f"  raw  up {wr['up_s']:.2f} s, down {wr['down_s']:.2f} s", flush=True)
        R["warmup"] = {"count": a.warmup, "ours_up_s": wo["up_s"], "ours_down_s": wo["down_s"], "raw_up_s": wr["up_s"], "raw_down_s": wr["down_s"]}

        n = a.count
        print(f"== 0 -> {n} -> 0, {a.repeats} times; raw docker at parallelism {self.raw_parallelism()}", flush=True)
        ours, raw = [], []
        for i in range(a.repeats):
            pair = [("ours", self.ours_cycle), ("raw", self.raw_cycle)]
            if i % 2 == 1:
                pair.reverse()      # alternate the order, so drift favours neither side
            for who, fn in pair:
                self.check_busy(f"{who} {i + 1} (start)")
                r = fn(n, f"{who} {i + 1}")
                self.check_busy(f"{who} {i + 1} (end)")
                if who == "ours":
                    ours.append(r)
                    print(f"  {i + 1}/{a.repeats} ours: up {r['up_s']:6.2f} s (containers started {r['first_start_s']:.2f}"
                          f"-{r['last_start_s']:.2f} s)  down {r['down_s']:6.2f} s (removed {r['first_destroy_s']:.2f}"
                          f"-{r['last_destroy_s']:.2f} s)", flush=True)
                else:
                    raw.append(r)
                    print(f"  {i + 1}/{a.repeats} raw : up {r['up_s']:6.2f} s  down {r['down_s']:6.2f} s", flush=True)
        R["ours"], R["raw"] = ours, raw
        return R

    def counting(self) -> dict:
        """Phase 2, all three processes started again with Azurite's --debug log: an unmeasured warm-up,
        the idle baseline, the counted cycles (ours only) and one reconcile with and without other tasks."""
        a, R = self.a, self.results
        print(f"== warm-up: 0 -> {a.warmup} -> 0 (ours)", flush=True)
        self.ours_cycle(a.warmup, "warm-up")
        print(f"== idle storage baseline ({a.idle_seconds:g} s) and the cost of one DescribeServices", flush=True)
        idle = self.idle_baseline(a.idle_seconds)
        describe = self.describe_cost()
        R["idle"], R["describe_cost"] = idle, describe
        print(f"  idle: {idle['per_s']:.2f} storage requests/s; DescribeServices: {describe['per_call']:.1f} table requests each",
              flush=True)

        n = a.count
        print(f"== 0 -> {n} -> 0, {a.repeats} times, counted", flush=True)
        counted, costs = [], []
        for i in range(a.repeats):
            r = self.ours_cycle(n, f"counted {i + 1}")
            c = self.cycle_cost(r, idle)
            counted.append(r)
            costs.append(c)
            print(f"  {i + 1}/{a.repeats} ours: up {r['up_s']:6.2f} s  down {r['down_s']:6.2f} s  storage {c['requests']}, "
                  f"functions {c['executions']['total']}", flush=True)
        R["counted"], R["cycle_costs"] = counted, costs

        k = a.reconcile_tasks
        print(f"== one reconcile of a new {k}-task service '{STEADY}': with only this benchmark's tasks in the cluster, "
              f"then with {a.other_tasks} other task rows",
              flush=True)
        self.ecs.call("CreateService", {"cluster": self.cluster, "serviceName": STEADY, "taskDefinition": FAMILY,
                                        "desiredCount": k, "schedulingStrategy": "REPLICA"})
        deadline = time.monotonic() + 120
        while True:
            s = self.describe(STEADY)
            if s["runningCount"] == k and len(s["deployments"]) == 1:
                break
            if time.monotonic() > deadline:
                raise BenchmarkFailed(f"the {k}-task service did not become stable")
            time.sleep(POLL)
        rows_before = len(self.storage.query("Tasks", f"Cluster eq '{self.cluster}'", select="RowKey"))
        empty = [self.one_reconcile(f"empty {j + 1}") for j in range(a.reconcile_samples)]
        for e in empty:
            print(f"  {rows_before} task rows in the cluster: {e['requests']} storage requests, {e['ms']:.0f} ms; Tasks query rows "
                  f"{[q['rows'] for q in e['tasks_queries']]}", flush=True)
        inserted = self.insert_other_tasks(a.other_tasks)
        print(f"  inserted {inserted['inserted']} task rows in {inserted['seconds']:.1f} s "
              f"({inserted['groups']} groups); the cluster now has {inserted['cluster_task_rows']} task rows", flush=True)
        full = [self.one_reconcile(f"full {j + 1}") for j in range(a.reconcile_samples)]
        self.check_busy("reconcile")
        for e in full:
            print(f"  {inserted['cluster_task_rows']} rows: {e['requests']} storage requests, {e['ms']:.0f} ms; Tasks "
                  f"query rows {[q['rows'] for q in e['tasks_queries']]}", flush=True)
        inserted["cluster_task_rows_before"] = rows_before
        R["reconcile"] = {"empty": empty, "full": full, "inserted": inserted}
        self.update(0, STEADY)
        return R


# ---------------------------------------------------------------- report

def fmt(x, digits=2):
    return f"{x:.{digits}f}"


def render(R: dict) -> str:
    c = R["config"]
    n = c["count"]
    ours, raw, costs = R["ours"], R["raw"], R["cycle_costs"]
    up_o, dn_o = median([r["up_s"] for r in ours]), median([r["down_s"] for r in ours])
    up_r, dn_r = median([r["up_s"] for r in raw]), median([r["down_s"] for r in raw])
    L = []
    L.append(f"# Service scale: 0 -> {n} -> 0 tasks, ours vs raw docker\n")
    L.append(f"`bash bench/service-scale.sh{' --quick' if c['quick'] else ''}` on {R.get('host', '?')}, "
             f"{R.get('when', '?')}. One worker (Worker__MemoryMiB {R.get('worker_memory', '?')}, Worker__Cpu 4096), "
             f"one control plane (standalone), Azurite in memory, Docker {R.get('docker_version', '?')}, "
             f"{c['nproc']} cores shared by all of them. Median of {c['repeats']} runs; every run in `service-scale.json`.\n")
    L.append("Two phases, each with all three processes started afresh: the **timed** cycles (this section) run against a "
             "silent Azurite, as `scripts/run.sh` runs it; the storage requests (next sections) are **counted** in a second "
             "start with Azurite's `--debug` log, which writes about 4 KB per request and made Azurite use 1.6 times the "
             "CPU for the same requests on this machine: a cost of the measurement, not of the system.\n")
    if c.get("busy_at_start"):
        L.append(f"**Warning:** {c['busy_at_start']}\n")
    for d in R.get("disturbed", []):
        L.append(f"**Warning:** other jobs were running during '{d['phase']}': {'; '.join(d['processes'])}\n")
    L.append("## Time\n")
    L.append(f"Ours: `update-service --desired-count {n}` until DescribeServices (polled every {int(c['poll_interval_s'] * 1000)} ms) "
             f"shows runningCount {n} with one deployment; `--desired-count 0` until runningCount 0 and "
             f"`docker ps -aq --filter label={CLUSTER_LABEL}=<cluster>` is empty (removed, not just stopped).  ")
    L.append(f"Raw: `docker run -d --init local/busybox:latest sleep 600` x {n} through `xargs -P {c['raw_parallelism']}` "
             f"(each returns once its container runs), then `docker rm -f` of the {n} through `xargs -P {c['raw_parallelism']}`. "
             f"N = {c['raw_parallelism']}: the worker runs every command it has received at once, up to MaxConcurrentCommands "
             f"= {c['worker_max_concurrent_commands']} (receiving up to {c['worker_receive_batch']} per poll), and the control "
             f"plane sends the {n} Starts in batches of {c['control_plane_launch_batch']} within one reconcile, so all {n} "
             f"can be in flight at once.\n")
    L.append("| | ours (s) | raw docker (s) | ours / raw | bar |")
    L.append("| --- | ---: | ---: | ---: | --- |")
    L.append(f"| 0 -> {n} (scale out) | {fmt(up_o)} | {fmt(up_r)} | {fmt(up_o / up_r)}x | {'within' if up_o / up_r <= 1.15 else 'over'} 1.15x (issue 17) |")
    L.append(f"| {n} -> 0 (scale in) | {fmt(dn_o)} | {fmt(dn_r)} | {fmt(dn_o / dn_r)}x | {'within' if dn_o / dn_r <= 1.3 else 'over'} 1.3x |")
    if (w := R.get("warmup")) is not None:
        L.append(f"| first cycle after start-up, 0 -> {w['count']} (warm-up, not in the medians) | {fmt(w['ours_up_s'])} | "
                 f"{fmt(w['raw_up_s'])} | {fmt(w['ours_up_s'] / w['raw_up_s'])}x | the processes' JIT warm-up as much as orchestration |")
    if counted := R.get("counted"):
        up_c = median([r["up_s"] for r in counted])
        L.append(f"| counting phase, 0 -> {n} with Azurite's debug log (not in the medians) | {fmt(up_c)} | "
                 f"{fmt(up_r)} | {fmt(up_c / up_r)}x | the same cycles, {len(counted)} run(s), against the timed phase's raw median |")
    L.append("")
    L.append("Every run (seconds after the UpdateService call; raw: after the first `docker run`):\n")
    L.append("| run | ours up | first / last container start | ours down | runningCount 0 seen | first / last container removed | raw up | raw down |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for i, (o, r) in enumerate(zip(ours, raw)):
        L.append(f"| {i + 1} | {fmt(o['up_s'])} | {fmt(o['first_start_s'])} / {fmt(o['last_start_s'])} | {fmt(o['down_s'])} | "
                 f"{fmt(o['running_zero_seen_s'])} | {fmt(o['first_destroy_s'])} / {fmt(o['last_destroy_s'])} | "
                 f"{fmt(r['up_s'])} | {fmt(r['down_s'])} |")
    L.append("")
    L.append("Where the time goes: first and last occurrence of each step, seconds after the UpdateService call "
             "(median over the runs; from the control plane's and the worker's logs and `docker events`):\n")
    for title, field in (("0 -> %d" % n, "up_milestones"), ("%d -> 0" % n, "down_milestones")):
        names = []
        for r in ours:
            for name in r[field]:
                if name not in names:
                    names.append(name)
        names.sort(key=lambda name: median([r[field][name][0] for r in ours if name in r[field]]))
        L.append(f"| {title}: step | first | last |")
        L.append("| --- | ---: | ---: |")
        for name in names:
            firsts = [r[field][name][0] for r in ours if name in r[field]]
            lasts = [r[field][name][1] for r in ours if name in r[field]]
            L.append(f"| {name} | {fmt(median(firsts))} | {fmt(median(lasts))} |")
        L.append("")
    L.append("CPU while scaling (% of one core, median of the runs; 'other' = machine busy minus the processes listed: "
             "containerd-shim and runc of the containers being started or removed, the docker CLIs of the raw baseline, "
             "this driver, anything else):\n")
    keys = [k for k in ours[0]["cpu_up"].keys()]
    L.append("| phase | " + " | ".join(keys) + " |")
    L.append("| --- | " + " | ".join("---:" for _ in keys) + " |")
    for name, runs, field in (("ours up", ours, "cpu_up"), ("raw up", raw, "cpu_up"),
                              ("ours down", ours, "cpu_down"), ("raw down", raw, "cpu_down")):
        L.append(f"| {name} | " + " | ".join(f"{median([r[field].get(k, 0) for r in runs]):.0f}" for k in keys) + " |")
    L.append("")

    # storage
    idle, desc = R["idle"], R["describe_cost"]
    med = sorted(costs, key=lambda x: x["requests"])[len(costs) // 2]
    L.append(f"## Storage requests and function executions of one 0 -> {n} -> 0 cycle\n")
    L.append(f"Counted from Azurite's debug log: one `StorageContextMiddleware: RequestMethod=` line per incoming request "
             f"(a table `$batch` is one). Window: from the first UpdateService to the end of the cycle (both phases, the "
             f"pause between them, and until the control plane was quiet for 2 s). Per run: "
             f"{', '.join(str(x['requests']) for x in costs)} requests; the median run is broken down below.\n")
    per_task = med["requests"] / n
    net = med["requests"] - med["idle_equivalent"] - desc["per_call"] * _describe_calls(med)
    L.append("| | requests | per task launched |")
    L.append("| --- | ---: | ---: |")
    L.append(f"| everything in the window ({med['window_s']:.1f} s) | {med['requests']} | {per_task:.1f} |")
    for p, v in med["by_process"].items():
        if v:
            L.append(f"| - sent by the {p} | {v} | {v / n:.1f} |")
    L.append(f"| idle background for as long ({idle['per_s']:.2f}/s measured idle) | {med['idle_equivalent']:.0f} | {med['idle_equivalent'] / n:.1f} |")
    L.append(f"| the benchmark's own DescribeServices polls ({_describe_calls(med)} x {desc['per_call']:.1f}) | "
             f"{desc['per_call'] * _describe_calls(med):.0f} | {desc['per_call'] * _describe_calls(med) / n:.1f} |")
    L.append(f"| **the scaling itself** (everything minus the two above) | **{net:.0f}** | **{net / n:.1f}** |")
    dr = med.get("delayed_reconciles", 0)
    if dr:
        per_reconcile = R["reconcile"]["full"][0]["requests"] if R.get("reconcile") else 4
        lo, hi = med["delayed_reconcile_s"]
        L.append(f"| deferred, not in the window: {dr} reconcile messages enqueued with a {lo}-{hi} s delay, each "
                 f"one more Reconcile execution of ~{per_reconcile} requests when it comes due | ~{dr * per_reconcile} | "
                 f"~{dr * per_reconcile / n:.1f} |")
        L.append(f"| **the scaling itself, deferred reconciles included** | **~{net + dr * per_reconcile:.0f}** | "
                 f"**~{(net + dr * per_reconcile) / n:.1f}** |")
    L.append("")
    L.append("By table/queue and verb (sender, resource, Azurite operation, HTTP method):\n")
    L.append("| sender | table / queue | operation | verb | requests | per task |")
    L.append("| --- | --- | --- | --- | ---: | ---: |")
    for proc, kind, op, method, count in med["breakdown"]:
        L.append(f"| {proc} | {kind} | {op} | {method} | {count} | {count / n:.2f} |")
    L.append("")
    e = med["executions"]
    L.append("Function executions in the same window (from the control plane's log: one `ApiEndpoint` line per API "
             "request; the standalone host's `Function <name> completed message` / `Timer function <name> completed` "
             "lines, logged at Debug, enabled for this run):\n")
    L.append("| function | executions | per task |")
    L.append("| --- | ---: | ---: |")
    for name, v in sorted(e["api"].items(), key=lambda x: -x[1]):
        L.append(f"| HTTP {name} | {v} | {v / n:.2f} |")
    for name, v in sorted(e["queue"].items(), key=lambda x: -x[1]):
        L.append(f"| queue {name} | {v} | {v / n:.2f} |")
    for name, v in sorted(e["timer"].items(), key=lambda x: -x[1]):
        L.append(f"| timer {name} | {v} | {v / n:.2f} |")
    dpolls = e["api"].get("DescribeServices", 0)
    L.append(f"| **total** | **{e['total']}** | **{e['total'] / n:.2f}** |")
    L.append(f"| total without the benchmark's DescribeServices polls | {e['total'] - dpolls} | {(e['total'] - dpolls) / n:.2f} |")
    if dr:
        L.append(f"| + deferred Reconcile executions (the delayed messages above, after the window) | {dr} | {dr / n:.2f} |")
    L.append("")
    L.append(f"Cross-check: {e['task_state_applied']} task state changes applied (`TaskStateApplier` lines) for "
             f"{e['queue'].get('TaskEvents', 0)} TaskEvents executions.\n")
    L.append(f"Idle, for reference ({idle['seconds']:.0f} s, nothing running): {idle['requests']} requests:\n")
    L.append("| sender | table / queue | operation | verb | requests |")
    L.append("| --- | --- | --- | --- | ---: |")
    for proc, kind, op, method, count in idle["breakdown"]:
        L.append(f"| {proc} | {kind} | {op} | {method} | {count} |")
    L.append("")

    # reconcile
    rec = R["reconcile"]
    ins = rec["inserted"]
    k = c["reconcile_service_tasks"]
    L.append(f"## One reconcile of a stable {k}-task service: cluster size does not matter\n")
    L.append(f"A new service `{STEADY}` (same task definition, {k} tasks) runs and is stable. "
             f"A reconcile message `{{\"v\":1,\"cluster\":\"<c>\",\"service\":\"{STEADY}\"}}` is put on queue `reconcile` "
             f"directly (Queue REST, SharedKeyLite), the window ends when the control plane logs its completion. Counted: "
             f"the control plane's table requests, the dequeue that returned the message and its delete (empty polls of the "
             f"listeners in the window are background and left out). First with only this benchmark's tasks in the cluster ({STEADY}'s {k} and the stopped tasks of `{SERVICE}`), then {ins['inserted']} other task rows are written "
             f"straight into the `Tasks` table (a real row of the service, read with its OData types, as the template; half "
             f"RUNNING, half STOPPED; {ins['groups']} groups: `service:other-0..39` and `family:other`, each in its own "
             f"partition `cluster|sha256(group)[:8]`) and the same reconcile is measured again.\n")
    L.append("| cluster | task rows in the cluster | storage requests per reconcile (each run) | Tasks query: rows returned | enqueue to completed (ms, median; includes the listener's poll wait) |")
    L.append("| --- | ---: | --- | --- | ---: |")
    L.append(f"| this service and the {c['count']}-task service's stopped tasks | {ins.get('cluster_task_rows_before', '?')} | {', '.join(str(x['requests']) for x in rec['empty'])} | "
             f"{_rows(rec['empty'])} | {median([x['ms'] for x in rec['empty']]):.0f} |")
    L.append(f"| + {ins['inserted']} other tasks | {ins['cluster_task_rows']} | {', '.join(str(x['requests']) for x in rec['full'])} | "
             f"{_rows(rec['full'])} | {median([x['ms'] for x in rec['full']]):.0f} |")
    L.append("")
    one = rec["full"][len(rec["full"]) // 2]
    L.append("What one reconcile does (with the other rows present):\n")
    L.append("| sender | table / queue | operation | verb | requests |")
    L.append("| --- | --- | --- | --- | ---: |")
    for proc, kind, op, method, count in one["breakdown"]:
        L.append(f"| {proc} | {kind} | {op} | {method} | {count} |")
    L.append("")
    if one["tasks_queries"]:
        L.append(f"The Tasks query's filter: `{one['tasks_queries'][0]['filter']}`.\n")
    return "\n".join(L) + "\n"


def _describe_calls(cost: dict) -> int:
    return cost["executions"]["api"].get("DescribeServices", 0)


def _rows(samples: list) -> str:
    return ", ".join("/".join(str(q["rows"]) for q in s["tasks_queries"]) or "-" for s in samples)


def main() -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--url", required=True)
    r.add_argument("--cluster", required=True)
    r.add_argument("--cp-log", required=True)
    r.add_argument("--worker-log", required=True)
    r.add_argument("--phase", choices=("timing", "counting"), required=True,
                   help="timing: warm-up and timed cycles, ours and raw (Azurite silent), written to --json; counting: "
                        "counted cycles and one reconcile (Azurite with --debug), merged with --timing-json into the report")
    r.add_argument("--timing-json", help="the timing phase's results (--phase counting)")
    r.add_argument("--azurite-log", help="Azurite's debug log (--phase counting)")
    r.add_argument("--cp-pid", type=int, required=True)
    r.add_argument("--worker-pid", type=int, required=True)
    r.add_argument("--azurite-pid", type=int, required=True)
    r.add_argument("--table-port", type=int, required=True)
    r.add_argument("--queue-port", type=int, required=True)
    r.add_argument("--worker-memory", type=int, required=True)
    r.add_argument("--wake-port", type=int, default=0, help="the control plane's wake port (UDP); 0: no wake after the put")
    r.add_argument("--count", type=int, default=50)
    r.add_argument("--repeats", type=int, default=3)
    r.add_argument("--warmup", type=int, default=10)
    r.add_argument("--idle-seconds", type=float, default=10)
    r.add_argument("--reconcile-tasks", type=int, default=10)
    r.add_argument("--reconcile-samples", type=int, default=3)
    r.add_argument("--other-tasks", type=int, default=2000)
    # From the environment, not argv: pgrep -f would find the pattern in this process's own command line.
    r.add_argument("--busy-note", default=os.environ.get("SERVICESCALE_BUSY_NOTE", ""))
    r.add_argument("--busy-pattern", default=os.environ.get(
        "SERVICESCALE_BUSY_PATTERN", "dotnet test|vstest|testhost|read-throughput.sh|run-task.sh"))
    r.add_argument("--quick", action="store_true")
    r.add_argument("--out", help="the Markdown report (--phase counting)")
    r.add_argument("--json", required=True)
    a = p.parse_args()
    if a.phase == "counting" and not (a.azurite_log and a.timing_json and a.out):
        p.error("--phase counting needs --azurite-log, --timing-json and --out")

    bench = Bench(a)
    try:
        results = bench.run()
    except BenchmarkFailed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        if bench.events:
            bench.events.close()
    if a.phase == "timing":
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
        return 0
    with open(a.timing_json) as f:
        timing = json.load(f)
    # The report's configuration and cycles are the timing phase's; the counting phase adds its own.
    results = {**results, **timing, "disturbed": timing.get("disturbed", []) + results.get("disturbed", [])}
    results["host"] = os.uname().nodename
    results["when"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results["worker_memory"] = a.worker_memory
    results["docker_version"] = docker("version", "--format", "{{.Server.Version}}", check=False) or "?"
    write_report(a.out, render(results), a.json, results, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
