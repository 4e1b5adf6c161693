"""Load balancer benchmark driver: the data plane (src/LoadBalancer) in front of one busybox
`httpd` task vs the same task's host port, and failed requests under a steady open-loop stream
during a rolling and a blue/green deployment of a 2-task service behind a listener.

    lbbench.py run --url URL --cluster C ...   set up through boto3, measure, print and write the report

load-balancer.sh starts Azurite, the control plane, a worker and the data plane and calls this;
see bench/README.md.
"""

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time

import boto3
from botocore.config import Config

from openloop import percentile
from benchcommon import BenchmarkFailed, loud, write_report
from readbench import CpuMeter, wait_for_quiet
from signing import ACCESS_KEY, REGION, SECRET_KEY

IMAGE = "local/busybox:latest"
CONTAINER_PORT = 8080
# Health check and draining settings of every target group here (ALB's defaults, 30 s x 5 and a
# 300 s delay, would make each deployment take many minutes of waiting, not of work).
HEALTH = {"HealthCheckIntervalSeconds": 5, "HealthCheckTimeoutSeconds": 2,
          "HealthyThresholdCount": 2, "UnhealthyThresholdCount": 2}
DEREGISTRATION_DELAY = 5


def web(version: str) -> list:
    """busybox httpd serving its version. It runs as PID 1 without a SIGTERM handler, so a stop
    would wait the 30 s default for SIGKILL: stopTimeout 2 keeps that wait out of the durations."""
    return [{
        "name": "web", "image": IMAGE, "memory": 32, "essential": True, "stopTimeout": 2,
        "entryPoint": ["sh", "-c"],
        "command": [f"echo {version} > /tmp/index.html && exec httpd -f -p {CONTAINER_PORT} -h /tmp"],
        "portMappings": [{"containerPort": CONTAINER_PORT, "hostPort": 0}],
    }]


class Bench:
    def __init__(self, args):
        self.args = args
        config = Config(retries={"max_attempts": 5, "mode": "standard"}, read_timeout=60)
        session = boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                        region_name=REGION)
        self.ecs = session.client("ecs", endpoint_url=args.url, config=config)
        self.elb = session.client("elbv2", endpoint_url=args.url, config=config)
        self.cluster = args.cluster
        self.prefix = args.cluster[-12:]
        self.pids = {"balancer": [args.lb_pid], "control plane": [args.cp_pid],
                     "worker": [args.worker_pid], "azurite": [args.azurite_pid]}

    # -- setup

    def target_group(self, name: str) -> str:
        arn = self.elb.create_target_group(Name=f"{self.prefix}-{name}", Protocol="HTTP", Port=CONTAINER_PORT,
                                           HealthCheckPath="/", **HEALTH)["TargetGroups"][0]["TargetGroupArn"]
        self.elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": str(DEREGISTRATION_DELAY)}])
        return arn

    def listener(self, port: int, actions: list) -> str:
        return self.elb.create_listener(LoadBalancerArn=self.lb, Protocol="HTTP", Port=port,
                                        DefaultActions=actions)["Listeners"][0]["ListenerArn"]

    def setup(self) -> None:
        a = self.args
        self.v1 = self.ecs.register_task_definition(family=f"{self.prefix}-web", containerDefinitions=web("v1"))["taskDefinition"]["taskDefinitionArn"]
        self.v2 = self.ecs.register_task_definition(family=f"{self.prefix}-web", containerDefinitions=web("v2"))["taskDefinition"]["taskDefinitionArn"]
        self.lb = self.elb.create_load_balancer(Name=self.prefix, Type="application")["LoadBalancers"][0]["LoadBalancerArn"]

        # 1. one target behind a listener, for throughput and latency
        self.tg_single = self.target_group("one")
        self.listener(a.ports[0], [{"Type": "forward", "TargetGroupArn": self.tg_single}])
        self.ecs.create_service(cluster=self.cluster, serviceName="one", taskDefinition=self.v1, desiredCount=1,
                                loadBalancers=[{"targetGroupArn": self.tg_single, "containerName": "web", "containerPort": CONTAINER_PORT}])
        # 2. rolling (ECS's defaults: 100/200 percent)
        self.tg_roll = self.target_group("roll")
        self.listener(a.ports[1], [{"Type": "forward", "TargetGroupArn": self.tg_roll}])
        self.ecs.create_service(cluster=self.cluster, serviceName="rolling", taskDefinition=self.v1, desiredCount=2,
                                loadBalancers=[{"targetGroupArn": self.tg_roll, "containerName": "web", "containerPort": CONTAINER_PORT}])
        # 3. blue/green: a production and a test listener whose default rules forward to blue
        blue, green = self.target_group("blue"), self.target_group("green")
        forward = [{"Type": "forward", "ForwardConfig": {"TargetGroups": [
            {"TargetGroupArn": blue, "Weight": 1}, {"TargetGroupArn": green, "Weight": 0}]}}]
        rules = []
        for port in a.ports[2:4]:
            listener = self.listener(port, forward)
            rules.append(self.elb.describe_rules(ListenerArn=listener)["Rules"][0]["RuleArn"])
        self.tg_blue = blue
        self.ecs.create_service(
            cluster=self.cluster, serviceName="bluegreen", taskDefinition=self.v1, desiredCount=2,
            loadBalancers=[{"targetGroupArn": blue, "containerName": "web", "containerPort": CONTAINER_PORT,
                            "advancedConfiguration": {"alternateTargetGroupArn": green, "productionListenerRule": rules[0],
                                                      "testListenerRule": rules[1], "roleArn": "arn:aws:iam::000000000000:role/ecs-elb"}}],
            deploymentConfiguration={"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0})

    def wait_healthy(self, tg: str, count: int, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while True:
            health = self.elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
            if sum(1 for h in health if h["TargetHealth"]["State"] == "healthy") == count:
                return
            if time.monotonic() > deadline:
                raise BenchmarkFailed(f"{tg}: not {count} healthy targets after {timeout:.0f} s: {health}")
            time.sleep(1)

    def task(self, service: str) -> dict:
        [arn] = self.ecs.list_tasks(cluster=self.cluster, serviceName=service)["taskArns"]
        return self.ecs.describe_tasks(cluster=self.cluster, tasks=[arn])["tasks"][0]

    def host_port(self, service: str) -> int:
        [binding] = [b for c in self.task(service)["containers"] for b in c.get("networkBindings", []) if b["containerPort"] == CONTAINER_PORT]
        return binding["hostPort"]

    # -- CPU pinning of the throughput phase

    def wrk_cpu(self) -> str | None:
        """With --pin and at least 2 CPUs: the one CPU wrk runs on (the last), else None. Only wrk is pinned: the
        measured processes (the data plane, the target, docker-proxy) may use every CPU, so the path with one more
        process is not confined to fewer CPUs than the direct one."""
        n = os.cpu_count() or 1
        return str(n - 1) if self.args.pin and n >= 2 else None

    # -- throughput and latency

    def wrk(self, port: int, seconds: float) -> dict:
        # Pinned: wrk keeps to its own CPU (one thread), so it cannot take the CPU the measured path needs.
        pinned = ["taskset", "-c", cpu] if (cpu := self.wrk_cpu()) else []
        out = subprocess.run([*pinned, "wrk", f"-t{self.args.threads}", f"-c{self.args.connections}", f"-d{int(round(seconds))}s",
                              "--latency", f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=seconds + 60)
        if out.returncode != 0:
            raise BenchmarkFailed(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        text = out.stdout
        result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
                  "requests": int(re.search(r"(\d+) requests in", text).group(1)),
                  "non_2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0,
                  "socket_errors": m.group(0) if (m := re.search(r"Socket errors:.*", text)) else "",
                  "raw": text}
        for p in ("50", "90", "99"):
            m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
            scale = {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
            result[f"p{p}_ms"] = float(m.group(1)) * scale
        if result["requests"] == 0:
            raise BenchmarkFailed(f"wrk got no answer at all from port {port}:\n{text}")
        return result

    def measured_wrk(self, port: int, tag: str) -> dict:
        wait_for_quiet(self.pids, self.args.quiet_wait)
        meter = CpuMeter(self.pids)
        meter.start()
        result = self.wrk(port, self.args.duration)
        result["cpu"] = meter.stop()
        cpu = result["cpu"]
        print(f"  wrk {tag:8} {result['rps']:8.0f} req/s  p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:8.2f} ms"
              f"  non-2xx {result['non_2xx']}  {result['socket_errors']}  (cpu %: balancer {cpu.get('balancer', 0):.0f},"
              f" wrk {cpu['wrk']:.0f}, other {cpu['other']:.0f}, machine {cpu['machine_busy']:.0f})", flush=True)
        return result

    def interleaved_openloop(self, ports: dict) -> dict:
        """Open loop on each path in turn, in short alternating slices (after a 1 s warm-up each), so a
        change in the machine's load falls on both paths alike; the slices' samples are pooled."""
        a = self.args
        slices = max(1, a.slices)
        streams = {tag: [] for tag in ports}
        cpu = {tag: [] for tag in ports}
        for i in range(slices):
            order = list(ports.items()) if i % 2 == 0 else list(ports.items())[::-1]
            for tag, port in order:
                meter = CpuMeter(self.pids)
                meter.start()
                stream = Stream(port, a.rate, connections=16)
                stream.start()
                time.sleep(1 + a.latency_duration / slices)
                stream.stop()
                cpu[tag].append(meter.stop()["other"])
                streams[tag].append(stream)
        result = {}
        for tag, parts in streams.items():
            pooled = Stream.pool(parts, warmup=1)
            pooled["other_cpu"] = sum(cpu[tag]) / len(cpu[tag])
            result[tag] = pooled
            print(f"  open loop {tag:8} {pooled['requests']} requests at {a.rate:g}/s: p50 {pooled['p50_ms']:.2f} ms"
                  f"  p90 {pooled['p90_ms']:.2f} ms  p99 {pooled['p99_ms']:.2f} ms  failed {pooled['failed']}"
                  f"  (other cpu {pooled['other_cpu']:.0f}%)", flush=True)
        return result

    def proxy(self) -> dict:
        a = self.args
        self.wait_healthy(self.tg_single, 1)
        port = self.host_port("one")
        direct, balancer = port, a.ports[0]
        cpu = self.wrk_cpu()
        print(f"== throughput: wrk -t{a.threads} -c{a.connections} -d{a.duration:g}s --latency, direct "
              f"(host port {direct}) and through the listener (port {balancer}), {a.rounds} round(s) alternating, "
              f"after a {a.warmup:g} s warm-up each" + (f"; wrk pinned to CPU {cpu}" if cpu else "; wrk not pinned"), flush=True)
        self.wrk(direct, a.warmup)
        self.wrk(balancer, a.warmup)
        rounds = []
        for i in range(a.rounds):
            # Alternating which goes first, so a disturbance in one half of a round is not always on the same side.
            order = [("direct", direct), ("balancer", balancer)]
            if i % 2:
                order.reverse()
            rounds.append({tag: self.measured_wrk(p, tag) for tag, p in order})
        print(f"== latency: open loop at {a.rate:g} req/s, {a.latency_duration:g} s each way in {a.slices} alternating slices", flush=True)
        wait_for_quiet(self.pids, a.quiet_wait)
        latency = self.interleaved_openloop({"direct": direct, "balancer": balancer})
        return {"direct_port": direct, "listener_port": balancer, "wrk": rounds, "latency": latency, "wrk_cpu": cpu}

    # -- deployments under a steady stream

    def service_state(self, service: str) -> dict:
        s = self.ecs.describe_services(cluster=self.cluster, services=[service])["services"][0]
        return s

    def deployments(self, service: str) -> list:
        return [d["serviceDeploymentArn"] for d in
                self.ecs.list_service_deployments(cluster=self.cluster, service=service)["serviceDeployments"]]

    def rolling(self) -> dict:
        a = self.args
        self.wait_healthy(self.tg_roll, 2)
        print(f"== rolling deployment of 'rolling' (2 tasks, 100/200 %) under {a.deploy_rate:g} req/s through port {a.ports[1]}", flush=True)

        def done() -> bool:
            s = self.service_state("rolling")
            return (len(s["deployments"]) == 1 and s["deployments"][0]["taskDefinition"] == self.v2
                    and s["deployments"][0].get("rolloutState") == "COMPLETED")
        return self.deploy("rolling", a.ports[1], done)

    def bluegreen(self) -> dict:
        a = self.args
        self.wait_healthy(self.tg_blue, 2)
        print(f"== blue/green deployment of 'bluegreen' (2 tasks, BLUE_GREEN, bake 0) under {a.deploy_rate:g} req/s through port {a.ports[2]}", flush=True)
        state = {"before": set(self.deployments("bluegreen"))}

        def done() -> bool:
            mine = [arn for arn in self.deployments("bluegreen") if arn not in state["before"]]
            if not mine:
                return False
            d = self.ecs.describe_service_deployments(serviceDeploymentArns=mine[:1])["serviceDeployments"][0]
            if d.get("lifecycleStage") != state.get("stage"):
                state["stage"] = d.get("lifecycleStage")
                state.setdefault("stages", []).append((round(time.time() - state["t0"], 1), d.get("lifecycleStage")))
            if d["status"] in ("ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED", "STOPPED"):
                raise BenchmarkFailed(f"the blue/green deployment ended {d['status']}: {json.dumps(d, default=str)[:800]}")
            return d["status"] == "SUCCESSFUL"
        result = self.deploy("bluegreen", a.ports[2], done, state)
        result["stages"] = state.get("stages", [])
        return result

    def deploy(self, service: str, port: int, done, state: dict | None = None) -> dict:
        a = self.args
        stream = Stream(port, a.deploy_rate, connections=32)
        stream.start()
        time.sleep(a.settle)
        t0 = time.time()
        if state is not None:
            state["t0"] = t0
        self.ecs.update_service(cluster=self.cluster, service=service, taskDefinition=self.v2)
        deadline = time.monotonic() + a.deploy_timeout
        while not done():
            if time.monotonic() > deadline:
                stream.stop()
                raise BenchmarkFailed(f"{service}: the deployment did not complete within {a.deploy_timeout:.0f} s")
            time.sleep(0.5)
        duration = time.time() - t0
        time.sleep(a.settle)        # the stream goes on past the end: nothing fails afterwards either
        stream.stop()
        tasks = self.ecs.list_tasks(cluster=self.cluster, serviceName=service)["taskArns"]
        result = stream.summary(after=stream.t0)
        result.update({"duration_s": duration, "tasks_after": len(tasks), "versions": stream.versions(),
                       "first_v2_s": stream.first("v2", t0), "last_v1_s": stream.last("v1", t0)})
        print(f"  {service}: completed in {duration:.1f} s; {result['requests']} requests, failed {result['failed']}"
              f" {result['statuses']}; v1 last answered at {result['last_v1_s']}, v2 first at {result['first_v2_s']} s"
              f" (from update-service); p50 {result['p50_ms']:.2f} p99 {result['p99_ms']:.2f} ms", flush=True)
        if result["failures"]:
            print(f"  first failures: {result['failures'][:5]}", flush=True)
        return result

    def run(self) -> dict:
        self.setup()
        results = {"proxy": self.proxy()}
        results["rolling"] = self.rolling()
        results["bluegreen"] = self.bluegreen()
        for service in ("one", "rolling", "bluegreen"):
            self.ecs.delete_service(cluster=self.cluster, service=service, force=True)
        return results


class Stream:
    """Open loop, GET /, constant rate until stopped (as openloop.py, which sends signed POSTs for
    a fixed time): request i is due at t0 + i/rate and its latency counts from then. Each answer's
    body (the task's version) is kept to see when traffic moved."""

    def __init__(self, port: int, rate: float, connections: int, timeout: float = 10.0):
        self.port, self.rate, self.connections, self.timeout = port, rate, connections, timeout
        self.samples = []    # (intended, done, status, body or error)
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def start(self) -> None:
        import queue
        self.due = queue.Queue()
        self.threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(self.connections)]
        for t in self.threads:
            t.start()
        self.t0 = time.perf_counter() + 0.05
        self.wall0 = time.time() + 0.05
        self.pacer = threading.Thread(target=self._pace, daemon=True)
        self.pacer.start()

    def _pace(self) -> None:
        i = 0
        while not self.stopped.is_set():
            intended = self.t0 + i / self.rate
            delay = intended - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.due.put(intended)
            i += 1

    def _worker(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        while True:
            intended = self.due.get()
            if intended is None:
                break
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                body = response.read().decode(errors="replace").strip()
                status = response.status
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException) as e:
                conn.close()    # reconnects on the next request
                status, body = None, repr(e)
            with self.lock:
                self.samples.append((intended, time.perf_counter(), status, body))
        conn.close()

    def stop(self) -> None:
        self.stopped.set()
        self.pacer.join()
        for _ in self.threads:
            self.due.put(None)
        for t in self.threads:
            t.join()
        self.elapsed = time.perf_counter() - self.t0

    def _wall(self, perf: float) -> float:
        return self.wall0 + (perf - self.t0)

    @staticmethod
    def pool(streams: list, warmup: float) -> dict:
        """The summary of several streams' samples, each without its first `warmup` seconds."""
        pooled = Stream(streams[0].port, streams[0].rate, streams[0].connections)
        pooled.t0, pooled.wall0 = streams[0].t0, streams[0].wall0
        pooled.elapsed = sum(s.elapsed for s in streams)
        for s in streams:
            pooled.samples += [x for x in s.samples if x[0] >= s.t0 + warmup]
        pooled.elapsed -= warmup * len(streams)
        return pooled.summary(after=float("-inf"))

    def summary(self, after: float) -> dict:
        measured = [s for s in self.samples if s[0] >= after]
        latencies = sorted(done - intended for intended, done, _, _ in measured)
        failed = [s for s in measured if s[2] is None or not 200 <= s[2] < 300]
        statuses = {}
        for s in measured:
            statuses[str(s[2])] = statuses.get(str(s[2]), 0) + 1
        return {"requests": len(measured), "rate_target": self.rate,
                "rate_achieved": len(self.samples) / self.elapsed if self.elapsed > 0 else 0.0,
                "p50_ms": percentile(latencies, 50) * 1000, "p90_ms": percentile(latencies, 90) * 1000,
                "p99_ms": percentile(latencies, 99) * 1000,
                "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
                "failed": len(failed), "statuses": statuses,
                # The slowest requests and when they were due: a stall shows as a run of them at one time.
                "slowest": sorted(((round(1000 * (done - intended), 1), round(self._wall(intended), 3))
                                   for intended, done, _, _ in measured), reverse=True)[:10],
                "over_500ms": sum(1 for x in latencies if x > 0.5),
                "failures": [(round(self._wall(s[0]), 3), s[2], s[3][:200]) for s in failed[:20]]}

    def versions(self) -> dict:
        counts = {}
        for s in self.samples:
            if s[2] == 200:
                counts[s[3]] = counts.get(s[3], 0) + 1
        return counts

    def first(self, version: str, since: float):
        times = [self._wall(s[0]) - since for s in self.samples if s[2] == 200 and s[3] == version]
        return round(min(times), 1) if times else None

    def last(self, version: str, since: float):
        times = [self._wall(s[0]) - since for s in self.samples if s[2] == 200 and s[3] == version]
        return round(max(times), 1) if times else None


# ---------------------------------------------------------------- report

def render(r: dict, args) -> str:
    p = r["proxy"]
    out = ["# Load balancer benchmark", "",
           f"Run {r['started']} on {os.cpu_count()} cores shared with whatever else runs on the machine "
           f"(wrk, the generator, the balancer, the control plane, the worker, Azurite, dockerd and the target).", "",
           "## Through the balancer vs straight to the target", "",
           f"One busybox `httpd` task (`{IMAGE}`, `httpd -f -p {CONTAINER_PORT}`, which answers `Connection: close`), "
           f"reached straight at its host port {p['direct_port']} and through the listener on port {p['listener_port']}. "
           f"Throughput: `wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency` (closed loop: its latencies include queueing), "
           f"{args.rounds} rounds, each direct then through the balancer or the reverse, alternating"
           + (f"; wrk pinned to CPU {p['wrk_cpu']} with one thread (`taskset`), so the load generator takes at most one CPU, "
              "and the measured processes (the balancer, the target, docker-proxy) run on any." if p.get("wrk_cpu") else "; wrk not pinned."),
           "", "| round | direct req/s | balancer req/s | ratio | direct p50 / p99 ms | balancer p50 / p99 ms | errors (direct / balancer) | balancer CPU % | balancer CPU ms / request | other CPU % (direct / balancer) |",
           "|---|---|---|---|---|---|---|---|---|---|"]

    def errors(w):
        timeouts = re.search(r"timeout (\d+)", w["socket_errors"])
        return w["non_2xx"] + (int(timeouts.group(1)) if timeouts else 0)
    for i, rnd in enumerate(p["wrk"], 1):
        d, b = rnd["direct"], rnd["balancer"]
        cpu = b["cpu"].get("balancer", 0)
        out.append(f"| {i} | {d['rps']:.0f} | {b['rps']:.0f} | {b['rps'] / d['rps']:.2f} | {d['p50_ms']:.2f} / {d['p99_ms']:.1f} | "
                   f"{b['p50_ms']:.2f} / {b['p99_ms']:.1f} | {errors(d)} / {errors(b)} | {cpu:.0f} | {10 * cpu / b['rps']:.2f} | "
                   f"{d['cpu']['other']:.0f} / {b['cpu']['other']:.0f} |")
    out += ["", "Errors: non-2xx answers and wrk's socket timeouts (no answer within its 2 s). Other CPU: the machine's busy CPU minus that of every process this "
            "benchmark started (the target container and dockerd are in it), in % of one core: above 25 the run was disturbed."]
    ratios = [rnd["balancer"]["rps"] / rnd["direct"]["rps"] for rnd in p["wrk"]]
    # The bar goes by the median round: one round disturbed by the rest of the (shared) machine moves it least.
    ordered = sorted(ratios)
    ratio = (ordered[len(ordered) // 2] + ordered[(len(ordered) - 1) // 2]) / 2
    pooled = sum(rnd["balancer"]["rps"] for rnd in p["wrk"]) / sum(rnd["direct"]["rps"] for rnd in p["wrk"])
    ld, lb = p["latency"]["direct"], p["latency"]["balancer"]
    added = lb["p50_ms"] - ld["p50_ms"]
    out += ["", f"Open loop at {args.rate:g} req/s, {args.latency_duration:g} s each way in {args.slices} alternating slices "
            "(GET /, latency from each request's intended send time):", "",
            "| path | requests | p50 ms | p90 ms | p99 ms | max ms | failed | other CPU % |", "|---|---|---|---|---|---|---|---|"]
    for tag, l in (("direct", ld), ("balancer", lb)):
        out.append(f"| {tag} | {l['requests']} | {l['p50_ms']:.2f} | {l['p90_ms']:.2f} | {l['p99_ms']:.2f} | {l['max_ms']:.1f} | {l['failed']} | {l['other_cpu']:.0f} |")
    out += ["", f"Bars: throughput >= 0.7x direct: **{'met' if ratio >= 0.7 else 'MISSED'}** "
            f"(median of the rounds {ratio:.2f}, range {ordered[0]:.2f}-{ordered[-1]:.2f}, pooled {pooled:.2f}; per round {', '.join(f'{x:.2f}' for x in ratios)}); added p50 <= 1 ms: **{'met' if added <= 1 else 'MISSED'}** "
            f"(+{added:.2f} ms open loop)."]
    out += ["", "## Deployments under a steady stream", "",
            f"A service of 2 tasks behind a listener; {args.deploy_rate:g} req/s open loop (GET /, 10 s timeout, "
            f"from {args.settle:g} s before `update-service` to {args.settle:g} s after the deployment completed). "
            f"Target groups: health check every {HEALTH['HealthCheckIntervalSeconds']} s, healthy after "
            f"{HEALTH['HealthyThresholdCount']}, deregistration delay {DEREGISTRATION_DELAY} s; tasks stop with stopTimeout 2 s. "
            "Duration: from `update-service` until the rolling deployment is `COMPLETED` (the old tasks stopped) / "
            "the service deployment is `SUCCESSFUL` (after `CLEAN_UP` stopped blue).", "",
            "| deployment | duration s | requests | failed | answers | v2 first / v1 last (s after update) | p50 / p99 ms |",
            "|---|---|---|---|---|---|---|"]
    for name, key in (("rolling (100/200 %)", "rolling"), ("blue/green (BLUE_GREEN, bake 0)", "bluegreen")):
        d = r[key]
        out.append(f"| {name} | {d['duration_s']:.1f} | {d['requests']} | {d['failed']} | {d['versions']} | "
                   f"{d['first_v2_s']} / {d['last_v1_s']} | {d['p50_ms']:.1f} / {d['p99_ms']:.1f} |")
    if r["bluegreen"].get("stages"):
        out += ["", "Blue/green stages (s after update-service): " + ", ".join(f"{s} {t}" for t, s in r["bluegreen"]["stages"])]
    failures = r["rolling"]["failures"] + r["bluegreen"]["failures"]
    out += ["", f"Bar: 0 failed requests: **{'met' if not failures else 'MISSED'}**."]
    if failures:
        out += ["", "First failures: " + "; ".join(str(f) for f in failures[:10])]
    out += ["", "Reproduce: `bash bench/load-balancer.sh` (see bench/README.md)."]
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run")
    p.add_argument("--url", required=True)
    p.add_argument("--cluster", required=True)
    p.add_argument("--ports", type=int, nargs=4, required=True, help="listener ports: one, rolling, production, test")
    p.add_argument("--lb-pid", type=int, required=True)
    p.add_argument("--cp-pid", type=int, required=True)
    p.add_argument("--worker-pid", type=int, required=True)
    p.add_argument("--azurite-pid", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--json")
    p.add_argument("--threads", type=int, help="wrk threads (default: 1 when pinned, else 2)")
    p.add_argument("--no-pin", dest="pin", action="store_false",
                   help="do not pin wrk (one thread) to the last CPU during the throughput rounds")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--rate", type=float, default=200, help="open-loop rate of the latency measurement")
    p.add_argument("--latency-duration", type=float, default=20)
    p.add_argument("--slices", type=int, default=4)
    p.add_argument("--deploy-rate", type=float, default=200)
    p.add_argument("--settle", type=float, default=3)
    p.add_argument("--deploy-timeout", type=float, default=300)
    p.add_argument("--quiet-wait", type=float, default=10)
    args = parser.parse_args()
    if args.threads is None:
        args.threads = 1 if args.pin and (os.cpu_count() or 1) >= 2 else 2
    try:
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        results = Bench(args).run()
        results["started"] = started
        write_report(args.out, render(results, args), args.json, results)
    except BenchmarkFailed as e:
        loud("BENCHMARK FAILED")
        print(str(e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
