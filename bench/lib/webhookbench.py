"""Deploy webhook benchmark driver (issue 15): a signed delivery to POST /deploy received -> the new
deployment's first task RUNNING, next to the same change made with RegisterTaskDefinition +
UpdateService, in the same run, alternating.

    webhookbench.py setup --url URL --cluster C --run-id R      cluster, two definitions, two services
    webhookbench.py run --url URL --cluster C --run-id R ...    measure, print and write the report

Both arms use one in-process client (persistent HTTP connection; the ECS calls signed with
botocore's SigV4Auth, bench/lib/signing.py; the delivery signed with HMAC-SHA256): neither the
aws CLI's nor curl's start-up is measured. Each arm has its own service (same definition, its own
family), so a sample starts from the same state in both: one RUNNING task, one deployment. Each
sample flips its service between two tags of the same local image, so every deployment is a real
image change and nothing is pulled. webhook.sh starts Azurite, the control plane and a worker.
"""

import argparse
import datetime
import hashlib
import hmac
import http.client
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit

from benchcommon import BenchmarkFailed, setup_or_run
from readbench import CpuMeter
from runtask import Ecs
from runtask_report import command_output, mean, pct

WEBHOOK_SECRET = "local-development-webhook-secret-not-for-production"
BASE_IMAGE = "local/busybox:latest"
CLUSTER_LABEL = "com.amazonaws.ecs.cluster"
ARMS = ("webhook", "api")
BAR = 1.1
POLL = 0.02     # seconds between two polls of the same arm's tasks (ListTasks + DescribeTasks)


def tags(run_id: str) -> tuple:
    return (f"local/busybox:bench-webhook-{run_id}-a", f"local/busybox:bench-webhook-{run_id}-b")


def family(arm: str) -> str:
    return f"bench-webhook-{arm}"


def container(image: str) -> dict:
    return {"name": "app", "image": image, "command": ["sleep", "600"], "memory": 32, "essential": True,
            # busybox sleep as PID 1 ignores SIGTERM: without this each replaced task waits 30 s.
            "stopTimeout": 2}


def setup(args) -> None:
    ecs = Ecs(args.url)
    first, _ = tags(args.run_id)
    ecs.call("CreateCluster", {"clusterName": args.cluster})
    for arm in ARMS:
        ecs.call("RegisterTaskDefinition", {"family": family(arm), "containerDefinitions": [container(first)]})
        ecs.call("CreateService", {
            "cluster": args.cluster, "serviceName": arm, "taskDefinition": family(arm), "desiredCount": 1,
            # ECS's defaults written out: the new task starts beside the old one, which stops once it runs.
            "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200,
                                        "deploymentCircuitBreaker": {"enable": False, "rollback": False}},
        })


class Webhook:
    """POST /deploy on one keep-alive connection, signed as GitHub signs (X-Hub-Signature-256)."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.conn = None

    def deliver(self, payload: dict) -> tuple:
        body = json.dumps(payload, separators=(",", ":")).encode()
        signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature,
                   "X-GitHub-Delivery": str(uuid.uuid4()), "Content-Length": str(len(body))}
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                self.conn.request("POST", "/deploy", body=body, headers=headers)
                response = self.conn.getresponse()
                return response.status, json.loads(response.read() or b"{}")
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise


class Bench:
    def __init__(self, args):
        self.args = args
        self.ecs = Ecs(args.url)
        self.hook = Webhook(args.url)
        self.cluster = args.cluster
        self.images = tags(args.run_id)
        self.current = {arm: self.images[0] for arm in ARMS}
        self.pids = {"control plane": [args.cp_pid], "worker": [args.worker_pid], "azurite": [args.azurite_pid]}

    def running_containers(self) -> int:
        out = subprocess.run(["docker", "ps", "-q", "--filter", f"label={CLUSTER_LABEL}={self.cluster}"],
                             capture_output=True, text=True).stdout.split()
        return len(out)

    def wait_steady(self, timeout: float = 120) -> None:
        """Both services: one deployment, one task RUNNING, and only those two containers running."""
        deadline = time.monotonic() + timeout
        while True:
            d = self.ecs.call("DescribeServices", {"cluster": self.cluster, "services": list(ARMS)})
            steady = all(len(s["deployments"]) == 1 and s["runningCount"] == 1 and s["pendingCount"] == 0
                         for s in d["services"])
            if steady and self.running_containers() == len(ARMS):
                return
            if time.monotonic() > deadline:
                raise BenchmarkFailed(f"the services did not settle within {timeout:.0f} s: "
                                      + json.dumps([(s["serviceName"], s["runningCount"], len(s["deployments"]))
                                                    for s in d["services"]]))
            time.sleep(0.2)

    def wait_running(self, arm: str, definition_arn: str, timeout: float = 120) -> float:
        """Polls ListTasks + DescribeTasks until a task of definition_arn is RUNNING; returns when seen."""
        deadline = time.monotonic() + timeout
        while True:
            arns = self.ecs.call("ListTasks", {"cluster": self.cluster, "serviceName": arm})["taskArns"]
            if arns:
                tasks = self.ecs.call("DescribeTasks", {"cluster": self.cluster, "tasks": arns})["tasks"]
                if any(t["taskDefinitionArn"] == definition_arn and t["lastStatus"] == "RUNNING" for t in tasks):
                    return time.monotonic()
            if time.monotonic() > deadline:
                raise BenchmarkFailed(f"{arm}: no task of {definition_arn} RUNNING within {timeout:.0f} s")
            time.sleep(POLL)

    def sample(self, arm: str) -> dict:
        image = self.images[1] if self.current[arm] == self.images[0] else self.images[0]
        t0 = time.monotonic()
        if arm == "webhook":
            status, answer = self.hook.deliver({"cluster": self.cluster, "service": arm, "image": image})
            if status != 202:
                raise BenchmarkFailed(f"POST /deploy -> {status}: {answer}")
            definition_arn = answer["taskDefinitionArn"]
        else:
            # What a CI script does with the AWS API: the definition it keeps, with the new image.
            registered = self.ecs.call("RegisterTaskDefinition",
                                       {"family": family(arm), "containerDefinitions": [container(image)]})
            definition_arn = registered["taskDefinition"]["taskDefinitionArn"]
            self.ecs.call("UpdateService", {"cluster": self.cluster, "service": arm, "taskDefinition": definition_arn})
        answered = time.monotonic()
        running = self.wait_running(arm, definition_arn)
        self.current[arm] = image
        return {"arm": arm, "answered_ms": 1000 * (answered - t0), "running_ms": 1000 * (running - t0)}

    def run(self) -> dict:
        args = self.args
        meter = CpuMeter(self.pids)
        results = {"samples": [], "warmup": args.warmup, "config": {"samples": args.samples, "poll_ms": POLL * 1000}}
        self.wait_steady()
        meter.start()
        total = args.warmup + args.samples
        for i in range(total):
            # ABBA order: neither arm always goes first after a settle.
            order = ARMS if i % 2 == 0 else tuple(reversed(ARMS))
            for arm in order:
                self.wait_steady()
                s = self.sample(arm)
                s["index"] = i
                s["warmup"] = i < args.warmup
                results["samples"].append(s)
                print(f"  {'warm-up' if s['warmup'] else 'sample'} {i + 1 - (0 if s['warmup'] else args.warmup)}"
                      f" {arm:7s}: answered {s['answered_ms']:6.0f} ms, first task RUNNING {s['running_ms']:6.0f} ms",
                      flush=True)
        results["cpu"] = meter.stop()
        return results


def render(results: dict, args) -> str:
    measured = [s for s in results["samples"] if not s["warmup"]]
    by = {arm: [s for s in measured if s["arm"] == arm] for arm in ARMS}
    p50 = {arm: pct([s["running_ms"] for s in by[arm]], 50) for arm in ARMS}
    ratio50 = p50["webhook"] / p50["api"]
    ratio95 = pct([s["running_ms"] for s in by["webhook"]], 95) / pct([s["running_ms"] for s in by["api"]], 95)
    lines = [
        "# Deploy webhook: delivery -> first task RUNNING vs RegisterTaskDefinition + UpdateService",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, `bash bench/webhook.sh"
        f"{' --quick' if args.samples <= 5 else ''}`; {os.cpu_count()} cores, {platform.machine()}, "
        f"{command_output(['docker', 'version', '--format', 'Docker {{.Server.Version}}'])}. "
        f"{len(by['webhook'])} samples per arm after {args.warmup} warm-up pair(s), alternating (ABBA).",
        "",
        "Both arms from one Python client: the ECS calls signed in-process with botocore's SigV4Auth "
        "(`bench/lib/signing.py`), the delivery signed with HMAC-SHA256 of its body, both on a persistent "
        f"connection; the new task is seen with ListTasks + DescribeTasks every {POLL * 1000:.0f} ms (same client).",
        "",
        "| ms | p50 | p95 | mean | min | max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for arm, label in (("webhook", "webhook: POST /deploy answered (202)"),
                       ("api", "API: RegisterTaskDefinition + UpdateService answered")):
        v = [s["answered_ms"] for s in by[arm]]
        lines.append(f"| {label} | {pct(v, 50):,.0f} | {pct(v, 95):,.0f} | {mean(v):,.0f} | {min(v):,.0f} | {max(v):,.0f} |")
    for arm, label in (("webhook", "**webhook: delivery sent -> first task RUNNING**"),
                       ("api", "**API: first call sent -> first task RUNNING**")):
        v = [s["running_ms"] for s in by[arm]]
        lines.append(f"| {label} | {pct(v, 50):,.0f} | {pct(v, 95):,.0f} | {mean(v):,.0f} | {min(v):,.0f} | {max(v):,.0f} |")
    names = {"wrk": "docker CLI (steady-state checks)", "generator": "driver", "machine_busy": "machine busy",
             "other": "other processes"}
    cpu = {names.get(k, k): v for k, v in results["cpu"].items()}
    lines += [
        "",
        f"Ratio webhook / API: p50 **{ratio50:.2f}x** (bar <= {BAR}x: {'met' if ratio50 <= BAR else '**not met**'}), "
        f"p95 {ratio95:.2f}x.",
        "",
        "CPU during the run (% of one core): " + ", ".join(f"{k} {v:.0f}%" for k, v in cpu.items())
        + ". The machine is shared with other work: figures move between runs.",
        "",
    ]
    results["ratio_p50"], results["ratio_p95"] = ratio50, ratio95
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("setup", "run"):
        p = sub.add_parser(name)
        p.add_argument("--url", required=True)
        p.add_argument("--cluster", required=True)
        p.add_argument("--run-id", required=True)
        if name == "run":
            p.add_argument("--samples", type=int, default=20)
            p.add_argument("--warmup", type=int, default=1)
            p.add_argument("--cp-pid", type=int, required=True)
            p.add_argument("--worker-pid", type=int, required=True)
            p.add_argument("--azurite-pid", type=int, required=True)
            p.add_argument("--out", required=True)
            p.add_argument("--json")
    return setup_or_run(parser.parse_args(), setup, Bench, render)


if __name__ == "__main__":
    sys.exit(main())
