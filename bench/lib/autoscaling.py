"""Auto scaling benchmark driver (issue 13), run by bench/autoscaling.sh once the processes are up.

    autoscaling.py run --url URL --cluster C --azurite-log LOG --period 60 ...

One cluster, one worker, 10 services of 3 small `sleep` tasks each (task CPU 128 units).

(b) cost. The services alone are left to settle and their storage transactions counted for a
    window (the baseline: the idle cluster with the workers' metrics, no scalable target); then every
    service gets a scalable target (Min 3, Max 4) and a target tracking policy on
    ECSServiceAverageCPUUtilization (target 50), the alarms are left to settle (they leave
    INSUFFICIENT_DATA within 3 periods, a one-off write), and a second window is counted. No API call
    is made during either window. Counting is servicescale_storage.AzuriteLog's: one request per
    "StorageContextMiddleware: RequestMethod=" line, the control plane's told from the worker's by
    its User-Agent.

(a) latency, right after (b) in the same cluster, so the policy's alarms have been OK for minutes:
    `docker exec -d` starts a busy loop (`while :; do :; done`) in each task of service sv-00; the
    service's average jumps from ~0 to far above 50 % (one loop gets tens of percent of a core, which
    is hundreds of percent of a 128-unit task), and the driver polls once a second
    (GetMetricStatistics, DescribeAlarms, DescribeScalingActivities, DescribeServices, ListTasks /
    DescribeTasks) until a new task of the service is RUNNING.
"""

import argparse
import datetime
import os
import subprocess
import sys
import time

import boto3
from botocore.config import Config

import servicescale_storage as st
from benchcommon import BenchmarkFailed, write_report

IMAGE = "local/busybox:latest"
FAMILY = "bench-as-sleep"
SERVICES = 10
TASKS = 3
# The target: low enough that three busy loops cross it on a shared 2-core machine, where they may get only
# a fifth of a core between them (the tasks' 128 CPU shares weigh little): a first run at 50 saw 35-51 %.
TARGET = 20.0
MAX_CAPACITY = TASKS + 1          # a scale-out adds one task: the launch measured is one task's
BAR_PER_SERVICE_HOUR = 200
RESOURCE = "service/{cluster}/{service}"
TASK_ARN_LABEL = "com.amazonaws.ecs.task-arn"
# What metrics and evaluation touch (src/Core/Metrics, src/Core/AutoScaling, src/Core/Alarms).
METRICS_RESOURCES = {"table Metrics", "queue metrics"}
SCALING_RESOURCES = {"table ScalingTargets", "table ScalingActivities", "table MetricAlarms", "table AlarmHistory",
                     "table ScheduledActions"}


def clients(url: str):
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, read_timeout=60, connect_timeout=10)
    kw = dict(endpoint_url=url, region_name="us-east-1", config=config,
              aws_access_key_id="AKIALOCALDEVELOPMENT",
              aws_secret_access_key="local-development-secret-key-not-for-production")
    return boto3.client("ecs", **kw), boto3.client("application-autoscaling", **kw), boto3.client("cloudwatch", **kw)


def names() -> list:
    return [f"sv-{i:02d}" for i in range(SERVICES)]


# ---------------------------------------------------------------- setup

def setup(ecs, cluster: str) -> None:
    ecs.create_cluster(clusterName=cluster)
    deadline = time.monotonic() + 90
    while True:
        arns = ecs.list_container_instances(cluster=cluster).get("containerInstanceArns", [])
        if arns:
            d = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)
            if any(i["agentConnected"] and i["status"] == "ACTIVE" for i in d["containerInstances"]):
                break
        if time.monotonic() > deadline:
            raise BenchmarkFailed("the worker did not register within 90 s")
        time.sleep(0.5)
    ecs.register_task_definition(
        family=FAMILY, cpu="128", memory="32",
        containerDefinitions=[{"name": "app", "image": IMAGE, "command": ["sleep", "86400"], "essential": True,
                               "linuxParameters": {"initProcessEnabled": True}}])
    for name in names():
        ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=FAMILY, desiredCount=TASKS,
                           schedulingStrategy="REPLICA")


def wait_steady(ecs, cluster: str, timeout: float) -> float:
    start = time.monotonic()
    while True:
        d = ecs.describe_services(cluster=cluster, services=names())["services"]
        steady = [s for s in d if s["runningCount"] == TASKS and s["pendingCount"] == 0 and len(s["deployments"]) == 1
                  and s["deployments"][0].get("rolloutState") == "COMPLETED"]
        if len(steady) == SERVICES:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise BenchmarkFailed(f"only {len(steady)} of {SERVICES} services steady after {timeout:.0f} s")
        time.sleep(2)


def add_policies(aas, cluster: str) -> dict:
    """A scalable target and a target tracking policy per service; returns {service: AlarmHigh name}."""
    high = {}
    for name in names():
        resource = RESOURCE.format(cluster=cluster, service=name)
        aas.register_scalable_target(ServiceNamespace="ecs", ScalableDimension="ecs:service:DesiredCount",
                                     ResourceId=resource, MinCapacity=TASKS, MaxCapacity=MAX_CAPACITY)
        policy = aas.put_scaling_policy(
            ServiceNamespace="ecs", ScalableDimension="ecs:service:DesiredCount", ResourceId=resource,
            PolicyName="cpu50", PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": TARGET,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}})
        high[name] = next(a["AlarmName"] for a in policy["Alarms"] if "-AlarmHigh-" in a["AlarmName"])
    return high


# ---------------------------------------------------------------- (b) counting

def count(log: st.AzuriteLog, window: float) -> dict:
    start = time.time()
    while (left := start + window - time.time()) > 0:
        time.sleep(min(15.0, left))
        log.poll()      # read the log as it grows
    end = time.time()
    requests = log.window(start, end)
    scale = 3600.0 / (end - start)
    per_resource, per_process = {}, {}
    # The evaluation's read of its targets' service rows: one query naming up to 14 partitions and the empty
    # row key (ServiceStore.FindManyAsync); reconciles read a service with a point read.
    evaluator_services = sum(1 for r in requests if r.kind == "table Services" and r.operation == "Table_QueryEntities"
                             and "RowKey eq ''" in r.query and "PartitionKey eq" in r.query)
    for r in requests:
        per_resource[(r.process, r.kind)] = per_resource.get((r.process, r.kind), 0) + 1
        per_process[r.process] = per_process.get(r.process, 0) + 1
    return {
        "start": start, "seconds": end - start, "total": len(requests), "per_hour": len(requests) * scale,
        "evaluator_services": evaluator_services, "evaluator_services_per_hour": evaluator_services * scale,
        "per_process": {p: {"count": c, "per_hour": c * scale} for p, c in per_process.items()},
        "per_resource": [{"process": p, "resource": k, "count": c, "per_hour": c * scale}
                         for (p, k), c in sorted(per_resource.items(), key=lambda x: -x[1])],
        "operations": [{"process": p, "resource": k, "operation": o, "method": m, "count": c, "per_hour": c * scale}
                       for p, k, o, m, c in st.breakdown(requests)],
    }


def resource_hour(window: dict, resources) -> float:
    return sum(r["per_hour"] for r in window["per_resource"] if r["resource"] in resources)


def attribute(baseline: dict, policies: dict) -> dict:
    """Metrics and evaluation per hour, from the policy window: the metrics pipeline (table Metrics, queue
    metrics), the scaling tables, and the evaluation's queries of its targets' service rows."""
    metrics = resource_hour(policies, METRICS_RESOURCES)
    scaling = resource_hour(policies, SCALING_RESOURCES)
    services = policies["evaluator_services_per_hour"]
    total = metrics + scaling + services
    return {
        "metrics_per_hour": metrics, "scaling_tables_per_hour": scaling, "evaluator_services_per_hour": services,
        "metrics_and_evaluation_per_hour": total, "per_service_hour": total / SERVICES,
        "baseline_metrics_per_hour": resource_hour(baseline, METRICS_RESOURCES),
        "difference_per_hour": policies["per_hour"] - baseline["per_hour"],
        "difference_plus_baseline_metrics_per_service_hour":
            (policies["per_hour"] - baseline["per_hour"] + resource_hour(baseline, METRICS_RESOURCES)) / SERVICES,
    }


# ---------------------------------------------------------------- (a) latency

def iso(t) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3] if t else "-"


def ts(value) -> float:
    return value.timestamp() if isinstance(value, datetime.datetime) else float(value)


def latency(ecs, aas, cw, cluster: str, service: str, high_alarm: str, period: int) -> dict:
    resource = RESOURCE.format(cluster=cluster, service=service)
    # The policy's alarm must be OK first (low load for three periods), as for a service that ran quietly.
    deadline = time.monotonic() + 8 * period + 120
    while True:
        alarm = cw.describe_alarms(AlarmNames=[high_alarm])["MetricAlarms"]
        if alarm and alarm[0]["StateValue"] == "OK":
            break
        if time.monotonic() > deadline:
            raise BenchmarkFailed(f"{high_alarm} not OK before the load: {alarm}")
        time.sleep(2)
    before = set(ecs.list_tasks(cluster=cluster, serviceName=service)["taskArns"])
    desired0 = ecs.describe_services(cluster=cluster, services=[service])["services"][0]["desiredCount"]
    known_activities = {a["ActivityId"] for a in aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=resource)["ScalingActivities"]}
    containers = []
    for task in sorted(before):
        found = subprocess.run(["docker", "ps", "-q", "--filter", f"label={TASK_ARN_LABEL}={task}"],
                               capture_output=True, text=True, check=True).stdout.split()
        if not found:
            raise BenchmarkFailed(f"no container for {task}")
        containers += found
    # Every task of the service gets a busy loop: on a shared 2-core machine one loop alone may get too little
    # CPU (the tasks' 128 CPU shares weigh little) to lift the service's average over the target.
    exec_start = time.time()
    for container in containers:
        subprocess.run(["docker", "exec", "-d", container, "sh", "-c", "while :; do :; done"], check=True, capture_output=True)
    t0 = time.time()
    print(f"  (a) load on in the {len(containers)} tasks of {service} at {iso(t0)} (docker exec took {t0 - exec_start:.2f} s); "
          "polling once a second", flush=True)

    dims = [{"Name": "ClusterName", "Value": cluster}, {"Name": "ServiceName", "Value": service}]
    seen = {}                 # datapoint start -> (Average, first seen)
    first_period = int(t0 // period * period)
    alarm_at = alarm_seen = activity = desired_seen = running = None
    new_task = None
    polls = 0
    deadline = time.monotonic() + 10 * period + 300
    while running is None:
        if time.monotonic() > deadline:
            raise BenchmarkFailed(f"no new task RUNNING within {10 * period + 300} s; seen: datapoints {seen}, alarm {alarm_at}, "
                                  f"activity {activity}, desired {desired_seen}")
        polls += 1
        now = time.time()
        if alarm_at is None:
            stats = cw.get_metric_statistics(
                Namespace="AWS/ECS", MetricName="CPUUtilization", Dimensions=dims,
                StartTime=datetime.datetime.fromtimestamp(first_period - 3 * period, datetime.timezone.utc),
                EndTime=datetime.datetime.fromtimestamp(now + period, datetime.timezone.utc),
                Period=period, Statistics=["Average"])["Datapoints"]
            for d in stats:
                start = int(ts(d["Timestamp"]))
                if start not in seen:
                    seen[start] = (d["Average"], now)
            a = cw.describe_alarms(AlarmNames=[high_alarm])["MetricAlarms"][0]
            if a["StateValue"] == "ALARM":
                alarm_at, alarm_seen = ts(a["StateUpdatedTimestamp"]), now
                print(f"  (a) {high_alarm} ALARM at {iso(alarm_at)}: {a.get('StateReason', '')}", flush=True)
        if alarm_at is not None and activity is None:
            for act in aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=resource)["ScalingActivities"]:
                if act["ActivityId"] not in known_activities and "-AlarmHigh-" in act["Cause"]:
                    activity = {"start": ts(act["StartTime"]), "end": ts(act["EndTime"]) if act.get("EndTime") else None,
                                "description": act["Description"], "status": act["StatusCode"], "seen": now}
        if desired_seen is None:
            svc = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
            if svc["desiredCount"] > desired0:
                desired_seen = (now, svc["desiredCount"])
                print(f"  (a) desired count {desired0} -> {svc['desiredCount']} seen at {iso(now)}", flush=True)
        if desired_seen is not None:
            arns = [t for t in ecs.list_tasks(cluster=cluster, serviceName=service)["taskArns"] if t not in before]
            if arns:
                for t in ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]:
                    if t["lastStatus"] == "RUNNING":
                        running, new_task = now, t
                        break
        time.sleep(max(0.0, 1.0 - (time.time() - now)))

    above = sorted((s, v, at) for s, (v, at) in seen.items() if s >= first_period and v > TARGET)
    first = above[0] if above else None
    third = above[2] if len(above) >= 3 else None
    # Values the alarm saw: the datapoints stored before it went to ALARM.
    timeline = {
        "load_on": t0,
        "first_datapoint_above": first[2] if first else None,
        "first_datapoint_period": first[0] if first else None,
        "third_datapoint_above": third[2] if third else None,
        "alarm": alarm_at, "alarm_seen": alarm_seen,
        "activity_start": activity["start"] if activity else None,
        "activity_end": activity["end"] if activity else None,
        "desired_raised_seen": desired_seen[0],
        "running_seen": running,
        "task_created": ts(new_task["createdAt"]) if new_task.get("createdAt") else None,
        "task_started": ts(new_task["startedAt"]) if new_task.get("startedAt") else None,
    }
    desired_at = timeline["activity_end"] or desired_seen[0]

    def span(a, b):
        return round(b - a, 2) if a is not None and b is not None else None

    segments = {
        "datapoints": span(t0, timeline["first_datapoint_above"]),
        "evaluation": span(timeline["first_datapoint_above"], alarm_at),
        "evaluation: to the 3rd datapoint above": span(timeline["first_datapoint_above"], timeline["third_datapoint_above"]),
        "evaluation: 3rd datapoint to ALARM / decision": span(timeline["third_datapoint_above"], alarm_at),
        "scaling activity": span(alarm_at, desired_at),
        "launch": span(desired_at, running),
        "total": span(t0, running),
    }
    return {"service": service, "period": period, "polls": polls, "timeline": timeline, "segments": segments,
            "datapoints": [{"start": s, "average": v, "seen": at} for s, (v, at) in sorted(seen.items())],
            "activity": activity, "desired": desired_seen[1], "new_task": new_task["taskArn"]}


# ---------------------------------------------------------------- report

def table(window: dict) -> list:
    out = ["| process | table / queue | in window | per hour |", "| --- | --- | ---: | ---: |"]
    for r in window["per_resource"]:
        out.append(f"| {r['process']} | {r['resource']} | {r['count']} | {r['per_hour']:,.0f} |")
    return out


def render(R: dict) -> str:
    A, B0, B1, C = R["latency"], R["baseline"], R["policies"], R["cost"]
    p = R["period"]
    verdict = "meets" if C and C["per_service_hour"] <= BAR_PER_SERVICE_HOUR else "MISSES"
    head = [f"## Auto scaling: load to a new task, and the cost of metrics and evaluation ({p} s period)", "",
            f"{R['when']} on {R['host']} (2 cores shared with other agents' builds and tests: a noisy machine)."
            + (" **--quick: periods shortened to 30 s; not the benchmark's figures.**" if R["quick"] else ""), ""]
    if "error" in A:
        out = head + [f"### (a) FAILED: {A['error']}", ""]
    else:
        out = latency_section(R)
    if C is None:
        return "\n".join(out)
    return render_cost(R, out, B0, B1, C, verdict)


def latency_section(R: dict) -> list:
    A = R["latency"]
    p = R["period"]
    out = [f"## Auto scaling: load to a new task, and the cost of metrics and evaluation ({p} s period)", "",
           f"{R['when']} on {R['host']} (2 cores shared with other agents' builds and tests: a noisy machine)."
           + (" **--quick: periods shortened to 30 s; not the benchmark's figures.**" if R["quick"] else "")
           + (" (a) only: no cost windows." if R["cost"] is None else ""), "",
           f"### (a) load crossing the target to the first new task RUNNING (metric period and evaluation {p} s)", "",
           f"The 3 tasks of `{A['service']}` (task CPU 128 units, target tracking at {TARGET:.0f} % CPU, Min 3 / Max {MAX_CAPACITY}) "
           f"each start a busy loop (`docker exec -d ... sh -c 'while :; do :; done'`); polled once a second ({A['polls']} polls).", "",
           "| segment | from | to | seconds |", "| --- | --- | --- | ---: |"]
    t = A["timeline"]
    desired_at = t["activity_end"] or t["desired_raised_seen"]
    rows = [
        ("datapoints", "load on", "first datapoint above target stored", t["load_on"], t["first_datapoint_above"]),
        ("evaluation", "first datapoint stored", "AlarmHigh ALARM = the scaling decision", t["first_datapoint_above"], t["alarm"]),
        ("  of which: more datapoints", "first datapoint stored", "third datapoint above stored", t["first_datapoint_above"], t["third_datapoint_above"]),
        ("  of which: the evaluation", "third datapoint stored", "ALARM / decision", t["third_datapoint_above"], t["alarm"]),
        ("scaling activity", "decision", "desired count raised (activity's EndTime)", t["alarm"], desired_at),
        ("launch", "desired count raised", "new task RUNNING (seen by DescribeTasks)", desired_at, t["running_seen"]),
        ("**total**", "load on", "new task RUNNING", t["load_on"], t["running_seen"]),
    ]
    for name, a, b, ta, tb in rows:
        secs = f"{tb - ta:.1f}" if ta is not None and tb is not None else "-"
        out.append(f"| {name} | {a} ({iso(ta)}) | {b} ({iso(tb)}) | {secs} |")
    out += ["", "Datapoints of the service's `CPUUtilization` (Average) as GetMetricStatistics returned them, "
            "with the moment each was first seen:", "",
            "| period start | Average % | first seen | seen after period end (s) |", "| --- | ---: | --- | ---: |"]
    for d in A["datapoints"]:
        out.append(f"| {iso(d['start'])} | {d['average']:.1f} | {iso(d['seen'])} | {d['seen'] - d['start'] - p:.1f} |")
    if A["activity"]:
        out += ["", f"Scaling activity: {A['activity']['description']} ({A['activity']['status']})."]
    return out + [""]


def render_cost(R: dict, out: list, B0: dict, B1: dict, C: dict, verdict: str) -> str:
    out += [f"### (b) storage transactions of metrics and evaluation, {SERVICES} services x {TASKS} tasks, one worker", "",
            f"Baseline (the same cluster with no scalable target: workers' metrics stored, nothing evaluated): "
            f"{B0['total']} transactions in {B0['seconds']:.0f} s = {B0['per_hour']:,.0f} per hour. "
            f"With a target tracking policy on every service: {B1['total']} in {B1['seconds']:.0f} s = {B1['per_hour']:,.0f} per hour.", "",
            f"**Metrics and evaluation: {C['metrics_and_evaluation_per_hour']:,.0f} per hour = "
            f"{C['per_service_hour']:,.0f} per service per hour** ({verdict} the bar of {BAR_PER_SERVICE_HOUR}).", "",
            "| part | per hour | per service per hour |", "| --- | ---: | ---: |",
            f"| metrics: table Metrics + queue metrics (both processes) | {C['metrics_per_hour']:,.0f} | {C['metrics_per_hour'] / SERVICES:,.0f} |",
            f"| evaluation: ScalingTargets, MetricAlarms, ScalingActivities, AlarmHistory, ScheduledActions | {C['scaling_tables_per_hour']:,.0f} | {C['scaling_tables_per_hour'] / SERVICES:,.0f} |",
            f"| evaluation: its queries of the targets' service rows (table Services) | {C['evaluator_services_per_hour']:,.0f} | {C['evaluator_services_per_hour'] / SERVICES:,.0f} |",
            f"| **total** | {C['metrics_and_evaluation_per_hour']:,.0f} | {C['per_service_hour']:,.0f} |", "",
            f"Cross-check: the whole difference between the windows ({C['difference_per_hour']:,.0f} per hour) plus the "
            f"baseline's own metrics ({C['baseline_metrics_per_hour']:,.0f} per hour) is "
            f"{C['difference_plus_baseline_metrics_per_service_hour']:,.0f} per service per hour (noisier: the "
            "once-a-minute service resync sometimes reconciles every service, in either window).", "",
            "Not counted: the rest of the idle cluster (heartbeats, the capacity loop, reconciles: the baseline's "
            "other rows), the writes when a policy is put (before the window), and GetMetricStatistics / DescribeAlarms "
            "calls (none during the windows). Counted: alarm-state writes that fall in the window (an idle service's "
            "AlarmLow reaches ALARM once 15 datapoints exist), and the shared parts divided among the services.", "",
            "#### With policies, by process and table / queue", ""]
    out += table(B1)
    out += ["", "#### Baseline, by process and table / queue", ""]
    out += table(B0)
    out += ["", "<details><summary>with policies, by operation</summary>", "",
            "| process | table / queue | operation | verb | in window | per hour |", "| --- | --- | --- | --- | ---: | ---: |"]
    for r in B1["operations"]:
        out.append(f"| {r['process']} | {r['resource']} | {r['operation']} | {r['method']} | {r['count']} | {r['per_hour']:,.0f} |")
    out += ["", "</details>", ""]
    if R.get("busy_note"):
        out += [f"Note: {R['busy_note']}", ""]
    return "\n".join(out)


def run(a) -> dict:
    ecs, aas, cw = clients(a.url)
    log = st.AzuriteLog(a.azurite_log)
    setup(ecs, a.cluster)
    took = wait_steady(ecs, a.cluster, 300)
    print(f"  {SERVICES} services x {TASKS} tasks steady after {took:.0f} s; baseline: settling {a.baseline_settle:.0f} s, "
          f"counting {a.baseline_window:.0f} s", flush=True)
    baseline = policies = None
    if not a.latency_only:
        time.sleep(a.baseline_settle)
        baseline = count(log, a.baseline_window)
        print(f"  baseline: {baseline['total']} transactions ({baseline['per_hour']:,.0f} per hour)", flush=True)
    high = add_policies(aas, a.cluster)
    print(f"  policies put; settling {a.settle:.0f} s, counting {a.window:.0f} s", flush=True)
    time.sleep(a.settle)
    if not a.latency_only:
        policies = count(log, a.window)
        print(f"  with policies: {policies['total']} transactions ({policies['per_hour']:,.0f} per hour)", flush=True)
    service = names()[0]
    try:
        lat = latency(ecs, aas, cw, a.cluster, service, high[service], a.period)
    except Exception as e:      # (b)'s figures stand on their own: report them with (a)'s failure
        print(f"  (a) FAILED: {e}", flush=True)
        lat = {"error": f"{type(e).__name__}: {e}"}
    return {"period": a.period, "quick": a.quick, "services": SERVICES, "tasks": TASKS,
            "baseline": baseline, "policies": policies, "cost": attribute(baseline, policies) if policies else None,
            "latency": lat, "target": TARGET}


def main() -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--url", required=True)
    r.add_argument("--cluster", required=True)
    r.add_argument("--azurite-log", required=True)
    r.add_argument("--period", type=int, default=60)
    r.add_argument("--baseline-settle", type=float, default=60)
    r.add_argument("--baseline-window", type=float, default=300)
    r.add_argument("--settle", type=float, default=240)
    r.add_argument("--window", type=float, default=600)
    r.add_argument("--quick", action="store_true")
    r.add_argument("--latency-only", action="store_true")
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
    results["busy_note"] = os.environ.get("AUTOSCALING_BUSY_NOTE", "")
    write_report(a.out, render(results), a.json, results, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
