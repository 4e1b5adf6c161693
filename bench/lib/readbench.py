"""Read-path benchmark driver: ours vs moto_server, same requests, same run.

    readbench.py wait-port PORT... [--pid P] until the ports accept connections
    readbench.py wait URL [--timeout S]     until a signed ListClusters answers 200
    readbench.py seed URL                   create the clusters and task definitions
    readbench.py run --ours URL --moto URL  measure, print and write the report

read-throughput.sh starts the servers and calls these; see bench/README.md.
"""

import argparse
import glob
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import time

import openloop
import workload
from benchcommon import BenchmarkFailed, command_output, loud, machine_info, write_report
from signing import sign, write_lua_requests

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")


# % of one core used by processes outside the benchmark above which a run counts as disturbed.
DISTURBED_CPU = 25


# ---------------------------------------------------------------- talking to a server

def send_once(request) -> tuple:
    host, port = request.host.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
        for name, value in request.headers:
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(request.body)))
        conn.endheaders(request.body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ports(ports: list, pid: int, timeout: float) -> None:
    """Until every port accepts a connection; stops early if the process that should open
    them has exited."""
    deadline = time.monotonic() + timeout
    for port in ports:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if pid and not os.path.exists(f"/proc/{pid}"):
                    raise BenchmarkFailed(f"process {pid} exited before opening port {port}")
                if time.monotonic() > deadline:
                    raise BenchmarkFailed(f"nothing listens on port {port} after {timeout:.0f}s")
                time.sleep(0.2)


def wait_ready(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, body = send_once(sign(url, "ListClusters", {}))
            if status == 200:
                return
            last = f"HTTP {status}: {body[:300]!r}"
        except OSError as e:
            last = repr(e)
        time.sleep(0.5)
    raise BenchmarkFailed(f"{url} did not answer a signed ListClusters with 200 "
                          f"within {timeout:.0f}s; last: {last}")


# ---------------------------------------------------------------- CPU accounting

def _stat(pid: int):
    """(ppid, cpu seconds) of a live process, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree_cpu_seconds(roots: list) -> float:
    """CPU seconds used so far by the given processes and all their descendants."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            s = _stat(int(entry))
            if s:
                stats[int(entry)] = s
    children = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    seen, stack, total = set(), [p for p in roots if p], 0.0
    while stack:
        pid = stack.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid][1]
        stack.extend(children.get(pid, []))
    return total


def machine_cpu() -> tuple:
    """(busy, total) jiffies over all cores since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


def pid_listening_on(port: int):
    """The process listening on 127.0.0.1/0.0.0.0:port, found through its socket inode, so
    CPU can be accounted for servers this script did not start (--ours-url)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(parts[9])
        except OSError:
            pass
    targets = {f"socket:[{inode}]" for inode in inodes}
    for fd in glob.glob("/proc/[0-9]*/fd/*"):
        try:
            if os.readlink(fd) in targets:
                return int(fd.split("/")[2])
        except OSError:
            pass
    return None


class CpuMeter:
    """CPU used by named process groups between start() and stop(), in % of one core."""

    def __init__(self, groups: dict):
        self.groups = groups

    def start(self):
        self.t0 = time.monotonic()
        self.before = {name: tree_cpu_seconds(pids) for name, pids in self.groups.items()}
        self.machine0 = machine_cpu()
        self.children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.self0 = resource.getrusage(resource.RUSAGE_SELF)

    def stop(self) -> dict:
        wall = time.monotonic() - self.t0
        result = {name: 100 * (tree_cpu_seconds(pids) - self.before[name]) / wall
                  for name, pids in self.groups.items() if any(pids)}
        busy1, total1 = machine_cpu()
        busy0, total0 = self.machine0
        cores = os.cpu_count() or 1
        result["machine_busy"] = 100 * cores * (busy1 - busy0) / max(1, total1 - total0)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        s1 = resource.getrusage(resource.RUSAGE_SELF)
        result["wrk"] = 100 * ((c1.ru_utime + c1.ru_stime)
                               - (self.children0.ru_utime + self.children0.ru_stime)) / wall
        result["generator"] = 100 * ((s1.ru_utime + s1.ru_stime)
                                     - (self.self0.ru_utime + self.self0.ru_stime)) / wall
        # Whatever else ran on the machine meanwhile (another build, dockerd, ...): it took
        # cores from the servers, so a large value means the run was disturbed.
        accounted = sum(v for k, v in result.items() if k != "machine_busy")
        result["other"] = max(0.0, result["machine_busy"] - accounted)
        return result


# ---------------------------------------------------------------- the measurements

def signed_set(url: str, action: str) -> list:
    return [sign(url, action, body) for body in workload.request_bodies(action, url)]


def preflight(servers: dict) -> None:
    """Every request answers 200 on every server, and does the same work on each: the same
    clusters, revisions and list lengths. Otherwise the comparison is meaningless."""
    for action in workload.ACTIONS:
        summaries = {}
        for name, url in servers.items():
            results = []
            for request in signed_set(url, action):
                status, body = send_once(request)
                if status != 200:
                    raise BenchmarkFailed(f"preflight: {name} {action} {request.body!r} -> "
                                          f"HTTP {status}: {body[:500]!r}")
                results.append(workload.summarize(action, json.loads(body)))
            summaries[name] = results
        first, *others = summaries
        for other in others:
            if summaries[other] != summaries[first]:
                raise BenchmarkFailed(
                    f"preflight: {action} answers differ between {first} and {other}; the "
                    f"servers do not hold the same data.\n  {first}: {summaries[first][:6]}\n"
                    f"  {other}: {summaries[other][:6]}")
        print(f"  preflight {action}: {len(summaries[first])} distinct requests, "
              f"same answers on {', '.join(servers)}", flush=True)


def verifies_signatures(url: str) -> str:
    """Whether the server refuses a request whose signature was tampered with: ours must
    (that work is part of every measured request); moto does not check signatures at all."""
    request = sign(url, "ListClusters", {})
    headers = tuple((n, v[:-4] + ("0000" if not v.endswith("0000") else "1111"))
                    if n == "Authorization" else (n, v) for n, v in request.headers)
    status, body = send_once(type(request)(request.host, headers, request.body))
    if status == 200:
        return "no (a tampered signature is accepted)"
    error = json.loads(body).get("__type", "?") if body.startswith(b"{") else body[:80]
    return f"yes (a tampered signature gets HTTP {status} {error})"


def wait_for_quiet(pids: dict, max_wait: float) -> None:
    """Waits (at most max_wait seconds) until processes outside the benchmark stop using
    more than DISTURBED_CPU: on a shared machine a build elsewhere would otherwise take cores
    from whichever server happens to be measured."""
    deadline = time.monotonic() + max_wait
    announced = False
    while True:
        meter = CpuMeter(pids)
        meter.start()
        time.sleep(0.5)
        other = meter.stop()["other"]
        if other <= DISTURBED_CPU or time.monotonic() >= deadline:
            return
        if not announced:
            print(f"  (other processes use {other:.0f}% CPU; waiting up to {max_wait:.0f} s "
                  f"for them to finish)", flush=True)
            announced = True


def run_wrk(url: str, action: str, seconds: float, args, workdir: str, tag: str) -> dict:
    requests = signed_set(url, action)      # signed right before the run: +-5 min skew
    lua_path = os.path.join(workdir, f"requests-{tag}-{action}.lua")
    write_lua_requests(lua_path, requests)
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{int(round(seconds))}s",
               "--timeout", "5s", "-s", os.path.join(HERE, "replay.lua"), url, "--", lua_path]
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    line = next((l for l in out.stdout.splitlines() if l.startswith("BENCH_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise BenchmarkFailed(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    result = json.loads(line[len("BENCH_JSON "):])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    errors = {k: result[k] for k in ("status", "connect", "read", "write", "timeout") if result[k]}
    if result["requests"] == 0:
        # wrk reports a refused connection as zero requests and zero errors.
        errors["no responses at all"] = 0
    if errors:
        status, body = send_once(sign(url, action, workload.request_bodies(action, url)[0]))
        raise BenchmarkFailed(
            f"{tag} {action}: wrk saw errors {errors} in {result['requests']} requests "
            f"(status = HTTP status > 399). A benchmark of errors is worthless.\n"
            f"  a fresh request now answers HTTP {status}: {body[:500]!r}\n{out.stdout}")
    return result


def measure(args) -> dict:
    servers = {"ours": args.ours, "moto": args.moto}
    pids = {
        "ours": [pid_listening_on(int(args.ours.rsplit(":", 1)[1]))],
        "ours_backing": [int(p) for p in args.ours_backing_pids.split(",") if p],
        "moto": [pid_listening_on(int(args.moto.rsplit(":", 1)[1]))],
    }
    print(f"  server processes: {pids}", flush=True)
    preflight(servers)
    results = {"throughput": {}, "latency": {}, "cpu": {}, "verifies_sigv4": {}}

    # What the servers (timers, queue polling) and the rest of the machine use with no load:
    # a busy machine before the first run already says the numbers will be disturbed.
    meter = CpuMeter(pids)
    meter.start()
    time.sleep(3)
    results["idle"] = meter.stop()
    print("  no load for 3 s, cpu%: " + ", ".join(
        f"{k} {v:.0f}" for k, v in results["idle"].items() if k not in ("wrk", "generator")),
        flush=True)

    for tag, url in servers.items():
        results["verifies_sigv4"][tag] = verifies_signatures(url)
        print(f"  {tag} verifies SigV4: {results['verifies_sigv4'][tag]}", flush=True)

    for action in workload.ACTIONS:
        for tag, url in servers.items():
            run_wrk(url, action, args.warmup, args, args.workdir, tag)   # JIT, caches, pools
            for attempt in range(1 + args.retries):
                wait_for_quiet(pids, args.quiet_wait)
                meter = CpuMeter(pids)
                meter.start()
                result = run_wrk(url, action, args.duration, args, args.workdir, tag)
                cpu = meter.stop()
                if cpu["other"] <= DISTURBED_CPU or attempt == args.retries:
                    break
                # The machine is shared: a build elsewhere took cores from the server. Its
                # number says nothing about the server, so measure again.
                print(f"  wrk {tag:4} {action:24} {result['rps']:9.0f} req/s   disturbed: other "
                      f"processes used {cpu['other']:.0f}% CPU; measuring again", flush=True)
            results["throughput"][f"{tag}/{action}"] = result
            results["cpu"][f"{tag}/{action}"] = cpu
            print(f"  wrk {tag:4} {action:24} {result['rps']:9.0f} req/s   "
                  f"cpu%: server {cpu.get(tag, 0):.0f}, azurite {cpu.get('ours_backing', 0):.0f}"
                  f"{'' if tag == 'ours' else ' (idle)'}, wrk {cpu['wrk']:.0f}, "
                  f"other {cpu['other']:.0f}, "
                  f"machine {cpu['machine_busy']:.0f}/{100 * (os.cpu_count() or 1)}", flush=True)
        for tag, url in servers.items():
            wait_for_quiet(pids, args.quiet_wait)
            meter = CpuMeter(pids)
            meter.start()
            result = openloop.run(signed_set(url, action), rate=args.rate,
                                  duration=args.latency_duration, connections=16)
            result["cpu"] = meter.stop()
            results["latency"][f"{tag}/{action}"] = result
            print(f"  {args.rate:.0f}/s {tag:4} {action:24} p50 {result['p50_ms']:7.2f} ms  "
                  f"p99 {result['p99_ms']:7.2f} ms  max {result['max_ms']:7.2f} ms  "
                  f"({result['requests']} requests, {result['rate_achieved']:.1f}/s achieved)",
                  flush=True)
            if result["non_2xx"]:
                raise BenchmarkFailed(f"{tag} {action}: {result['non_2xx']} of "
                                      f"{result['requests']} requests at {args.rate}/s were not "
                                      f"2xx: {result['statuses']} {result['errors']}")
    return results


# ---------------------------------------------------------------- the report

def render(results: dict, args) -> str:
    t, l, c = results["throughput"], results["latency"], results["cpu"]
    cores = os.cpu_count() or 1
    out = ["# Read-path throughput and latency: ours vs moto_server", ""]
    out += [f"Same machine, same run, same pre-signed requests (SigV4, botocore). Seeded "
            f"identically through boto3: {len(workload.CLUSTERS)} clusters, "
            f"{len(workload.FAMILIES)} task definition families x {workload.REVISIONS} "
            f"revisions (2 containers each); in cluster {workload.WORK_CLUSTER}, "
            f"{len(workload.SERVICES)} services (desired count 0) and {workload.TASKS} tasks on one "
            f"registered container instance that no worker serves. DescribeServices asks for one "
            f"service or all ten, DescribeTasks for one task or ten.", ""]
    out += [f"- throughput: `wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s` "
            f"after a {args.warmup:g} s warm-up, closed loop, zero non-2xx and zero socket "
            f"errors (checked; the run fails otherwise)",
            f"- latency: open loop at a constant {args.rate:g} req/s for "
            f"{args.latency_duration:g} s (+1 s discarded), 16 keep-alive connections, "
            f"measured from the intended send time (no coordinated omission)", ""]
    out += ["| action | ours req/s | moto req/s | ratio | ours p50/p99 ms | moto p50/p99 ms |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for action in workload.ACTIONS:
        ours, moto = t[f"ours/{action}"]["rps"], t[f"moto/{action}"]["rps"]
        lo, lm = l[f"ours/{action}"], l[f"moto/{action}"]
        out.append(f"| {action} | {ours:,.0f} | {moto:,.0f} | {ours / moto:.1f}x | "
                   f"{lo['p50_ms']:.2f} / {lo['p99_ms']:.2f} | "
                   f"{lm['p50_ms']:.2f} / {lm['p99_ms']:.2f} |")
    out += ["", f"Where the CPU went during the wrk runs (% of one core; the machine has "
            f"{cores * 100}%):", "",
            "| run | ours | azurite | moto | wrk | other processes | machine busy "
            "| avg response bytes |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key in t:
        cpu, r = c[key], t[key]
        out.append(f"| {key} | {cpu.get('ours', float('nan')):.0f} | "
                   f"{cpu.get('ours_backing', float('nan')):.0f} | "
                   f"{cpu.get('moto', float('nan')):.0f} | {cpu['wrk']:.0f} | "
                   f"{cpu['other']:.0f} | {cpu['machine_busy']:.0f} | "
                   f"{r['bytes'] / max(1, r['requests']):.0f} |")
    idle = results["idle"]
    out += ["", f"With no load for 3 s after seeding and preflight, before the runs: ours {idle.get('ours', 0):.0f}%, azurite "
            f"{idle.get('ours_backing', 0):.0f}%, moto {idle.get('moto', 0):.0f}%, other "
            f"processes {idle['other']:.0f}%."]
    out += ["", "Machine:", ""]
    out += [f"- {k}: {v}" for k, v in machine_info([
        ("moto", command_output([sys.executable, "-c", "import moto; print(moto.__version__)"])),
        ("wrk", command_output(["wrk", "--version"]).split(" [")[0]),
    ])]
    out += ["", "Caveats:", "",
            f"- wrk and the servers share the same {cores} cores; wrk's own CPU is in the "
            "table above. A server that leaves CPU idle while wrk keeps "
            f"{args.connections} requests in flight is limited by itself (moto: one Python "
            "process under the GIL), not by wrk.",
            "- Our reads go through Azure Table Storage, which is Azurite (single-threaded "
            "Node.js) on this machine; its CPU is the `azurite` column. Real Azure Storage "
            "would not share the cores with the control plane.",
            f"- Verifies SigV4 signatures: ours {results['verifies_sigv4']['ours']}; moto "
            f"{results['verifies_sigv4']['moto']}.",
            "- moto_server (Werkzeug) answers `Connection: close`, so every moto request pays "
            "a TCP connect; that is how moto serves, and both generators reconnect as any "
            "client would.",
            "- Both servers stay up for the whole run; the idle one (and ours' timers) costs a "
            "little CPU during the other's runs.",
            "", "Reproduce: `bash bench/read-throughput.sh` (see bench/README.md)."]
    return "\n".join(out) + "\n"


def bound_warnings(results: dict, args) -> list:
    warnings = []
    for key, cpu in results["cpu"].items():
        tag = key.split("/")[0]
        server = cpu.get(tag, 0) + (cpu.get("ours_backing", 0) if tag == "ours" else 0)
        if cpu["wrk"] >= 90 * args.threads or cpu["wrk"] > server:
            warnings.append(f"{key}: wrk used {cpu['wrk']:.0f}% CPU vs the server's "
                            f"{server:.0f}%: this run may be client-bound")
    for kind in ("cpu", "latency"):
        for key, value in results[kind].items():
            cpu = value if kind == "cpu" else value["cpu"]
            if cpu["other"] > DISTURBED_CPU:
                warnings.append(f"{key} ({'wrk' if kind == 'cpu' else 'latency'}): other "
                                f"processes used {cpu['other']:.0f}% CPU during the run; "
                                f"its numbers are disturbed, run again on a quiet machine")
    for key, r in results["latency"].items():
        if r["rate_achieved"] < 0.95 * r["rate_target"]:
            warnings.append(f"{key}: the generator reached only {r['rate_achieved']:.1f} of "
                            f"{r['rate_target']:.0f} req/s")
    return warnings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("wait")
    p.add_argument("url")
    p.add_argument("--timeout", type=float, default=120)
    p = sub.add_parser("wait-port")
    p.add_argument("ports", type=int, nargs="+")
    p.add_argument("--pid", type=int, default=0)
    p.add_argument("--timeout", type=float, default=30)
    p = sub.add_parser("seed")
    p.add_argument("url")
    p = sub.add_parser("run")
    p.add_argument("--ours", required=True)
    p.add_argument("--moto", required=True)
    p.add_argument("--ours-backing-pids", default="", help="Azurite's pid(s), comma-separated")
    p.add_argument("--workdir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--json")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--rate", type=float, default=100)
    p.add_argument("--latency-duration", type=float, default=20)
    p.add_argument("--retries", type=int, default=1,
                   help="re-run a wrk measurement that other processes disturbed")
    p.add_argument("--quiet-wait", type=float, default=10,
                   help="seconds to wait before a measurement for other processes to go quiet")
    args = parser.parse_args()

    try:
        if args.command == "wait-port":
            wait_ports(args.ports, args.pid, args.timeout)
        elif args.command == "wait":
            wait_ready(args.url, args.timeout)
        elif args.command == "seed":
            workload.seed(args.url)
        else:
            results = measure(args)
            report = render(results, args)
            warnings = bound_warnings(results, args)
            if warnings:
                report += "\nWarnings from this run:\n\n" + "".join(f"- {w}\n" for w in warnings)
            write_report(args.out, report, args.json, results)
            if warnings:
                loud("WARNINGS (also in the report):\n!! " + "\n!! ".join(warnings))
    except BenchmarkFailed as e:
        loud("BENCHMARK FAILED")
        print(str(e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
