"""RunTask benchmark driver: RunTask-to-RUNNING latency next to a raw `docker run -d` on the same
engine, the storage transactions and function executions each launched task costs, and what
the idle control plane and worker cost.

    runtask.py setup URL --cluster C           create the cluster and the task definition
    runtask.py run --url URL --cluster C ...   measure, print and write the report

run-task.sh starts Azurite (--debug), the control plane and a worker and calls these; see
bench/README.md.
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
import uuid

import readbench
import runtask_logs as logs
import runtask_report as report
from readbench import BenchmarkFailed, loud, tree_cpu_seconds, machine_cpu
from benchcommon import Client, write_report

IMAGE = "local/busybox:latest"
RAW_OPTIONS = ("--memory", "32m", "--cpu-shares", "2", "--stop-timeout", "2")
FAMILY = "bench-runtask-sleep"
RAW_LABEL = "bench-run-task"
CLUSTER_LABEL = "com.amazonaws.ecs.cluster"
TASK_ARN_LABEL = "com.amazonaws.ecs.task-arn"
CLK_TCK = os.sysconf("SC_CLK_TCK")
QUIET_CPU = 25        # % of one core used outside the benchmark below which the machine is quiet
DISTURBED_CPU = 50    # ... above which a measured pair counts as disturbed


# ---------------------------------------------------------------- the ECS API, raw and signed

class Ecs(Client):
    def call(self, action: str, params: dict, timeout: float = 30) -> dict:
        status, body = self.send(action, params, timeout)
        if status != 200:
            raise BenchmarkFailed(f"{action} {params} -> HTTP {status}: {body[:500]!r}")
        return json.loads(body)

    def run_task(self, cluster: str, count: int = 1) -> list:
        # clientToken as boto3 and the AWS CLI fill it in (idempotencyToken in the model), so the
        # server does the same work as for an SDK user.
        answer = self.call("RunTask", {"cluster": cluster, "taskDefinition": FAMILY, "count": count,
                                       "clientToken": str(uuid.uuid4())})
        if answer.get("failures"):
            raise BenchmarkFailed(f"RunTask failures: {answer['failures']}")
        return [t["taskArn"] for t in answer["tasks"]]


def setup(url: str, cluster: str) -> None:
    ecs = Ecs(url)
    ecs.call("CreateCluster", {"clusterName": cluster})
    ecs.call("RegisterTaskDefinition", {
        "family": FAMILY,
        "containerDefinitions": [{
            "name": "app", "image": IMAGE, "command": ["sleep", "300"], "memory": 32,
            "essential": True,
            # busybox sleep as PID 1 ignores SIGTERM: without this every stop waits 30 s for SIGKILL.
            "stopTimeout": 2,
        }],
    })


# ---------------------------------------------------------------- docker

class DockerEvents:
    """`docker events` for container create/start/destroy, kept for our cluster's and our raw
    containers only (the engine is shared). Watching it touches no storage. The create and start
    events give both sides the same two engine-clock marks: when the engine answered `create`
    and when it answered `start`."""

    def __init__(self, cluster: str, run_id: str):
        self.cluster, self.run_id = cluster, run_id
        self.events = []           # (epoch, action, container id, attributes)
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            ["docker", "events", "--filter", "type=container", "--filter", "event=create",
             "--filter", "event=start", "--filter", "event=destroy", "--format",
             "{{.TimeNano}} {{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        time.sleep(0.5)    # subscribed before anything is launched

    def _read(self):
        for line in self.proc.stdout:
            try:
                nanos, action, cid, attrs = line.rstrip("\n").split(" ", 3)
                attributes = json.loads(attrs)
            except ValueError:
                continue
            if attributes.get(CLUSTER_LABEL) != self.cluster and attributes.get(RAW_LABEL) != self.run_id:
                continue
            with self.cond:
                self.events.append((int(nanos) / 1e9, action, cid, attributes))
                self.cond.notify_all()

    def by_task(self, action: str) -> dict:
        with self.cond:
            return {a.get(TASK_ARN_LABEL): t for t, act, _, a in self.events
                    if act == action and a.get(TASK_ARN_LABEL)}

    def by_container(self, action: str) -> dict:
        with self.cond:
            return {cid: t for t, act, cid, _ in self.events if act == action}

    def wait_tasks(self, action: str, arns: set, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                seen = {a.get(TASK_ARN_LABEL) for _, act, _, a in self.events if act == action}
                if arns <= seen:
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchmarkFailed(f"docker: only {len(arns & seen)} of {len(arns)} task "
                                          f"containers saw '{action}' within {timeout:.0f} s")
                self.cond.wait(min(left, 0.5))

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def docker(*args, check=True) -> str:
    out = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and out.returncode != 0:
        raise BenchmarkFailed(f"docker {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


def docker_time(stamp: str) -> float:
    # "2026-11-25T04:58:41.976722507Z": Python takes at most 6 fractional digits
    head, _, frac = stamp.rstrip("Z").partition(".")
    import datetime
    return datetime.datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00").timestamp()


# ---------------------------------------------------------------- the measurements

class Bench:
    def __init__(self, args):
        self.args = args
        self.ecs = Ecs(args.url)
        self.observer = Ecs(args.url)    # its own connection: it polls from another thread
        self.last_arn = None
        self.cluster = args.cluster
        self.run_id = args.run_id
        self.cp_log = logs.LogTail(args.cp_log)
        self.worker_log = logs.LogTail(args.worker_log)
        self.pids = {"control plane": args.cp_pid, "worker": args.worker_pid,
                     "azurite": args.azurite_pid}
        dockerd = subprocess.run(["pgrep", "-x", "dockerd"], capture_output=True, text=True).stdout.split()
        containerd = subprocess.run(["pgrep", "-x", "containerd"], capture_output=True, text=True).stdout.split()
        self.engine_pids = [int(p) for p in dockerd + containerd]
        self.events = None
        self.raw_containers = []
        self.rng = random.Random(20261125)   # the same gaps in every run
        self.quiet_waited = 0.0
        self.results = {"config": {k: v for k, v in vars(args).items() if k not in ("func",)}}

    # -- helpers

    def poll_logs(self):
        self.cp_log.poll()
        self.worker_log.poll()

    def cpu_snapshot(self) -> dict:
        snap = {name: tree_cpu_seconds([pid]) for name, pid in self.pids.items()}
        snap["docker engine"] = tree_cpu_seconds(self.engine_pids) if self.engine_pids else 0.0
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        # This driver and the docker CLI / docker events processes it runs.
        snap["driver"] = (me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
                          + (tree_cpu_seconds([self.events.proc.pid]) if self.events else 0.0))
        snap["_machine"] = machine_cpu()
        snap["_t"] = time.monotonic()
        return snap

    @staticmethod
    def cpu_between(a: dict, b: dict) -> dict:
        wall = b["_t"] - a["_t"]
        out = {k: 100 * (b[k] - a[k]) / wall for k in a if not k.startswith("_")}
        busy0, total0 = a["_machine"]
        busy1, total1 = b["_machine"]
        cores = os.cpu_count() or 1
        out["machine busy"] = 100 * cores * (busy1 - busy0) / max(1, total1 - total0)
        # The engine is counted with the engine's own processes; container processes (sleep) use nothing.
        out["other processes"] = max(0.0, out["machine busy"] - sum(
            v for k, v in out.items() if k not in ("machine busy",)))
        out["seconds"] = wall
        return out

    def wait_instance(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            listed = self.ecs.call("ListContainerInstances", {"cluster": self.cluster})
            arns = listed.get("containerInstanceArns", [])
            if arns:
                d = self.ecs.call("DescribeContainerInstances",
                                  {"cluster": self.cluster, "containerInstances": arns})
                if any(i["agentConnected"] and i["status"] == "ACTIVE" for i in d["containerInstances"]):
                    return
            if time.monotonic() > deadline:
                raise BenchmarkFailed(f"no connected container instance in {self.cluster} after {timeout:.0f} s")
            time.sleep(0.3)

    def wait_applied(self, arns: set, status: str, timeout: float, from_line: int = 0) -> dict:
        """Until the control plane logged `<arn> is <status>` for every arn (from its log file:
        no API call, no storage). Returns arn -> time applied."""
        deadline = time.monotonic() + timeout
        while True:
            self.poll_logs()
            applied = {}
            for t, arn, last, _ in logs.task_applications(self.cp_log.lines[from_line:]):
                if last == status and arn in arns:
                    applied.setdefault(arn, t)
            if len(applied) == len(arns):
                return applied
            if time.monotonic() > deadline:
                raise BenchmarkFailed(f"control plane applied {status} for only {len(applied)} of "
                                      f"{len(arns)} tasks within {timeout:.0f} s")
            time.sleep(0.05)

    def wait_heartbeat(self, running: int, after: float, timeout: float) -> bool:
        """Until the worker logged a heartbeat with `running` tasks (the count-change heartbeat
        that follows a burst, debounced 1 s), written after `after`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll_logs()
            if any(t >= after - 0.005 and r == running and p == 0
                   for t, r, p in logs.heartbeats(self.worker_log.lines)):
                return True
            time.sleep(0.05)
        return False

    def describe_until_running(self, arn: str, timeout: float = 60) -> tuple:
        polls, rtts = 0, []
        deadline = time.monotonic() + timeout
        while True:
            t = time.perf_counter()
            d = self.ecs.call("DescribeTasks", {"cluster": self.cluster, "tasks": [arn]})
            rtts.append(time.perf_counter() - t)
            polls += 1
            status = d["tasks"][0]["lastStatus"] if d.get("tasks") else "MISSING"
            if status == "RUNNING":
                return time.time(), polls, rtts
            if status in ("STOPPED", "MISSING") or time.monotonic() > deadline:
                raise BenchmarkFailed(f"{arn} is {status}, not RUNNING: {json.dumps(d)[:800]}")
            time.sleep(self.args.poll_interval)

    def wait_queue_drained(self, from_line: int, timeout: float) -> bool:
        """Until the task-events invocation that applied the last report (TaskStateApplier line)
        has also finished: a TaskEvents completion line follows it (QueueTriggerListener's
        completion line comes after the message's delete and after the handler's last write, e.g.
        the reservation release of a STOPPED task). One message may carry several reports."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll_logs()
            lines = self.cp_log.lines[from_line:]
            last_applied = max((i for i, l in enumerate(lines) if l.category == "Serverless.Core.Tasks.TaskStateApplier"), default=-1)
            done = [i for i, l in enumerate(lines[last_applied + 1:])
                    if l.category == "Function.TaskEvents" and l.message.startswith("Function TaskEvents completed message")]
            if last_applied < 0 or done:
                return True
            time.sleep(0.05)
        return False

    def stop_tasks(self, arns: list, timeout: float = 120) -> None:
        self.poll_logs()
        from_line = len(self.cp_log.lines)
        for arn in arns:
            self.ecs.call("StopTask", {"cluster": self.cluster, "task": arn, "reason": "benchmark cleanup"})
        self.wait_applied(set(arns), "STOPPED", timeout, from_line)
        self.events.wait_tasks("destroy", set(arns), timeout)

    # -- phase 1: latency

    def ours_sample(self) -> dict:
        t0 = time.time()
        [arn] = self.ecs.run_task(self.cluster)
        t_resp = time.time()
        t_running, polls, rtts = self.describe_until_running(arn)
        return {"arn": arn, "t0": t0, "t_runtask_answered": t_resp, "t_running_seen": t_running,
                "ms": 1000 * (t_running - t0), "runtask_ms": 1000 * (t_resp - t0),
                "describe_polls": polls, "describe_rtt_ms": [1000 * r for r in rtts]}

    def observe(self, stop: threading.Event, polls: list) -> None:
        """The client's DescribeTasks polling, the same call at the same interval, of the last task
        of ours (RUNNING, or stopped: the same read and answer), with nothing to wait for."""
        arn = self.last_arn or "0123456789abcdef0123456789abcdef"
        while not stop.is_set():
            self.observer.call("DescribeTasks", {"cluster": self.cluster, "tasks": [arn]})
            polls.append(time.perf_counter())
            stop.wait(self.args.poll_interval)

    def raw_sample(self) -> dict:
        # This machine runs the client, the control plane and Azurite on the engine's two cores, so
        # while ours starts, the client's polling (a signed request, the control plane's answer, an
        # Azurite query, every 20 ms) takes CPU the engine then waits for; on Azure neither the
        # control plane nor storage share the Docker host. With --raw-observer on (the default) the
        # raw `docker run -d` runs with the same polling going on, so both engines work beside the
        # same observer; off, it runs with nothing else of the benchmark running.
        stop, polls, observer = threading.Event(), [], None
        if self.args.raw_observer == "on":
            observer = threading.Thread(target=self.observe, args=(stop, polls), daemon=True)
            observer.start()
            time.sleep(self.args.poll_interval)     # polling, as during ours, before the command starts
        t0 = time.time()
        p0 = time.perf_counter()
        # The options the worker gives our container from the task definition (memory 32 MiB, the
        # smallest CPU shares, stopTimeout 2 s), so both engines' create and start do the same work.
        try:
            cid = docker("run", "-d", "--label", f"{RAW_LABEL}={self.run_id}", *RAW_OPTIONS, IMAGE, "sleep", "300")
        finally:
            p1 = time.perf_counter()
            stop.set()
            if observer is not None:
                observer.join()
        self.raw_containers.append(cid)
        inspected = docker("inspect", "-f", "{{.State.Running}} {{.State.StartedAt}}", cid)
        p2 = time.perf_counter()
        running, started_at = inspected.split(" ", 1)
        if running != "true":
            raise BenchmarkFailed(f"raw container {cid[:12]} is not running: {inspected}")
        return {"id": cid, "t0": t0, "ms": 1000 * (p1 - p0), "inspect_running_ms": 1000 * (p2 - p0),
                "started_at_ms": 1000 * (docker_time(started_at) - t0),
                "observer_polls": sum(1 for t in polls if p0 <= t <= p1)}

    def latency(self) -> None:
        a = self.args
        print(f"== latency: {a.warmup} warm-up + {a.samples} measured pairs (ours and raw docker "
              f"run -d, {'alternating which goes first' if a.order == 'alternate' else 'ours first'}), {a.gap:g}-{a.gap + a.gap_jitter:g} s from the end of one of ours to the next", flush=True)
        ours, raw = [], []
        launched = []
        cpu0 = None
        for i in range(a.warmup + a.samples):
            measured = i >= a.warmup
            # Warm-up tasks go (this also warms StopTask's path), and so do tasks about to end
            # on their own (sleep 300 exits after 5 minutes, which would report STOPPED in the
            # middle of later samples); then the pollers settle again. Not measured.
            if launched and (i == a.warmup or time.monotonic() - launched[0][1] > 240):
                self.stop_tasks([arn for arn, _ in launched])
                launched = []
                time.sleep(a.gap + self.rng.uniform(0, a.gap_jitter))
            if i == a.warmup:
                cpu0 = self.cpu_snapshot()
            pair0 = self.cpu_snapshot()
            # Alternate which side goes first: the second of a pair finds the engine just used
            # (caches warm, no idle gap), the first finds it after seconds of quiet.
            ours_first = a.order == "ours-first" or (a.order == "alternate" and i % 2 == 0)
            if ours_first:
                o = self.ours_sample()
                t_end = time.monotonic()
                time.sleep(0.5)      # the tail of ours (heartbeat, log follower) out of the way of raw's sample
                r = self.raw_sample()
            else:
                r = self.raw_sample()
                time.sleep(0.5)
                o = self.ours_sample()
                t_end = time.monotonic()
            o["first"] = r["first"] = ours_first
            self.last_arn = o["arn"]
            launched.append((o["arn"], time.monotonic()))
            pair_cpu = self.cpu_between(pair0, self.cpu_snapshot())
            docker("rm", "-f", r["id"])
            o["other_cpu"] = r["other_cpu"] = pair_cpu["other processes"]
            if measured:
                ours.append(o)
                raw.append(r)
            tag = f"{i - a.warmup + 1:3d}/{a.samples}" if measured else f"warm-up {i + 1}"
            print(f"  {tag}: {'ours first' if ours_first else 'raw first '} ours {o['ms']:7.0f} ms (RunTask {o['runtask_ms']:4.0f} ms, "
                  f"{o['describe_polls']:3d} DescribeTasks)   raw docker run -d {r['ms']:5.0f} ms",
                  flush=True)
            # Idle long enough for both pollers to reach their longest interval, plus a random
            # part as long as that interval, so a RunTask lands at a random point of their cycles.
            left = a.gap + self.rng.uniform(0, a.gap_jitter) - (time.monotonic() - t_end)
            if left > 0.5:
                time.sleep(left - 0.5)
            # The shared machine: the last 0.5 s of the gap is measured, and while processes
            # outside the benchmark keep more than a quarter of a core busy the next pair waits
            # (at most 3 s each time, 20 s in all).
            for _ in range(7):
                s0 = self.cpu_snapshot()
                time.sleep(0.5)
                other = self.cpu_between(s0, self.cpu_snapshot())["other processes"]
                if other <= QUIET_CPU or self.quiet_waited >= 20:
                    break
                self.quiet_waited += 0.5
        cpu = self.cpu_between(cpu0, self.cpu_snapshot())
        self.results["latency"] = {"ours": ours, "raw": raw, "cpu": cpu,
                                   "quiet_waited_s": self.quiet_waited}
        self.stop_tasks([arn for arn, _ in launched])

    # -- phase 2: cost per task

    def cost_window(self, name: str, kind: str, arns_or_counts) -> dict:
        """One measured window. kind "run": arns_or_counts is the list of RunTask counts;
        "stop": the task ARNs to stop. Only the launching/stopping calls touch the API; the end
        is detected from docker events and the two processes' log files."""
        a = self.args
        time.sleep(a.settle)                   # idle: the pollers are back at their longest interval
        self.poll_logs()
        from_line = len(self.cp_log.lines)
        t_start = time.time()
        snap0 = self.cpu_snapshot()
        calls = []
        if kind == "run":
            arns = []
            for count in arns_or_counts:
                c0 = time.perf_counter()
                arns += self.ecs.run_task(self.cluster, count)
                calls.append(1000 * (time.perf_counter() - c0))
            t_sent = time.time()
            self.events.wait_tasks("start", set(arns), 120)
            t_docker = time.time()
            applied = self.wait_applied(set(arns), "RUNNING", 120, from_line)
            expect_running = len(arns)
        else:
            arns = list(arns_or_counts)
            for arn in arns:
                c0 = time.perf_counter()
                self.ecs.call("StopTask", {"cluster": self.cluster, "task": arn, "reason": "benchmark"})
                calls.append(1000 * (time.perf_counter() - c0))
            t_sent = time.time()
            self.events.wait_tasks("destroy", set(arns), 120)
            t_docker = time.time()
            applied = self.wait_applied(set(arns), "STOPPED", 120, from_line)
            expect_running = 0
        drained = self.wait_queue_drained(from_line, 30)
        heartbeat = self.wait_heartbeat(expect_running, t_start, 10)
        # Log lines are written after the work they describe; a short tail makes sure the last
        # storage calls (already sent) fall inside the window. Idle polling in it is counted.
        time.sleep(0.2)
        t_end = time.time()
        cpu = self.cpu_between(snap0, self.cpu_snapshot())
        w = {"name": name, "kind": kind, "tasks": len(arns), "arns": arns,
             "calls": len(calls), "call_ms": calls, "t_start": t_start, "t_sent": t_sent,
             "t_docker_done": t_docker, "t_applied": max(applied.values()), "t_end": t_end,
             "heartbeat_seen": heartbeat, "drained": drained, "cpu": cpu}
        print(f"  {name}: {len(arns)} tasks, {len(calls)} calls in {t_sent - t_start:.1f} s, "
              f"docker done +{t_docker - t_start:.1f} s, control plane applied all "
              f"+{w['t_applied'] - t_start:.1f} s, window {t_end - t_start:.1f} s"
              f"{'' if heartbeat else ' (no heartbeat with the final count seen)'}", flush=True)
        return w

    def cost(self) -> None:
        a = self.args
        n = a.cost_tasks
        print(f"== cost: windows measured from Azurite's debug log and the control plane's log "
              f"(settle {a.settle:g} s before each)", flush=True)
        run1 = self.cost_window(f"run {n} x RunTask(count=1)", "run", [1] * n)
        stop = self.cost_window(f"stop {n} (StopTask each)", "stop", run1["arns"])
        per = min(10, n)
        run10 = self.cost_window(f"run {n // per} x RunTask(count={per})", "run", [per] * (n // per))
        # run10's tasks keep running through the idle phase; run-task.sh removes them at the end.
        self.running_in_idle = len(run10["arns"])
        self.results["windows"] = [run1, stop, run10]

    # -- phase 3: idle

    def thread_cpu(self, pid: int) -> dict:
        """thread name -> (cpu seconds, thread count) for one process."""
        out = {}
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return out
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    raw = f.read()
            except OSError:
                continue
            name = raw[raw.index("(") + 1:raw.rindex(")")]
            fields = raw[raw.rindex(")") + 2:].split()
            cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
            s, c = out.get(name, (0.0, 0))
            out[name] = (s + cpu, c + 1)
        return out

    @staticmethod
    def thread_delta(a: dict, b: dict, wall: float) -> list:
        rows = []
        for name, (cpu, count) in b.items():
            before = a.get(name, (0.0, 0))[0]
            rows.append((name, count, 100 * (cpu - before) / wall))
        return sorted(rows, key=lambda r: -r[2])

    def startup_cpu(self, seconds: float = 3.0) -> None:
        """Both processes right after start-up and their first requests (cluster, task
        definition, registration), before any task: per thread, to show what a freshly started
        .NET process does while nothing is asked of it."""
        before = {k: self.thread_cpu(self.pids[k]) for k in ("control plane", "worker")}
        t = time.monotonic()
        time.sleep(seconds)
        wall = time.monotonic() - t
        self.results["startup"] = {k: self.thread_delta(before[k], self.thread_cpu(self.pids[k]), wall)
                                   for k in before}
        self.results["startup_seconds"] = wall

    def idle(self) -> None:
        a = self.args
        print(f"== idle: {a.idle:g} s with no API calls, {self.running_in_idle} tasks running", flush=True)
        time.sleep(a.settle)
        t_start = time.time()
        slices, threads = [], {}
        proc_threads0 = {k: self.thread_cpu(self.pids[k]) for k in ("control plane", "worker")}
        snap = self.cpu_snapshot()
        first = snap
        step = min(10.0, a.idle)
        while time.time() - t_start < a.idle - 0.01:
            time.sleep(min(step, a.idle - (time.time() - t_start)))
            nxt = self.cpu_snapshot()
            slices.append(self.cpu_between(snap, nxt))
            snap = nxt
        t_end = time.time()
        wall = snap["_t"] - first["_t"]
        for k in ("control plane", "worker"):
            threads[k] = self.thread_delta(proc_threads0[k], self.thread_cpu(self.pids[k]), wall)
        total = self.cpu_between(first, snap)
        self.results["idle"] = {"t_start": t_start, "t_end": t_end, "cpu": total,
                                "tasks_running": self.running_in_idle,
                                "cpu_slices": slices, "threads": threads}
        print("  cpu%: " + ", ".join(f"{k} {v:.1f}" for k, v in total.items() if k != "seconds"),
              flush=True)

    # -- after the run: join the logs

    def analyse(self) -> None:
        print("== reading the logs", flush=True)
        time.sleep(1.0)    # Azurite's log is written asynchronously
        self.poll_logs()
        first = min(o["t0"] for o in self.results["latency"]["ours"]) - 30
        requests = logs.parse_azurite(self.args.azurite_log, since=first)
        cp_lines, worker_lines = self.cp_log.lines, self.worker_log.lines

        # Latency breakdown: join client times, the worker's and the control plane's log lines,
        # docker's start events and the queue polls that picked the messages up.
        worker_tasks = logs.worker_task_lines(worker_lines)
        applied = {}
        for t, arn, last, _ in logs.task_applications(cp_lines):
            if last == "RUNNING":
                applied.setdefault(arn, t)
        starts = self.events.by_task("start")
        creates = self.events.by_task("create")
        raw_starts = self.events.by_container("start")
        raw_creates = self.events.by_container("create")
        ci_polls = sorted(r.t for r in requests if r.resource.startswith("ci-")
                          and r.operation == "Messages_Dequeue")
        ci_sends = sorted(r.t for r in requests if r.resource.startswith("ci-")
                          and r.operation == "Messages_Enqueue")

        def last_before(polls, t):
            import bisect
            i = bisect.bisect_right(polls, t + 0.002)
            return polls[i - 1] if i else None

        express_starts = 0
        for o in self.results["latency"]["ours"]:
            w = worker_tasks.get(o["arn"], {})
            received = None
            if "starting" in w:
                # Taken from the queue when a poll of it came between the Start's enqueue and the worker taking it;
                # otherwise it came express (in the wake datagram) and the worker took it as it arrived.
                sent, polled = last_before(ci_sends, w["starting"]), last_before(ci_polls, w["starting"])
                express = sent is not None and (polled is None or polled < sent)
                express_starts += express
                received = w["starting"] if express else polled
            marks = {
                "runtask_answered": o["t_runtask_answered"],
                "worker_received": received,
                "container_created": creates.get(o["arn"]),
                "container_started": starts.get(o["arn"]),
                "worker_reported": w.get("reported_running"),
                "cp_applied": applied.get(o["arn"]),
                "running_seen": o["t_running_seen"],
            }
            o["marks_ms"] = {k: (1000 * (v - o["t0"]) if v else None) for k, v in marks.items()}
        lat = self.results["latency"]
        measured = [l for l in cp_lines if min(o["t0"] for o in lat["ours"]) <= l.t <= max(o["t_running_seen"] for o in lat["ours"])]
        lat["express"] = {
            "samples": len(lat["ours"]), "starts": express_starts,
            "report_messages": sum(1 for l in measured if "Function TaskEvents completed message" in l.message),
            "reports": sum(1 for l in measured if "Function TaskEvents completed message express-" in l.message),
        }
        t_a = min(o["t0"] for o in lat["ours"])
        t_b = max(o["t_running_seen"] for o in lat["ours"])
        lat["describe_server_ms"] = [ms for t, action, _, ms in logs.api_calls(cp_lines)
                                     if action == "DescribeTasks" and t_a <= t <= t_b]
        lat["runtask_server_ms"] = [ms for t, action, _, ms in logs.api_calls(cp_lines)
                                    if action == "RunTask" and t_a <= t <= t_b]
        for r in self.results["latency"]["raw"]:
            t = raw_starts.get(r["id"])
            r["start_event_ms"] = 1000 * (t - r["t0"]) if t else None
            t = raw_creates.get(r["id"])
            r["create_event_ms"] = 1000 * (t - r["t0"]) if t else None

        # Cost windows.
        for w in self.results["windows"]:
            reqs = logs.in_window(requests, w["t_start"], w["t_end"])
            lines = [l for l in cp_lines if w["t_start"] <= l.t <= w["t_end"]]
            w["storage"] = len(reqs)
            w["storage_by_process"] = {p: sum(1 for r in reqs if r.process == p)
                                       for p in (logs.CONTROL_PLANE, logs.WORKER)}
            w["breakdown"] = logs.breakdown(reqs)
            w["azurite_ms"] = sum(r.server_ms for r in reqs)
            api = logs.api_calls(lines)
            w["api_calls"] = {}
            for _, action, status, _ in api:
                key = f"{action} {status}"
                w["api_calls"][key] = w["api_calls"].get(key, 0) + 1
            w["functions"] = {}
            for _, name, trigger, outcome in logs.function_executions(lines):
                key = f"{name} ({trigger}{'' if outcome == 'completed' else ', ' + outcome})"
                w["functions"][key] = w["functions"].get(key, 0) + 1
            w["applications"] = {}
            for _, _, last, reported in logs.task_applications(lines):
                key = f"reported {reported} -> {last}"
                w["applications"][key] = w["applications"].get(key, 0) + 1
            w["executions"] = len(api) + sum(w["functions"].values())

        # Idle.
        idle = self.results["idle"]
        reqs = logs.in_window(requests, idle["t_start"], idle["t_end"])
        minutes = (idle["t_end"] - idle["t_start"]) / 60
        idle["storage"] = len(reqs)
        idle["minutes"] = minutes
        idle["breakdown"] = logs.breakdown(reqs)
        idle_lines = [l for l in cp_lines if idle["t_start"] <= l.t <= idle["t_end"]]
        idle["functions"] = {}
        for _, name, trigger, outcome in logs.function_executions(idle_lines):
            key = f"{name} ({trigger}{'' if outcome == 'completed' else ', ' + outcome})"
            idle["functions"][key] = idle["functions"].get(key, 0) + 1
        self.results["hosted_functions"] = logs.hosted_functions(cp_lines)
        self.results["azurite_requests_total"] = len(requests)

    def run(self) -> None:
        self.events = DockerEvents(self.cluster, self.run_id)
        try:
            self.wait_instance()
            self.startup_cpu()
            self.latency()
            self.cost()
            self.idle()
            self.analyse()
        finally:
            self.events.close()
            for cid in self.raw_containers:
                docker("rm", "-f", cid, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("setup")
    p.add_argument("url")
    p.add_argument("--cluster", required=True)
    p = sub.add_parser("run")
    p.add_argument("--url", required=True)
    p.add_argument("--cluster", required=True)
    p.add_argument("--run-id", required=True, help="label value of the raw containers")
    p.add_argument("--azurite-log", required=True)
    p.add_argument("--cp-log", required=True)
    p.add_argument("--worker-log", required=True)
    p.add_argument("--cp-pid", type=int, required=True)
    p.add_argument("--worker-pid", type=int, required=True)
    p.add_argument("--azurite-pid", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--json")
    p.add_argument("--samples", type=int, default=50)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--gap", type=float, default=3.7,
                   help="least seconds from the end of one of our samples to the next RunTask")
    p.add_argument("--gap-jitter", type=float, default=2.0,
                   help="plus a uniformly random 0..this many seconds")
    p.add_argument("--poll-interval", type=float, default=0.02)
    p.add_argument("--raw-observer", choices=("on", "off"), default="on",
                   help="the raw docker run -d runs while the same DescribeTasks polling goes on (on), or alone (off)")
    p.add_argument("--order", choices=("alternate", "ours-first"), default="alternate",
                   help="which side of each pair goes first (ours-first: as before 2026-12-03)")
    p.add_argument("--cost-tasks", type=int, default=50)
    p.add_argument("--settle", type=float, default=4.0)
    p.add_argument("--idle", type=float, default=60)
    args = parser.parse_args()
    try:
        if args.command == "setup":
            setup(args.url, args.cluster)
            return 0
        bench = Bench(args)
        bench.run()
        text = report.render(bench.results, args)
        warnings = report.warnings(bench.results, args)
        if warnings:
            text += "\nWarnings from this run:\n\n" + "".join(f"- {w}\n" for w in warnings)
        write_report(args.out, text, args.json, bench.results, indent=1)
        if warnings:
            loud("WARNINGS (also in the report):\n!! " + "\n!! ".join(warnings))
    except BenchmarkFailed as e:
        loud("BENCHMARK FAILED")
        print(str(e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
