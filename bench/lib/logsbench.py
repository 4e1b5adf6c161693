"""Container logs benchmark driver (issue 12): what the worker's awslogs shipping costs and how fast
it is, next to Docker's own `docker logs -f` in the same run.

    logsbench.py run --url URL --cluster C --azurite-log LOG --worker-log LOG ...   (logs.sh starts the processes)

Three measurements, one after another so they do not share the cores with each other:

1. throughput: a container prints N numbered lines of 100 bytes as fast as it can
   (`seq | awk`), once as a raw `docker run -d` read by `docker logs -f ID > /dev/null`, once as our
   task with the awslogs driver. Lines per second = N / (from the container's start event to the
   last line delivered): for Docker, `docker logs -f` exiting; for ours, the end of the worker's
   last write to the LogEvents table (Azurite's log: request time + TotalTimeInMS), i.e. stored.
   Every shipped line is then read back through GetLogEvents: all N, in order, each once.
2. cost: storage transactions the worker makes on the Logs tables (LogGroups, LogStreams,
   LogEvents) per 1,000 lines of 100 bytes: for a task printing exactly 1,000 lines (from RunTask
   until its output is shipped, so making its stream is included) and
   over the throughput runs.
3. latency: a container prints a numbered line every 200 ms; a poller reads GetLogEvents (in-process
   SigV4 client, forward token) every 100 ms; latency = when the poller first sees a line minus the
   line's timestamp, which is Docker's own time of receiving it from the container (the driver
   keeps it as the event's timestamp; same clock). It overstates by up to one poll interval.

Counting storage: servicescale_storage.AzuriteLog reads Azurite's --debug log (one request line per
storage request; the worker sends no User-Agent, the control plane's SDK does).
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import threading
import time
import uuid

import servicescale_storage as st
from readbench import machine_cpu, tree_cpu_seconds
from benchcommon import BenchmarkFailed, Client, median, wait_worker_registered, write_report

IMAGE = "local/busybox:latest"
GROUP = "/bench/logs"
RAW_LABEL = "bench-logs"
CLUSTER_LABEL = "com.amazonaws.ecs.cluster"
TASK_ARN_LABEL = "com.amazonaws.ecs.task-arn"
LOG_TABLES = ("LogGroups", "LogStreams", "LogEvents")
LINE_BYTES = 100
TICK_SECONDS = 0.2
POLL_SECONDS = 0.1
BARS = {"ratio": 0.8, "per_1000": 5.0, "p50": 2.0}


def loud(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- the API, signed in process

class Api(Client):
    def call(self, action: str, params: dict, timeout: float = 60, ok_errors: tuple = ()) -> dict:
        status, body = self.send(action, params, timeout)
        answer = json.loads(body) if body else {}
        if status != 200:
            kind = str(answer.get("__type", "")).rsplit("#", 1)[-1]
            if kind in ok_errors:
                return {"__error": kind}
            raise BenchmarkFailed(f"{action} -> HTTP {status}: {body[:500]!r}")
        return answer


def ecs_client(url: str) -> Api:
    return Api(url, "AmazonEC2ContainerServiceV20141113.", "ecs")


def logs_client(url: str) -> Api:
    return Api(url, "Logs_20140328.", "logs")


# ---------------------------------------------------------------- containers and their output

def numbered_lines(count: int) -> str:
    """Shell for busybox: `count` lines of exactly LINE_BYTES characters, '0000001 000...'."""
    return f'seq 1 {count} | awk \'{{printf "%07d %0{LINE_BYTES - 8}d\\n", $1, 0}}\''


def expected_line(n: int) -> str:
    return f"{n:07d} " + "0" * (LINE_BYTES - 8)


TICKS = f'i=0; while :; do i=$((i+1)); echo "tick $i"; sleep {TICK_SECONDS}; done'


class DockerEvents:
    """`docker events` (start, die) of this run's task containers and raw containers (the engine is shared)."""

    def __init__(self, cluster: str, run_id: str):
        self.cluster, self.run_id = cluster, run_id
        self.events = []          # (epoch, action, container id, attributes)
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            ["docker", "events", "--filter", "type=container", "--filter", "event=start", "--filter", "event=die",
             "--format", "{{.TimeNano}} {{.Action}} {{.Actor.ID}} {{json .Actor.Attributes}}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        time.sleep(0.5)

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

    def wait(self, action: str, match, timeout: float) -> tuple:
        """(epoch, container id) of the first event `action` whose (id, attributes) match."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, act, cid, attrs in self.events:
                    if act == action and match(cid, attrs):
                        return t, cid
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchmarkFailed(f"no container {action} event within {timeout:.0f} s")
                self.cond.wait(left)

    def close(self):
        self.proc.terminate()


def wait_shipped(worker_log: str, docker_id: str, timeout: float) -> None:
    """Until the worker logs that the container's output is all stored ("Shipped the output of container ...")."""
    deadline = time.monotonic() + timeout
    needle = f"Shipped the output of container {docker_id}"
    while time.monotonic() < deadline:
        with open(worker_log, "r", encoding="utf-8", errors="replace") as f:
            if needle in f.read():
                return
        time.sleep(0.2)
    raise BenchmarkFailed(f"the worker did not finish shipping {docker_id[:12]} within {timeout:.0f} s")


def read_stream(logs: Api, stream: str) -> list:
    """Every event of the stream, oldest first, through GetLogEvents' forward tokens."""
    out, token = [], None
    while True:
        params = {"logGroupName": GROUP, "logStreamName": stream, "startFromHead": True}
        if token:
            params["nextToken"] = token
        page = logs.call("GetLogEvents", params, timeout=120)
        out += page["events"]
        if page["nextForwardToken"] == token:
            return out
        token = page["nextForwardToken"]


def verify_numbered(events: list, count: int, what: str) -> None:
    if len(events) != count:
        raise BenchmarkFailed(f"{what}: {len(events)} events stored, {count} printed")
    for i, e in enumerate(events, 1):
        if e["message"] != expected_line(i):
            raise BenchmarkFailed(f"{what}: event {i} is {e['message'][:40]!r}, expected line {i}")


def log_requests(requests: list) -> list:
    return [r for r in requests if r.process == st.WORKER and r.service == "table" and r.resource in LOG_TABLES]


def op_counts(requests: list) -> dict:
    out = {}
    for r in requests:
        key = f"{r.resource} {r.operation}" + (f" ({r.status})" if r.status >= 400 else "")
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def run_task(ecs: Api, cluster: str, family: str) -> str:
    answer = ecs.call("RunTask", {"cluster": cluster, "taskDefinition": family, "count": 1, "clientToken": str(uuid.uuid4())})
    if answer.get("failures") or not answer.get("tasks"):
        raise BenchmarkFailed(f"RunTask {family}: {answer.get('failures')}")
    return answer["tasks"][0]["taskArn"]


def task_id(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


# ---------------------------------------------------------------- the measurements

CLK_TCK = os.sysconf("SC_CLK_TCK")


def dockerd_pid() -> int:
    out = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True).stdout.split()
    return int(out[0]) if out else 0


class Cpu:
    """CPU seconds of our processes (with their children), dockerd, and the whole machine, between two points."""

    def __init__(self, args):
        self.roots = {"worker": [args.worker_pid], "storage (Azurite --debug)": [args.azurite_pid],
                      "control plane": [args.cp_pid], "dockerd": [dockerd_pid()]}
        self.before = self._read()

    def _read(self) -> dict:
        out = {name: tree_cpu_seconds(pids) for name, pids in self.roots.items()}
        out["machine"] = machine_cpu()[0] / CLK_TCK
        return out

    def used(self) -> dict:
        after = self._read()
        used = {k: round(after[k] - self.before[k], 2) for k in after}
        used["everything else"] = round(used["machine"] - sum(v for k, v in used.items() if k != "machine"), 2)
        return used

def raw_throughput(events: DockerEvents, args, run_id: str, lines: int) -> dict:
    cpu = Cpu(args)
    cid = subprocess.run(["docker", "run", "-d", "--label", f"{RAW_LABEL}={run_id}", "-m", "64m", "--log-driver", "json-file",
                          IMAGE, "sh", "-c", numbered_lines(lines)], check=True, capture_output=True, text=True).stdout.strip()
    follow = subprocess.Popen(["docker", "logs", "-f", cid], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    follow.wait(timeout=900)
    end = time.time()
    used = cpu.used()
    start, _ = events.wait("start", lambda i, a: i == cid, 30)
    died, _ = events.wait("die", lambda i, a: i == cid, 30)
    last = subprocess.run(["docker", "logs", "--tail", "1", cid], capture_output=True, text=True).stdout.strip()
    timestamps = timestamps_cost(cid)
    subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
    if last != expected_line(lines):
        raise BenchmarkFailed(f"raw container's last line is {last[:40]!r}")
    return {"seconds": end - start, "print_seconds": died - start, "lines_per_s": lines / (end - start), "cpu": used,
            "timestamps": timestamps}


def timestamps_cost(cid: str) -> dict:
    """dockerd's CPU seconds and the wall time to serve the stopped container's whole log, without and with
    `timestamps` (what the shipper asks for), each read twice, alternating."""
    out = {"plain_cpu": 0.0, "timestamps_cpu": 0.0, "plain_s": 0.0, "timestamps_s": 0.0}
    pid = dockerd_pid()
    for flags in ([], ["-t"], ["-t"], []):
        key = "timestamps" if flags else "plain"
        before, t0 = tree_cpu_seconds([pid]), time.monotonic()
        subprocess.run(["docker", "logs", *flags, cid], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        out[f"{key}_s"] += time.monotonic() - t0
        out[f"{key}_cpu"] += tree_cpu_seconds([pid]) - before
    return {k: round(v / 2, 3) for k, v in out.items()}


def our_throughput(ecs: Api, logs: Api, az: st.AzuriteLog, events: DockerEvents, args, lines: int) -> dict:
    cpu = Cpu(args)
    called = time.time()
    arn = run_task(ecs, args.cluster, "bench-logs-flood")
    start, cid = events.wait("start", lambda i, a: a.get(TASK_ARN_LABEL) == arn, 120)
    died, _ = events.wait("die", lambda i, a: i == cid, 900)
    wait_shipped(args.worker_log, cid, 900)
    used_cpu = cpu.used()
    time.sleep(0.5)
    writes = [r for r in log_requests(az.window(called, time.time())) if r.resource == "LogEvents" and r.method == "POST"]
    if not writes:
        raise BenchmarkFailed("no LogEvents write by the worker")
    end = max(r.t + r.server_ms / 1000 for r in writes)
    used = log_requests(az.window(called, end + 0.001))
    stream = f"flood/app/{task_id(arn)}"
    verify_numbered(read_stream(logs, stream), lines, stream)
    return {"seconds": end - start, "print_seconds": died - start, "lines_per_s": lines / (end - start),
            "transactions": len(used), "per_1000": len(used) / (lines / 1000), "operations": op_counts(used),
            "events_writes": len(writes), "cpu": used_cpu}


def thousand_cost(ecs: Api, logs: Api, az: st.AzuriteLog, events: DockerEvents, args) -> dict:
    called = time.time()
    arn = run_task(ecs, args.cluster, "bench-logs-thousand")
    _, cid = events.wait("start", lambda i, a: a.get(TASK_ARN_LABEL) == arn, 120)
    wait_shipped(args.worker_log, cid, 120)
    time.sleep(1.0)
    used = log_requests(az.window(called, time.time()))
    stream = f"thousand/app/{task_id(arn)}"
    verify_numbered(read_stream(logs, stream), 1000, stream)
    puts = [r for r in used if r.resource == "LogEvents" and r.method == "POST"]
    return {"transactions": len(used), "events_writes": len(puts), "operations": op_counts(used)}


def latency(ecs: Api, logs: Api, az: st.AzuriteLog, events: DockerEvents, args) -> dict:
    arn = run_task(ecs, args.cluster, "bench-logs-tick")
    start, cid = events.wait("start", lambda i, a: a.get(TASK_ARN_LABEL) == arn, 120)
    stream = f"tick/app/{task_id(arn)}"
    samples, seen, token = [], set(), None
    until = start + args.latency_seconds
    while time.time() < until:
        params = {"logGroupName": GROUP, "logStreamName": stream, "startFromHead": True}
        if token:
            params["nextToken"] = token
        page = logs.call("GetLogEvents", params, ok_errors=("ResourceNotFoundException",))
        now = time.time()
        if "__error" not in page:
            for e in page["events"]:
                if e["message"] in seen:
                    raise BenchmarkFailed(f"{stream}: {e['message']!r} seen twice")
                seen.add(e["message"])
                samples.append(now - e["timestamp"] / 1000)
            token = page["nextForwardToken"]
        time.sleep(max(0.0, POLL_SECONDS - (time.time() - now)))
    window_end = time.time()
    ecs.call("StopTask", {"cluster": args.cluster, "task": arn, "reason": "benchmark done"})
    used = log_requests(az.window(start, window_end))
    if len(samples) < 5:
        raise BenchmarkFailed(f"{stream}: only {len(samples)} lines seen in {args.latency_seconds} s")
    ordered = sorted(samples)
    pct = lambda q: ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]
    return {"lines": len(samples), "p50": pct(0.5), "p95": pct(0.95), "max": ordered[-1], "min": ordered[0],
            "transactions": len(used), "per_1000": len(used) / (len(samples) / 1000), "operations": op_counts(used)}


# ---------------------------------------------------------------- setup, report

def setup(ecs: Api, cluster: str, lines: int) -> None:
    ecs.call("CreateCluster", {"clusterName": cluster})
    wait_worker_registered(ecs, cluster, 120)

    def define(family: str, prefix: str, script: str) -> None:
        ecs.call("RegisterTaskDefinition", {"family": family, "containerDefinitions": [{
            "name": "app", "image": IMAGE, "entryPoint": ["sh", "-c"], "command": [script], "memory": 64,
            "essential": True, "stopTimeout": 2,
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": GROUP, "awslogs-region": "us-east-1", "awslogs-stream-prefix": prefix,
                "awslogs-create-group": "true"}}}]})

    define("bench-logs-flood", "flood", numbered_lines(lines))
    define("bench-logs-thousand", "thousand", numbered_lines(1000))
    define("bench-logs-tick", "tick", TICKS)


def shipping_cost(thousand: dict) -> int:
    """Of a 1,000-line task's transactions, those of shipping the lines: the chunk writes and the stream row's
    time bounds; the rest made the stream (PrepareAsync, once per container)."""
    ops = thousand["operations"]
    return ops.get("LogEvents Table_InsertEntity", 0) + ops.get("LogStreams Table_UpdateEntity", 0)


def render(r: dict) -> str:
    a = r["args"]
    rounds = r["throughput"]
    ratios = [x["ours"]["lines_per_s"] / x["docker"]["lines_per_s"] for x in rounds]
    flood_cost = [x["ours"]["per_1000"] for x in rounds]
    thousand = [x["transactions"] for x in r["thousand"]]
    lat = r["latency"]
    ok = lambda good: "meets the bar" if good else "**misses the bar**"
    out = [f"# Container logs benchmark ({r['started']})", "",
           f"Machine: {r['nproc']} cores, shared with other work (figures are noisy). Azurite in memory with --debug, "
           "control plane standalone, one worker, all on this machine.", "",
           f"## Throughput: {a['lines']:,} lines of {LINE_BYTES} bytes printed as fast as the container can", "",
           "| round | `docker logs -f` lines/s | ours (stored) lines/s | ratio | container printing (raw / ours) | ours: storage tx per 1,000 lines |",
           "|---|---|---|---|---|---|"]
    for i, x in enumerate(rounds, 1):
        d, o = x["docker"], x["ours"]
        out.append(f"| {i} | {d['lines_per_s']:,.0f} ({d['seconds']:.1f} s) | {o['lines_per_s']:,.0f} ({o['seconds']:.1f} s) | "
                   f"{o['lines_per_s'] / d['lines_per_s']:.2f} | {d['print_seconds']:.1f} s / {o['print_seconds']:.1f} s | {o['per_1000']:.2f} |")
    out += ["", f"Median ratio {median(ratios):.2f} (bar >= {BARS['ratio']}): {ok(median(ratios) >= BARS['ratio'])}. "
            "Every shipped line was read back with GetLogEvents: all of them, in order, none twice.", "",
            "CPU seconds in each measurement (the container and other work on the machine are in \"everything else\"):", "",
            "| round | who | worker | Azurite (--debug) | dockerd | control plane | everything else | machine |",
            "|---|---|---|---|---|---|---|---|"]
    for i, x in enumerate(rounds, 1):
        for who in ("docker", "ours"):
            c = x[who]["cpu"]
            out.append(f"| {i} | {'`docker logs -f`' if who == 'docker' else 'ours'} | {c['worker']:.2f} | {c['storage (Azurite --debug)']:.2f} | "
                       f"{c['dockerd']:.2f} | {c['control plane']:.2f} | {c['everything else']:.2f} | {c['machine']:.2f} |")
    stamps = [x["docker"].get("timestamps") for x in rounds if x["docker"].get("timestamps")]
    if stamps:
        out += ["", "dockerd serving a stopped raw container's whole log (`docker logs ID > /dev/null`), without and with "
                "timestamps (`-t`, as the shipper asks), mean of two reads each: "
                + "; ".join(f"round {i}: {t['plain_cpu']:.2f} / {t['timestamps_cpu']:.2f} CPU-s, {t['plain_s']:.2f} / {t['timestamps_s']:.2f} s"
                            for i, t in enumerate(stamps, 1))]
    shipping = [shipping_cost(x) for x in r["thousand"]]
    out += ["",
            "## Storage transactions per 1,000 lines of 100 bytes (worker, Logs tables)", "",
            f"- a task printing 1,000 lines, from RunTask until shipped: {', '.join(str(t) for t in thousand)} (median {median(thousand):g}); "
            f"of which making its stream (once per container): {', '.join(str(x['transactions'] - shipping_cost(x)) for x in r['thousand'])}, "
            f"and shipping the 1,000 lines: {', '.join(str(t) for t in shipping)} (bar <= {BARS['per_1000']:g}: lines {ok(median(shipping) <= BARS['per_1000'])}, "
            f"whole task {ok(median(thousand) <= BARS['per_1000'])})",
            f"- during the throughput runs: {', '.join(f'{c:.2f}' for c in flood_cost)} per 1,000 lines",
            f"- a container printing {1 / TICK_SECONDS:g} lines/s (the latency run): {lat['per_1000']:.0f} per 1,000 lines "
            f"({lat['transactions']} for {lat['lines']} lines; batches of about a second, so this is a cost per second, not per line)",
            "", "Operations of the 1,000-line task (last round): " + ", ".join(f"{k}: {v}" for k, v in r["thousand"][-1]["operations"].items()),
            "", f"## Line printed -> visible in GetLogEvents ({lat['lines']} lines, one every {TICK_SECONDS * 1000:.0f} ms, polled every {POLL_SECONDS * 1000:.0f} ms)", "",
            f"p50 {lat['p50']:.2f} s, p95 {lat['p95']:.2f} s, max {lat['max']:.2f} s, min {lat['min']:.2f} s "
            f"(bar p50 <= {BARS['p50']:g} s: {ok(lat['p50'] <= BARS['p50'])}). The print time is Docker's timestamp of the line; "
            "the poll interval adds up to 0.1 s.", ""]
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run")
    run.add_argument("--url", required=True)
    run.add_argument("--cluster", required=True)
    run.add_argument("--run-id", required=True)
    run.add_argument("--azurite-log", required=True)
    run.add_argument("--worker-log", required=True)
    run.add_argument("--worker-pid", type=int, required=True)
    run.add_argument("--azurite-pid", type=int, required=True)
    run.add_argument("--cp-pid", type=int, required=True)
    run.add_argument("--lines", type=int, default=100_000)
    run.add_argument("--rounds", type=int, default=3)
    run.add_argument("--latency-seconds", type=float, default=60)
    run.add_argument("--out", required=True)
    run.add_argument("--json", required=True)
    again = sub.add_parser("render", help="write the report of a run again from its JSON")
    again.add_argument("json")
    again.add_argument("out")
    args = p.parse_args()
    if args.cmd == "render":
        with open(args.json) as f:
            text = render(json.load(f))
        with open(args.out, "w") as f:
            f.write(text)
        print(text)
        return 0

    ecs, logs = ecs_client(args.url), logs_client(args.url)
    az = st.AzuriteLog(args.azurite_log)
    setup(ecs, args.cluster, args.lines)
    events = DockerEvents(args.cluster, args.run_id)
    result = {"started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "nproc": os.cpu_count(), "args": vars(args), "throughput": [], "thousand": []}
    try:
        for i in range(args.rounds):
            loud(f"== round {i + 1}/{args.rounds}")
            x = {}
            # Alternate who goes first: the page cache and the machine's load drift.
            order = ("docker", "ours") if i % 2 == 0 else ("ours", "docker")
            for who in order:
                x[who] = (raw_throughput(events, args, args.run_id, args.lines) if who == "docker"
                          else our_throughput(ecs, logs, az, events, args, args.lines))
                loud(f"  {who}: {x[who]['lines_per_s']:,.0f} lines/s ({x[who]['seconds']:.1f} s, printing {x[who]['print_seconds']:.1f} s)"
                     + (f", {x[who]['per_1000']:.2f} storage tx per 1,000 lines" if who == "ours" else "")
                     + f"; CPU s {x[who]['cpu']}")
            result["throughput"].append(x)
            t = thousand_cost(ecs, logs, az, events, args)
            loud(f"  1,000 lines: {t['transactions']} storage transactions ({t['operations']})")
            result["thousand"].append(t)
        loud(f"== latency ({args.latency_seconds:.0f} s)")
        result["latency"] = latency(ecs, logs, az, events, args)
        lat = result["latency"]
        loud(f"  p50 {lat['p50']:.2f} s, p95 {lat['p95']:.2f} s over {lat['lines']} lines")
    finally:
        events.close()
    write_report(args.out, render(result), args.json, result, indent=1)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchmarkFailed as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        sys.exit(1)
