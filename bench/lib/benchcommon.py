"""What the benchmark drivers in bench/lib share (the scripts' shell side is common.sh): the failure
they report, a signed keep-alive API client, waiting for a worker, the machine's description, the
local times of the .NET console logs, a median, and writing a report with its raw numbers.
"""

import datetime
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from urllib.parse import urlsplit

from signing import TARGET_PREFIX, sign

HERE = os.path.dirname(os.path.abspath(__file__))


class BenchmarkFailed(Exception):
    pass


def loud(message: str) -> None:
    bar = "!" * 78
    print(f"\n{bar}\n!! {message}\n{bar}\n", file=sys.stderr, flush=True)


class Client:
    """One keep-alive connection to an AWS JSON 1.1 endpoint; each request signed with botocore's
    SigV4Auth right before it is sent (about 0.2 ms), so the client's own cost is small and the same
    for every sample. A request that fails on a kept connection goes once more on a new one."""

    def __init__(self, url: str, target_prefix: str = TARGET_PREFIX, service: str = "ecs"):
        self.url, self.prefix, self.service = url, target_prefix, service
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.conn = None

    def send(self, action: str, params: dict, timeout: float) -> tuple:
        """(HTTP status, body) of one signed request."""
        request = sign(self.url, action, params, target_prefix=self.prefix, service=self.service)
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
                self.conn.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
                for name, value in request.headers:
                    self.conn.putheader(name, value)
                self.conn.putheader("Content-Length", str(len(request.body)))
                self.conn.endheaders(request.body)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise


def wait_worker_registered(ecs, cluster: str, timeout: float) -> None:
    """Until a connected ACTIVE container instance is in the cluster (ecs: anything with call())."""
    deadline = time.monotonic() + timeout
    while True:
        arns = ecs.call("ListContainerInstances", {"cluster": cluster}).get("containerInstanceArns", [])
        if arns:
            d = ecs.call("DescribeContainerInstances", {"cluster": cluster, "containerInstances": arns})
            if any(i["agentConnected"] and i["status"] == "ACTIVE" for i in d["containerInstances"]):
                return
        if time.monotonic() > deadline:
            raise BenchmarkFailed(f"the worker did not register within {timeout:g} s")
        time.sleep(0.5)


def median(values):
    return statistics.median(values) if values else float("nan")


def command_output(command: list) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True,
                              timeout=20).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "n/a"


def machine_info(tools: list) -> list:
    """(name, value) rows: date, CPU, memory, kernel, dotnet, then `tools`, python and the commit."""
    model = "n/a"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    repo = os.path.dirname(os.path.dirname(HERE))
    head = command_output(["git", "-C", repo, "rev-parse", "--short", "HEAD"])
    dirty = command_output(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"])
    return [
        ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("nproc", str(os.cpu_count())),
        ("cpu", model),
        ("memory", f"{mem_gb:.1f} GiB"),
        ("kernel", platform.release()),
        ("dotnet", command_output(["dotnet", "--version"])),
        *tools,
        ("python", platform.python_version()),
        ("commit", head + (" (plus uncommitted changes)" if dirty not in ("", "n/a") else "")),
    ]


def local_epoch(h: int, m: int, s: int, ms: int, near: float) -> float:
    """Epoch of a local time of day (SimpleConsole's HH:mm:ss.fff), on the day that puts it nearest `near`."""
    tz = datetime.datetime.now().astimezone().tzinfo
    base = datetime.datetime.fromtimestamp(near, tz)
    best = None
    for days in (-1, 0, 1):
        d = (base + datetime.timedelta(days=days)).date()
        cand = datetime.datetime(d.year, d.month, d.day, h, m, s, ms * 1000, tzinfo=tz).timestamp()
        if best is None or abs(cand - near) < abs(best - near):
            best = cand
    return best


def setup_or_run(args, setup, bench, render) -> int:
    """A driver's `setup` or `run` command: run writes render(results, args) and the results; the
    exit code, 1 with the reason on stderr when the benchmark failed."""
    try:
        if args.command == "setup":
            setup(args)
            return 0
        results = bench(args).run()
        write_report(args.out, render(results, args), args.json, results)
        return 0
    except BenchmarkFailed as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        return 1


def write_report(out: str, text: str, json_path: str = None, results=None, indent: int = 2) -> None:
    """The Markdown report to `out` (its directory made), the raw numbers to `json_path`, then the
    report on stdout."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(results, f, indent=indent, default=str)
    print("\n" + text)
