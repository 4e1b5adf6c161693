"""Deployments under steady load, and the load balancer data plane's overhead (bench/deployments.sh).

1. Data plane overhead: wrk against one busybox httpd container straight (its published port) and
   through a listener whose target group has that container as an ip target, alternating, N runs each.
2. A service of 2 busybox httpd tasks behind a listener, updated to a new revision with a rolling update
   (100/200) while a paced loop sends 200 req/s through the listener: failed requests and the time from
   UpdateService until every request is answered by the new revision and the deployment is COMPLETED.
3. The same with deploymentConfiguration.strategy BLUE_GREEN (bake time 0, no hooks), until the service
   deployment is SUCCESSFUL.
"""

import argparse
import json
import re
import socket
import statistics
import subprocess
import threading
import time
import urllib.request
import uuid

import boto3

IMAGE = "local/busybox:latest"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def web(version: str) -> list:
    return [{
        "name": "web", "image": IMAGE, "memory": 32, "essential": True,
        "entryPoint": ["sh", "-c"],
        "command": [f"echo {version} > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"],
        "portMappings": [{"containerPort": 8080, "hostPort": 0}],
        "healthCheck": {"command": ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1"],
                        "interval": 5, "timeout": 2, "retries": 1, "startPeriod": 0},
    }]


def wrk(url: str, seconds: int) -> dict:
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def ms(label):
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"), "non2xx": int(errors.group(1)) if errors else 0}


class Load:
    """A paced loop of GETs at `rate` per second over a few threads; counts answers by body and failures."""

    def __init__(self, url: str, rate: int = 200, threads: int = 8):
        self.url, self.rate, self.threads = url, rate, threads
        self.bodies, self.failures, self.lock = {}, [], threading.Lock()
        self.stop = threading.Event()
        self.last = []

    def _run(self, index):
        interval = self.threads / self.rate
        due = time.monotonic() + index * (interval / self.threads)
        while not self.stop.is_set():
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            due += interval
            try:
                with urllib.request.urlopen(self.url, timeout=10) as response:
                    body = response.read().decode().strip()
                with self.lock:
                    self.bodies[body] = self.bodies.get(body, 0) + 1
                    self.last = (self.last + [body])[-50:]
            except Exception as e:  # any failure counts: status >= 400, reset, timeout
                with self.lock:
                    self.failures.append(str(e))

    def __enter__(self):
        self.workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)]
        for w in self.workers:
            w.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for w in self.workers:
            w.join()

    def all_recent(self, body):
        with self.lock:
            return len(self.last) == 50 and all(b == body for b in self.last)

    def total(self):
        with self.lock:
            return sum(self.bodies.values()) + len(self.failures)


def wait(condition, seconds=300, what="condition"):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.5)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    ecs = boto3.client("ecs", endpoint_url=args.endpoint)
    elb = boto3.client("elbv2", endpoint_url=args.endpoint)
    tag = uuid.uuid4().hex[:8]
    # run.sh's worker serves the default cluster.
    cluster = "default"
    ecs.create_cluster(clusterName=cluster)
    wait(lambda: ecs.list_container_instances(cluster=cluster)["containerInstanceArns"], 120, "worker registered")
    lb = elb.create_load_balancer(Name=f"bench-{tag}")["LoadBalancers"][0]["LoadBalancerArn"]

    def group(name, target_type="instance"):
        arn = elb.create_target_group(Name=f"{name}-{tag}", Protocol="HTTP", Port=8080, TargetType=target_type,
                                      HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                      HealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
        elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "3"}])
        return arn

    def listener(actions):
        port = free_port()
        arn = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=port, DefaultActions=actions)["Listeners"][0]["ListenerArn"]
        rule = elb.describe_rules(ListenerArn=arn)["Rules"][0]["RuleArn"]
        return port, rule

    def healthy(arn, count):
        states = [h["TargetHealth"]["State"] for h in elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]]
        return states.count("healthy") >= count

    results = {"overhead": [], "rolling": [], "blue_green": []}

    # 1. data plane overhead
    direct_port = free_port()
    container = f"bench-deploy-direct-{tag}"
    subprocess.run(["docker", "run", "-d", "--name", container, "--label", "bench=deployments", "-p", f"127.0.0.1:{direct_port}:8080",
                    IMAGE, "sh", "-c", "echo ok > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"], check=True, capture_output=True)
    try:
        tg = group("direct", "ip")
        elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": direct_port}])
        lb_port, _ = listener([{"Type": "forward", "TargetGroupArn": tg}])
        wait(lambda: healthy(tg, 1), 60, "direct target healthy")
        wait(lambda: urllib.request.urlopen(f"http://127.0.0.1:{lb_port}/", timeout=5).status == 200, 30, "listener serving")
        for _ in range(args.runs):
            direct = wrk(f"http://127.0.0.1:{direct_port}/", args.wrk_seconds)
            through = wrk(f"http://127.0.0.1:{lb_port}/", args.wrk_seconds)
            results["overhead"].append({"direct": direct, "balancer": through})
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)

    # 2 and 3: deployments under 200 req/s
    v = [ecs.register_task_definition(family=f"bench-web-{tag}", containerDefinitions=web(f"v{i}"))["taskDefinition"]["taskDefinitionArn"]
         for i in range(1, 3)]

    def deploy(kind, run):
        name = f"{kind}-{run}-{tag}"
        blue = group(f"b{run}{kind[:2]}")
        if kind == "rolling":
            port, _ = listener([{"Type": "forward", "TargetGroupArn": blue}])
            extra = {"loadBalancers": [{"targetGroupArn": blue, "containerName": "web", "containerPort": 8080}]}
        else:
            green = group(f"g{run}{kind[:2]}")
            port, rule = listener([{"Type": "forward", "ForwardConfig": {"TargetGroups": [
                {"TargetGroupArn": blue, "Weight": 1}, {"TargetGroupArn": green, "Weight": 0}]}}])
            extra = {
                "loadBalancers": [{"targetGroupArn": blue, "containerName": "web", "containerPort": 8080,
                                   "advancedConfiguration": {"alternateTargetGroupArn": green, "productionListenerRule": rule,
                                                             "roleArn": "arn:aws:iam::000000000000:role/ecs-elb"}}],
                "deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0},
            }
        ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=v[0], desiredCount=2, **extra)
        ecs.get_waiter("services_stable").wait(cluster=cluster, services=[name], WaiterConfig={"Delay": 2, "MaxAttempts": 120})
        url = f"http://127.0.0.1:{port}/"
        with Load(url) as load:
            wait(lambda: load.all_recent("v1"), 60, "v1 serving")
            before = load.total()
            start = time.monotonic()
            ecs.update_service(cluster=cluster, service=name, taskDefinition=v[1])
            if kind == "rolling":
                done = lambda: ecs.describe_services(cluster=cluster, services=[name])["services"][0]["deployments"][0]["rolloutState"] == "COMPLETED"
            else:
                def done():
                    deployments = ecs.list_service_deployments(cluster=cluster, service=name)["serviceDeployments"]
                    return deployments[0]["status"] == "SUCCESSFUL"
            wait(lambda: done() and load.all_recent("v2"), 600, f"{kind} deployment")
            duration = time.monotonic() - start
            sent = load.total() - before
        ecs.update_service(cluster=cluster, service=name, desiredCount=0)
        ecs.delete_service(cluster=cluster, service=name, force=True)
        return {"duration": duration, "requests": sent, "failed": len(load.failures), "sample": load.failures[:3]}

    for run in range(args.runs):
        results["rolling"].append(deploy("rolling", run))
        results["blue_green"].append(deploy("bluegreen", run))

    elb.delete_load_balancer(LoadBalancerArn=lb)
    write(results, args.out)


def write(results, out):
    o = results["overhead"]
    med = lambda xs: statistics.median(xs)
    d_rps, b_rps = med([r["direct"]["rps"] for r in o]), med([r["balancer"]["rps"] for r in o])
    d50, b50 = med([r["direct"]["p50"] for r in o]), med([r["balancer"]["p50"] for r in o])
    d99, b99 = med([r["direct"]["p99"] for r in o]), med([r["balancer"]["p99"] for r in o])
    lines = [
        "| path (wrk -t2 -c16, median of runs) | req/s | p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: |",
        f"| straight to the container | {d_rps:,.0f} | {d50:.2f} | {d99:.2f} |",
        f"| through the listener | {b_rps:,.0f} | {b50:.2f} | {b99:.2f} |",
        f"| ratio / added | {b_rps / d_rps:.2f}x | +{b50 - d50:.2f} | +{b99 - d99:.2f} |",
        "",
        "| deployment (2 tasks, 200 req/s through the listener) | runs | requests sent | failed | duration s (median, min-max) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for kind, label in (("rolling", "rolling 100/200"), ("blue_green", "BLUE_GREEN, bake 0")):
        rs = results[kind]
        ds = [r["duration"] for r in rs]
        lines.append(f"| {label} | {len(rs)} | {sum(r['requests'] for r in rs):,} | {sum(r['failed'] for r in rs)} | "
                     f"{med(ds):.1f} ({min(ds):.1f}-{max(ds):.1f}) |")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(out, "w") as f:
        f.write(text)
    with open(out.replace(".md", ".json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
