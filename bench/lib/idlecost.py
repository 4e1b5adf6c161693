"""Idle cost benchmark driver: a cluster with one worker and N services of one small task each,
left alone at steady state; every storage transaction in a window, by process and by table/queue,
extrapolated to an hour and set against the bar (issue 17: at most 2,000 per hour in total).

    idlecost.py run --url URL --cluster C --azurite-log LOG ...   (idle-cost.sh starts the processes)

Counting: Azurite's --debug log has exactly one "StorageContextMiddleware: RequestMethod=" line per
incoming request (servicescale_storage.AzuriteLog); the control plane's SDK sends a User-Agent, the
worker runs without one, so each request is told to its process.
"""

import argparse
import datetime
import os
import sys
import time

import servicescale_storage as st
from benchcommon import BenchmarkFailed, wait_worker_registered, write_report
from servicescale import Ecs

IMAGE = "local/busybox:latest"
FAMILY = "bench-idle-sleep"
BAR_PER_HOUR = 2000


def setup(ecs: Ecs, cluster: str, services: int) -> None:
    ecs.call("CreateCluster", {"clusterName": cluster})
    wait_worker_registered(ecs, cluster, 90)
    ecs.call("RegisterTaskDefinition", {
        "family": FAMILY,
        "containerDefinitions": [{
            "name": "app", "image": IMAGE, "command": ["sleep", "86400"], "memory": 16, "cpu": 0,
            "essential": True, "linuxParameters": {"initProcessEnabled": True},
        }],
    })
    for i in range(services):
        ecs.call("CreateService", {"cluster": cluster, "serviceName": f"idle-{i:02d}", "taskDefinition": FAMILY,
                                   "desiredCount": 1, "schedulingStrategy": "REPLICA"})


def wait_steady(ecs: Ecs, cluster: str, services: int, timeout: float) -> float:
    names = [f"idle-{i:02d}" for i in range(services)]
    start = time.monotonic()
    while True:
        d = ecs.call("DescribeServices", {"cluster": cluster, "services": names})["services"]
        steady = [s for s in d if s["runningCount"] == 1 and s["pendingCount"] == 0 and len(s["deployments"]) == 1
                  and s["deployments"][0].get("rolloutState") == "COMPLETED"]
        if len(steady) == services:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise BenchmarkFailed(f"only {len(steady)} of {services} services steady after {timeout:.0f} s")
        time.sleep(2)


def run(a) -> dict:
    ecs = Ecs(a.url)
    log = st.AzuriteLog(a.azurite_log)
    setup(ecs, a.cluster, a.services)
    took = wait_steady(ecs, a.cluster, a.services, 300)
    print(f"  {a.services} services steady after {took:.0f} s; settling {a.settle:.0f} s, then counting {a.window:.0f} s",
          flush=True)
    ecs.conn and ecs.conn.close()
    time.sleep(a.settle)
    start = time.time()
    # Read the log as it grows, so the parser never holds a whole window's text at once.
    while (left := start + a.window - time.time()) > 0:
        time.sleep(min(15.0, left))
        log.poll()
    end = time.time()
    requests = log.window(start, end)
    scale = 3600.0 / (end - start)
    per_resource = {}
    per_process = {}
    for r in requests:
        per_resource[(r.process, r.kind)] = per_resource.get((r.process, r.kind), 0) + 1
        per_process[r.process] = per_process.get(r.process, 0) + 1
    ops = st.breakdown(requests)
    return {
        "window_seconds": end - start, "settle_seconds": a.settle, "services": a.services,
        "total": len(requests), "per_hour": len(requests) * scale,
        "per_process": {p: {"count": c, "per_hour": c * scale} for p, c in per_process.items()},
        "per_resource": [{"process": p, "resource": k, "count": c, "per_hour": c * scale}
                         for (p, k), c in sorted(per_resource.items(), key=lambda x: -x[1])],
        "operations": [{"process": p, "resource": k, "operation": o, "method": m, "count": c, "per_hour": c * scale}
                       for p, k, o, m, c in ops],
    }


def render(R: dict) -> str:
    verdict = "meets" if R["per_hour"] <= BAR_PER_HOUR else "MISSES"
    out = [f"## Idle cost: one worker, {R['services']} services of one task, no API calls",
           "",
           f"{R['when']} on {R['host']}: counted {R['window_seconds']:.0f} s after {R['settle_seconds']:.0f} s of settling.",
           "",
           f"**Total: {R['total']} storage transactions in {R['window_seconds']:.0f} s = "
           f"{R['per_hour']:,.0f} per hour** ({verdict} the bar of {BAR_PER_HOUR:,} per hour).",
           "",
           "| process | in window | per hour |", "| --- | ---: | ---: |"]
    for p, v in sorted(R["per_process"].items(), key=lambda x: -x[1]["count"]):
        out.append(f"| {p} | {v['count']} | {v['per_hour']:,.0f} |")
    out += ["", "| process | table / queue | in window | per hour |", "| --- | --- | ---: | ---: |"]
    for r in R["per_resource"]:
        out.append(f"| {r['process']} | {r['resource']} | {r['count']} | {r['per_hour']:,.0f} |")
    out += ["", "<details><summary>by operation</summary>", "",
            "| process | table / queue | operation | verb | in window | per hour |",
            "| --- | --- | --- | --- | ---: | ---: |"]
    for r in R["operations"]:
        out.append(f"| {r['process']} | {r['resource']} | {r['operation']} | {r['method']} | {r['count']} | {r['per_hour']:,.0f} |")
    out += ["", "</details>", ""]
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--url", required=True)
    r.add_argument("--cluster", required=True)
    r.add_argument("--azurite-log", required=True)
    r.add_argument("--services", type=int, default=10)
    r.add_argument("--settle", type=float, default=120)
    r.add_argument("--window", type=float, default=600)
    r.add_argument("--out", required=True)
    r.add_argument("--json", required=True)
    a = p.parse_args()
    try:
        results = run(a)
    except BenchmarkFailed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    results["host"] = os.uname().nodename
    results["when"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    write_report(a.out, render(results), a.json, results, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
