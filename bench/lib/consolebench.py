"""Helpers of bench/console.sh: set up 10 services x 10 tasks, time the baseline reads, write the report.

    python3 consolebench.py setup    ENDPOINT CLUSTER
    python3 consolebench.py baseline ENDPOINT CLUSTER RUNS
    python3 consolebench.py report   BASELINE_JSON CONSOLE_JSON > results.json

Credentials and region come from the environment (AWS_ACCESS_KEY_ID, ...), as for the AWS CLI.
"""
import json
import os
import statistics
import sys
import time

import boto3

SERVICES = 10
TASKS_PER_SERVICE = 10


def setup(endpoint, cluster):
    ecs = boto3.client("ecs", endpoint_url=endpoint)
    deadline = time.time() + 120
    while not ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]:
        if time.time() > deadline:
            sys.exit("the worker did not register")
        time.sleep(1)
    ecs.register_task_definition(family="bench", containerDefinitions=[{
        "name": "app", "image": "local/busybox:latest", "memory": 16, "essential": True,
        "command": ["sleep", "3600"]}])
    for i in range(SERVICES):
        ecs.create_service(cluster=cluster, serviceName=f"svc-{i}", taskDefinition="bench", desiredCount=TASKS_PER_SERVICE)
    deadline = time.time() + 900
    while True:
        names = [f"svc-{i}" for i in range(SERVICES)]
        running = sum(s["runningCount"] for s in ecs.describe_services(cluster=cluster, services=names)["services"])
        if running == SERVICES * TASKS_PER_SERVICE:
            break
        if time.time() > deadline:
            sys.exit(f"only {running} of {SERVICES * TASKS_PER_SERVICE} tasks RUNNING after 15 minutes")
        time.sleep(3)
    print(f"   {running} tasks RUNNING", file=sys.stderr)


def baseline(endpoint, cluster, runs):
    """The service view's steady reads (the same eight calls, in order) from one boto3 process."""
    ecs = boto3.client("ecs", endpoint_url=endpoint)
    cloudwatch = boto3.client("cloudwatch", endpoint_url=endpoint)
    scaling = boto3.client("application-autoscaling", endpoint_url=endpoint)
    resource = f"service/{cluster}/svc-0"
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        ecs.describe_services(cluster=cluster, services=["svc-0"])
        arns = ecs.list_tasks(cluster=cluster, serviceName="svc-0", maxResults=100)["taskArns"]
        ecs.list_tasks(cluster=cluster, serviceName="svc-0", desiredStatus="STOPPED", maxResults=100)
        ecs.list_service_deployments(cluster=cluster, service="svc-0", maxResults=10)
        ecs.describe_tasks(cluster=cluster, tasks=arns)
        end = time.time()
        cloudwatch.get_metric_data(StartTime=end - 3600, EndTime=end, MetricDataQueries=[
            {"Id": query_id, "MetricStat": {"Metric": {"Namespace": "AWS/ECS", "MetricName": metric, "Dimensions": [
                {"Name": "ClusterName", "Value": cluster}, {"Name": "ServiceName", "Value": "svc-0"}]},
                "Period": 60, "Stat": "Average"}}
            for query_id, metric in (("cpu", "CPUUtilization"), ("mem", "MemoryUtilization"))])
        scaling.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=resource)
        scaling.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=resource, MaxResults=20)
        times.append((time.perf_counter() - started) * 1000)
    print(json.dumps({"calls": 8, "medianMs": round(statistics.median(times)), "allMs": [round(t) for t in times]}))


def report(baseline_json, console_json):
    load = open("/proc/loadavg").read().split()[:3]
    print(json.dumps({
        "setup": f"{SERVICES} services x {TASKS_PER_SERVICE} tasks (local/busybox:latest sleeping), one worker, real Docker",
        "baselineBoto3ServiceViewReads": json.loads(baseline_json),
        "console": json.loads(console_json),
        "machine": {"cores": os.cpu_count(), "loadavg": " ".join(load)},
    }, indent=2))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "setup":
        setup(*args)
    elif command == "baseline":
        baseline(args[0], args[1], int(args[2]))
    elif command == "report":
        report(*args)
    else:
        sys.exit(f"unknown command {command}")
