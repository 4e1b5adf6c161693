"""Capacity benchmark driver (issue 16).

(a) scale-out: tasks of a capacity provider with managed scaling, in a cluster whose pool is empty,
    from RunTask (the tasks PROVISIONING) to the tasks RUNNING on workers the pool started for
    them, split into the scaling decision (the control plane's managed scaling raises the pool's
    desired size), the worker's start and registration (the pool agent starts the process, the
    worker registers its container instance) and the task start (the capacity loop places the
    waiting task, the worker runs it, the control plane applies RUNNING). Between samples the
    tasks stop and the pool scales back in to 0, so each sample starts from an empty pool.
(b) awsvpc vs bridge: RunTask -> RUNNING of an `awsvpc` task and of the same task in `bridge`
    mode on one static worker, alternating (ABBA) in the same run.

    capacitybench.py setup --url URL --cluster C --static-cluster S --provider P --pool POOL
    capacitybench.py run ...

Every ECS call is signed in-process (botocore SigV4, bench/lib/signing.py) on one persistent
connection; RUNNING is seen with DescribeTasks every 20 ms. The marks inside (a) come from the
processes' own single-line timestamped logs (control plane, pool agent, each pool worker).
capacity.sh starts Azurite, the control plane, the static worker and the pool agent.
"""

import argparse
import datetime
import glob
import os
import platform
import re
import sys
import time
import uuid

from benchcommon import BenchmarkFailed, setup_or_run
from readbench import CpuMeter
from runtask import Ecs
from runtask_logs import LogTail, task_applications
from runtask_report import command_output, mean, pct

IMAGE = "local/busybox:latest"
BAR = 1.3
POLL = 0.02
SUBNET = "subnet-0bench0000000001"


def container(memory: int) -> dict:
    # A shell that exits on SIGTERM: a stop takes no stopTimeout.
    return {"name": "app", "image": IMAGE, "memory": memory, "essential": True,
            "entryPoint": ["sh", "-c"], "command": ["trap 'exit 0' TERM; sleep 600 & wait"]}


def setup(args) -> None:
    ecs = Ecs(args.url)
    ecs.call("CreateCluster", {"clusterName": args.cluster})
    ecs.call("CreateCluster", {"clusterName": args.static_cluster})
    ecs.call("CreateCapacityProvider", {"name": args.provider, "autoScalingGroupProvider": {
        "autoScalingGroupArn": f"arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:1:autoScalingGroupName/{args.pool}",
        "managedScaling": {"status": "ENABLED", "targetCapacity": 100, "minimumScalingStepSize": 1,
                           "maximumScalingStepSize": args.tasks, "instanceWarmupPeriod": 30},
        "managedTerminationProtection": "ENABLED"}})
    ecs.call("PutClusterCapacityProviders", {
        "cluster": args.cluster, "capacityProviders": [args.provider],
        "defaultCapacityProviderStrategy": [{"capacityProvider": args.provider, "weight": 1}]})
    # 200 MiB: one task per 256 MiB pool worker, so N tasks need N new workers.
    ecs.call("RegisterTaskDefinition", {"family": "bench-capacity-grow", "containerDefinitions": [container(200)]})
    ecs.call("RegisterTaskDefinition", {"family": "bench-capacity-bridge", "networkMode": "bridge",
                                        "containerDefinitions": [container(32)]})
    ecs.call("RegisterTaskDefinition", {"family": "bench-capacity-awsvpc", "networkMode": "awsvpc",
                                        "containerDefinitions": [container(32)]})


def first(lines, predicate):
    return next((line.t for line in lines if predicate(line)), None)


class Bench:
    def __init__(self, args):
        self.args = args
        self.ecs = Ecs(args.url)
        self.cp_log = LogTail(args.cp_log)
        self.agent_log = LogTail(args.agent_log)
        self.pids = {"control plane": [args.cp_pid], "static worker": [args.worker_pid],
                     "pool agent and its running workers": [args.agent_pid], "azurite": [args.azurite_pid]}

    # -- helpers

    def describe(self, cluster: str, arns: list) -> list:
        return self.ecs.call("DescribeTasks", {"cluster": cluster, "tasks": arns})["tasks"]

    def wait_status(self, cluster: str, arns: list, status: str, timeout: float) -> dict:
        """arn -> time.time() when the client first saw it in `status` (DescribeTasks every 20 ms)."""
        seen = {}
        deadline = time.monotonic() + timeout
        while True:
            for t in self.describe(cluster, arns):
                if t["lastStatus"] == status and t["taskArn"] not in seen:
                    seen[t["taskArn"]] = time.time()
                if t["lastStatus"] == "STOPPED" and status != "STOPPED":
                    raise BenchmarkFailed(f"{t['taskArn']} stopped: {t.get('stoppedReason')}")
            if len(seen) == len(arns):
                return seen
            if time.monotonic() > deadline:
                raise BenchmarkFailed(f"only {len(seen)} of {len(arns)} tasks {status} within {timeout:.0f} s")
            time.sleep(POLL)

    def active_instances(self, cluster: str) -> int:
        return len(self.ecs.call("ListContainerInstances", {"cluster": cluster, "status": "ACTIVE"})["containerInstanceArns"])

    def wait_pool_empty(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while self.active_instances(self.args.cluster) or self.ecs.call(
                "ListContainerInstances", {"cluster": self.args.cluster, "status": "DRAINING"})["containerInstanceArns"]:
            if time.monotonic() > deadline:
                raise BenchmarkFailed(f"the pool did not scale in to 0 within {timeout:.0f} s")
            time.sleep(0.5)
        # The agent's workers gone too (it reports the ids it runs in its log as it stops them).
        time.sleep(1)

    # -- (a) scale-out

    def scale_out_sample(self) -> dict:
        args = self.args
        self.cp_log.poll()
        self.agent_log.poll()
        cp_from, agent_from = len(self.cp_log.lines), len(self.agent_log.lines)
        sent = time.time()
        answer = self.ecs.call("RunTask", {"cluster": args.cluster, "taskDefinition": "bench-capacity-grow",
                                           "count": args.tasks, "clientToken": str(uuid.uuid4())})
        answered = time.time()
        if answer.get("failures"):
            raise BenchmarkFailed(f"RunTask failures: {answer['failures']}")
        arns = [t["taskArn"] for t in answer["tasks"]]
        provisioning = [t["lastStatus"] for t in answer["tasks"]]
        seen = self.wait_status(args.cluster, arns, "RUNNING", timeout=240)
        time.sleep(0.3)   # the last log lines flushed
        self.cp_log.poll()
        self.agent_log.poll()
        cp = self.cp_log.lines[cp_from:]
        agent = self.agent_log.lines[agent_from:]

        decision = first(cp, lambda l: "Managed scaling of" in l.message and args.cluster in l.message and " -> " in l.message)
        started = {}
        for line in agent:
            m = re.search(r"started worker (\w+)", line.message)
            if m:
                started[m.group(1)] = line.t
        registered, worker_up, picked_up = {}, {}, {}
        for worker_id in started:
            log = LogTail(os.path.join(args.pool_dir, worker_id, "worker.log"))
            log.poll()
            if log.lines:
                worker_up[worker_id] = log.lines[0].t
            t = first(log.lines, lambda l: l.message.startswith("Registered "))
            if t is not None:
                registered[worker_id] = t
            # The worker took the Start command of a task: the capacity loop placed it there.
            for line in log.lines:
                m = re.match(r"Starting (\S+) ", line.message)
                if m and m.group(1) in arns:
                    picked_up.setdefault(m.group(1), line.t)
        applied = {}
        for t, arn, last, _ in task_applications(cp):
            if arn in arns and last == "RUNNING":
                applied.setdefault(arn, t)
        hosts = {t["containerInstanceArn"].rsplit("/", 1)[-1] for t in self.describe(args.cluster, arns)}
        marks = {
            "sent": sent, "answered": answered,
            "decision": decision,
            "agent_started": max(started.values()) if started else None,
            "worker_up": max(worker_up.values()) if len(worker_up) == len(started) and worker_up else None,
            "registered": max(registered.values()) if len(registered) == len(started) and registered else None,
            "picked_up": max(picked_up.values()) if len(picked_up) == len(arns) else None,
            "applied": max(applied.values()) if len(applied) == len(arns) else None,
            "seen": max(seen.values()),
        }
        sample = {"marks": marks, "provisioning": provisioning, "new_workers": sorted(started),
                  "on_new_workers": hosts <= set(started)}
        # Back to an empty pool: the tasks stop, managed scaling drains and removes the idle workers.
        for arn in arns:
            self.ecs.call("StopTask", {"cluster": args.cluster, "task": arn, "reason": "benchmark sample done"})
        self.wait_status(args.cluster, arns, "STOPPED", timeout=60)
        self.wait_pool_empty()
        return sample

    # -- (b) awsvpc vs bridge

    def network_sample(self, mode: str) -> dict:
        args = self.args
        request = {"cluster": args.static_cluster, "taskDefinition": f"bench-capacity-{mode}", "count": 1,
                   "launchType": "EC2", "clientToken": str(uuid.uuid4())}
        if mode == "awsvpc":
            request["networkConfiguration"] = {"awsvpcConfiguration": {"subnets": [SUBNET], "assignPublicIp": "DISABLED"}}
        sent = time.time()
        answer = self.ecs.call("RunTask", request)
        answered = time.time()
        if answer.get("failures"):
            raise BenchmarkFailed(f"RunTask failures: {answer['failures']}")
        arn = answer["tasks"][0]["taskArn"]
        seen = self.wait_status(args.static_cluster, [arn], "RUNNING", timeout=120)[arn]
        task = self.describe(args.static_cluster, [arn])[0]
        if mode == "awsvpc" and not task.get("attachments"):
            raise BenchmarkFailed(f"the awsvpc task has no network attachment: {task}")
        self.ecs.call("StopTask", {"cluster": args.static_cluster, "task": arn, "reason": "benchmark sample done"})
        self.wait_status(args.static_cluster, [arn], "STOPPED", timeout=60)
        return {"mode": mode, "answered_ms": 1000 * (answered - sent), "running_ms": 1000 * (seen - sent)}

    def wait_static_worker(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not self.active_instances(self.args.static_cluster):
            if time.monotonic() > deadline:
                raise BenchmarkFailed("the static worker did not register")
            time.sleep(0.3)

    def run(self) -> dict:
        args = self.args
        results = {"config": {"tasks": args.tasks, "scale_samples": args.scale_samples,
                              "network_samples": args.network_samples, "warmup": args.warmup,
                              "scaling_seconds": args.scaling_seconds, "pool_poll_seconds": args.pool_poll_seconds}}
        self.wait_static_worker()
        meter = CpuMeter(self.pids)
        meter.start()
        print("== (b) awsvpc vs bridge, RunTask -> RUNNING on one worker", flush=True)
        network = []
        for i in range(args.warmup + args.network_samples):
            for mode in (("bridge", "awsvpc") if i % 2 == 0 else ("awsvpc", "bridge")):
                s = self.network_sample(mode)
                s["warmup"] = i < args.warmup
                network.append(s)
                print(f"  {'warm-up' if s['warmup'] else 'sample'} {mode:6s}: answered {s['answered_ms']:5.0f} ms, "
                      f"RUNNING {s['running_ms']:6.0f} ms", flush=True)
        results["network"] = network
        results["network_cpu"] = meter.stop()

        meter.start()
        print(f"== (a) scale-out: {args.tasks} task(s) of the provider, empty pool, until RUNNING on new workers", flush=True)
        scale = []
        for i in range(args.scale_samples):
            s = self.scale_out_sample()
            scale.append(s)
            m = s["marks"]
            print(f"  sample {i + 1}: " + ", ".join(
                f"{k} +{(v - m['sent']) * 1000:,.0f}" for k, v in m.items() if v is not None and k != "sent") + " ms", flush=True)
        results["scale"] = scale
        results["scale_cpu"] = meter.stop()
        return results


SEGMENTS = [
    ("sent", "answered", "RunTask answered: tasks PROVISIONING (no room in the pool)"),
    ("answered", "decision", "**scaling decision**: managed scaling computes CapacityProviderReservation and raises the pool's desired size"),
    ("decision", "agent_started", "the pool agent sees the new desired size and starts the worker process(es)"),
    ("agent_started", "worker_up", "the worker process starts (.NET start-up until its first log line)"),
    ("worker_up", "registered", "the worker registers its container instance"),
    ("registered", "picked_up", "the capacity loop places the waiting task there; the worker takes its Start command"),
    ("picked_up", "applied", "the worker starts the container and reports; the control plane applies RUNNING"),
    ("applied", "seen", "the client sees RUNNING (DescribeTasks every 20 ms)"),
]


def render(results: dict, args) -> str:
    cpu_names = {"wrk": "driver's children", "generator": "driver", "machine_busy": "machine busy", "other": "other processes"}

    def cpu_line(cpu):
        return ", ".join(f"{cpu_names.get(k, k)} {v:.0f}%" for k, v in cpu.items())

    def row(label, v):
        v = [x for x in v if x is not None]
        if not v:
            return f"| {label} | – | – | – | – | – |"
        return f"| {label} | {pct(v, 50):,.0f} | {pct(v, 95):,.0f} | {mean(v):,.0f} | {min(v):,.0f} | {max(v):,.0f} |"

    quick = " --quick" if args.network_samples <= 5 else ""
    lines = [
        "# Capacity: scale-out from an empty pool, and awsvpc vs bridge task start",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, `bash bench/capacity.sh{quick}`; "
        f"{os.cpu_count()} cores, {platform.machine()}, "
        f"{command_output(['docker', 'version', '--format', 'Docker {{.Server.Version}}'])}. "
        "Every ECS call signed in-process (botocore SigV4) on one persistent connection; RUNNING seen with "
        "DescribeTasks every 20 ms. The machine is shared with other work: figures move between runs.",
        "",
        f"## (a) Tasks waiting for capacity -> RUNNING on new workers ({len(results['scale'])} samples)",
        "",
        f"RunTask of {args.tasks} task(s) of 200 MiB in a cluster whose only capacity is a provider with managed "
        f"scaling (targetCapacity 100, step 1..{args.tasks}) over an empty pool of 256 MiB workers (one task each), "
        f"so every task needs a new worker. Control plane with `Capacity__ScalingSeconds={args.scaling_seconds:g}` "
        f"(default 60, ECS's one-minute metric: at the default the decision waits up to 60 s more), pool agent "
        f"`Pool__PollSeconds={args.pool_poll_seconds:g}`. Marks from the processes' logs; each segment ends when the "
        "last task (or worker) passed it. Between samples the tasks stop and the pool scales in to 0.",
        "",
        "| ms | p50 | p95 | mean | min | max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    scale = results["scale"]
    for a, b, label in SEGMENTS:
        lines.append(row(label, [1000 * (s["marks"][b] - s["marks"][a]) if s["marks"][a] and s["marks"][b] else None
                                 for s in scale]))
    lines.append(row("**waiting -> running on new workers (RunTask answered -> seen RUNNING)**",
                     [1000 * (s["marks"]["seen"] - s["marks"]["answered"]) for s in scale]))
    lines.append(row("of which worker start and registration (decision -> registered)",
                     [1000 * (s["marks"]["registered"] - s["marks"]["decision"])
                      if s["marks"]["registered"] and s["marks"]["decision"] else None for s in scale]))
    lines.append(row("of which task start (registered -> seen RUNNING)",
                     [1000 * (s["marks"]["seen"] - s["marks"]["registered"]) if s["marks"]["registered"] else None
                      for s in scale]))
    all_new = all(s["on_new_workers"] for s in scale)
    lines += ["", f"Every task ran on a worker the pool started for it: {'yes' if all_new else '**no**'}; "
              f"RunTask answered PROVISIONING: {'yes' if all(set(s['provisioning']) == {'PROVISIONING'} for s in scale) else 'not always'}.",
              "", f"CPU during (a) (% of one core): {cpu_line(results['scale_cpu'])}.", ""]

    if not scale:  # --network-only: no (a) section
        del lines[next(i for i, line in enumerate(lines) if line.startswith("## (a)")):]
    network = [s for s in results["network"] if not s["warmup"]]
    by = {m: [s["running_ms"] for s in network if s["mode"] == m] for m in ("bridge", "awsvpc")}
    r50 = pct(by["awsvpc"], 50) / pct(by["bridge"], 50)
    r95 = pct(by["awsvpc"], 95) / pct(by["bridge"], 95)
    results["ratio_p50"], results["ratio_p95"] = r50, r95
    lines += [
        f"## (b) RunTask -> RUNNING, awsvpc vs bridge ({len(by['awsvpc'])} samples each, alternating)",
        "",
        "The same one-container busybox task (32 MiB) on one static worker, `launchType EC2`; the awsvpc one with "
        "`awsvpcConfiguration` (its own pause container on its subnet's Docker network: the warm spare the worker made after "
        "the previous awsvpc task reached RUNNING, when one is ready). Each task is stopped before the next.",
        "",
        "| ms | p50 | p95 | mean | min | max |",
        "|---|---:|---:|---:|---:|---:|",
        row("bridge: RunTask answered", [s["answered_ms"] for s in network if s["mode"] == "bridge"]),
        row("awsvpc: RunTask answered", [s["answered_ms"] for s in network if s["mode"] == "awsvpc"]),
        row("**bridge: RunTask -> RUNNING**", by["bridge"]),
        row("**awsvpc: RunTask -> RUNNING**", by["awsvpc"]),
        "",
        f"Ratio awsvpc / bridge: p50 **{r50:.2f}x**, p95 **{r95:.2f}x** (bar <= {BAR}x: "
        f"{'met' if r50 <= BAR and r95 <= BAR else '**not met**'}).",
        "",
        f"CPU during (b) (% of one core): {cpu_line(results['network_cpu'])}.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("setup", "run"):
        p = sub.add_parser(name)
        p.add_argument("--url", required=True)
        p.add_argument("--cluster", required=True)
        p.add_argument("--static-cluster", required=True)
        p.add_argument("--provider", required=True)
        p.add_argument("--pool", required=True)
        p.add_argument("--tasks", type=int, default=2)
        if name == "run":
            p.add_argument("--scale-samples", type=int, default=5)
            p.add_argument("--network-samples", type=int, default=20)
            p.add_argument("--warmup", type=int, default=1)
            p.add_argument("--scaling-seconds", type=float, required=True)
            p.add_argument("--pool-poll-seconds", type=float, required=True)
            p.add_argument("--pool-dir", required=True)
            p.add_argument("--cp-log", required=True)
            p.add_argument("--agent-log", required=True)
            p.add_argument("--cp-pid", type=int, required=True)
            p.add_argument("--worker-pid", type=int, required=True)
            p.add_argument("--agent-pid", type=int, required=True)
            p.add_argument("--azurite-pid", type=int, required=True)
            p.add_argument("--out", required=True)
            p.add_argument("--json")
    return setup_or_run(parser.parse_args(), setup, Bench, render)


if __name__ == "__main__":
    sys.exit(main())
