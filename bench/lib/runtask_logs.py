"""Reading what the processes of the RunTask benchmark wrote: Azurite's --debug log (one record
per storage request) and the single-line console logs of the control plane and the worker.

Azurite --debug writes ~30 lines per request, all carrying the request id. Three of them are
enough to describe a request completely:

    <ISO time>Z <request id> info: QueueStorageContextMiddleware: RequestMethod=GET RequestURL=... RequestHeaders:{...}
    <ISO time>Z <request id> info: DispatchMiddleware: Operation=Messages_Dequeue
    <ISO time>Z <request id> info: EndMiddleware: End response. TotalTimeInMS=2 StatusCode=200 ...

"StorageContextMiddleware: RequestMethod=" occurs exactly once per incoming request (Table or
Queue), so it is the marker that counts transactions. A table batch ($batch) is one request, as
Azure bills it.

Which process sent a request: the worker is started with AZURE_TELEMETRY_DISABLED=true, so its
Azure SDK sends no User-Agent; the control plane's requests carry "azsdk-net-...". Nothing else
talks to this Azurite.
"""

import datetime
import os
import re
from dataclasses import dataclass
from typing import Optional
from urllib.parse import unquote, urlsplit

from benchcommon import local_epoch

REQUEST_MARK = "StorageContextMiddleware: RequestMethod="
OPERATION_MARK = "DispatchMiddleware: Operation="
END_MARK = "EndMiddleware: End response."

CONTROL_PLANE = "control plane"
WORKER = "worker"


@dataclass
class StorageRequest:
    t: float                  # epoch seconds (Azurite's clock = this machine's)
    rid: str
    service: str              # "table" | "queue"
    method: str
    resource: str             # table or queue name ("Tables" for table create, "$batch", ...)
    path: str                 # URL path after the account, query dropped
    process: str              # CONTROL_PLANE | WORKER
    operation: str = "?"
    status: int = 0
    server_ms: int = 0

    @property
    def resource_kind(self) -> str:
        if self.service == "queue":
            if self.resource.startswith("ci-"):
                return "queue ci-<instance> (worker commands)"
            return f"queue {self.resource}"
        return f"table {self.resource}"


_END_RE = re.compile(r"TotalTimeInMS=(\d+) StatusCode=(\d+)")
_UA_RE = re.compile(r'"user-agent":"([^"]*)"')


def _iso_epoch(stamp: str) -> float:
    # "2026-11-25T04:56:20.638Z"
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _resource(service: str, path: str) -> str:
    # path: /devstoreaccount1/<rest>
    parts = path.split("/", 2)
    rest = parts[2] if len(parts) > 2 else ""
    if service == "queue":
        return rest.split("/", 1)[0] or "(account)"
    m = re.match(r"[^(/?]+", rest)
    return m.group(0) if m else "(account)"


def parse_azurite(path: str, since: float = 0.0, until: float = float("inf")) -> list:
    """Every storage request whose request line falls in [since, until], in log order."""
    by_id = {}
    out = []
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for line in f:
            if REQUEST_MARK in line:
                stamp, rid, _ = line.split(" ", 2)
                t = _iso_epoch(stamp)
                if t < since or t > until:
                    continue
                service = "table" if "TableStorageContextMiddleware" in line else "queue"
                after = line.split(REQUEST_MARK, 1)[1]
                method, rest = after.split(" ", 1)
                url = rest.split("RequestURL=", 1)[1].split(" RequestHeaders:", 1)[0]
                upath = unquote(urlsplit(url).path)
                headers = rest.split(" RequestHeaders:", 1)[1] if " RequestHeaders:" in rest else ""
                ua = _UA_RE.search(headers)
                process = CONTROL_PLANE if ua and ua.group(1).startswith("azsdk-") else WORKER
                r = StorageRequest(t, rid, service, method, _resource(service, upath),
                                   upath, process)
                by_id[rid] = r
                out.append(r)
            elif OPERATION_MARK in line:
                rid = line.split(" ", 2)[1]
                r = by_id.get(rid)
                if r is not None:
                    r.operation = line.split(OPERATION_MARK, 1)[1].strip()
            elif END_MARK in line:
                rid = line.split(" ", 2)[1]
                r = by_id.pop(rid, None)
                if r is not None:
                    m = _END_RE.search(line)
                    if m:
                        r.server_ms, r.status = int(m.group(1)), int(m.group(2))
    return out


def in_window(requests: list, start: float, end: float) -> list:
    return [r for r in requests if start <= r.t <= end]


def breakdown(requests: list) -> list:
    """[(process, resource, operation incl. notable status, method, count)], largest first."""
    counts = {}
    for r in requests:
        op = r.operation
        if r.status >= 400:
            op += f" ({r.status})"
        key = (r.process, r.resource_kind, op, r.method)
        counts[key] = counts.get(key, 0) + 1
    return sorted(((*k, v) for k, v in counts.items()), key=lambda x: (x[0], -x[4], x[1], x[2]))


# ---------------------------------------------------------------- .NET console logs

# "04:56:20.721 info: Serverless.Core.Api.ApiEndpoint[0] RunTask 200 90.9 ms <request id>"
_NET_RE = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) (\w+): ([^\[\s]+)\[\d+\] ?(.*)$")


@dataclass
class LogLine:
    t: float
    level: str
    category: str
    message: str


class LogTail:
    """Follows a growing .NET console log (SimpleConsole, SingleLine, timestamps HH:mm:ss.fff)."""

    def __init__(self, path: str):
        self.path = path
        self.offset = 0
        self._partial = ""
        self.lines = []

    def poll(self) -> list:
        """New complete lines since the last call (also kept in self.lines)."""
        try:
            with open(self.path, "r", encoding="utf-8", errors="replace") as f:
                f.seek(self.offset)
                data = f.read()
                self.offset = f.tell()
        except OSError:
            return []
        data = self._partial + data
        *complete, self._partial = data.split("\n")
        new = []
        now = datetime.datetime.now().timestamp()
        for raw in complete:
            m = _NET_RE.match(raw)
            if not m:
                continue
            h, mi, s, ms, level, category, message = m.groups()
            line = LogLine(local_epoch(int(h), int(mi), int(s), int(ms), now), level, category, message)
            new.append(line)
        self.lines.extend(new)
        return new


def task_applications(lines: list) -> list:
    """(t, taskArn, lastStatus, reportedStatus) from the control plane's TaskStateApplier lines."""
    out = []
    for line in lines:
        if line.category != "Serverless.Core.Tasks.TaskStateApplier":
            continue
        m = re.match(r"(\S+) is (\w+) \(desired \w+\), reported (\w+)", line.message)
        if m:
            out.append((line.t, m.group(1), m.group(2), m.group(3)))
    return out


def api_calls(lines: list) -> list:
    """(t, action, status, elapsed ms) from the control plane's ApiEndpoint lines."""
    out = []
    for line in lines:
        if line.category != "Serverless.Core.Api.ApiEndpoint":
            continue
        m = re.match(r"(\w+) (\d{3}) ([\d.]+) ms", line.message)
        if m:
            out.append((line.t, m.group(1), int(m.group(2)), float(m.group(3))))
    return out


def function_executions(lines: list) -> list:
    """(t, function, trigger, outcome) per queue- or timer-triggered invocation, from the
    standalone host's own Debug lines (category Function.<name>, enabled for this benchmark):
    QueueTriggerListener's "Function X completed message ..." / "... failed on message ..." and
    TimerTriggerScheduler's "Timer function X completed ..." / "... failed: ...". HTTP
    invocations are counted from the API's per-request line (api_calls)."""
    out = []
    for line in lines:
        if not line.category.startswith("Function."):
            continue
        name = line.category[len("Function."):]
        msg = line.message
        if msg.startswith(f"Function {name} completed message"):
            out.append((line.t, name, "queue", "completed"))
        elif msg.startswith(f"Function {name} failed on message"):
            out.append((line.t, name, "queue", "failed"))
        elif msg.startswith(f"Timer function {name} completed"):
            out.append((line.t, name, "timer", "completed"))
        elif msg.startswith(f"Timer function {name} failed"):
            out.append((line.t, name, "timer", "failed"))
    return out


def hosted_functions(lines: list) -> list:
    """What the control plane's standalone host runs, from its start-up lines."""
    out = []
    for line in lines:
        m = (re.match(r"HTTP function (\w+): (.*)", line.message)
             or re.match(r"Timer function (\w+): schedule (.*), run on startup", line.message)
             or re.match(r"Queue function (\w+) listening to (\S+) .*max polling interval ([\d:.]+)", line.message))
        if m:
            kind = "HTTP" if line.message.startswith("HTTP") else (
                "timer" if line.message.startswith("Timer") else "queue")
            out.append((m.group(1), kind, " ".join(m.groups()[1:])))
    return out


def heartbeats(lines: list) -> list:
    """(t, running, pending) from the worker's Heartbeat debug lines."""
    out = []
    for line in lines:
        if line.category != "Serverless.Worker.Registration.Heartbeat":
            continue
        m = re.search(r": (\d+) running, (\d+) pending", line.message)
        if m:
            out.append((line.t, int(m.group(1)), int(m.group(2))))
    return out


def worker_task_lines(lines: list) -> dict:
    """taskArn -> {"starting": t, "running": t, "reported_running": t} from the worker's log."""
    out = {}
    for line in lines:
        msg = line.message
        if line.category == "Serverless.Worker.Docker.TaskRunner":
            m = re.match(r"Starting (\S+) \(", msg)
            if m:
                out.setdefault(m.group(1), {}).setdefault("starting", line.t)
                continue
            m = re.match(r"(\S+) is RUNNING$", msg)
            if m:
                out.setdefault(m.group(1), {}).setdefault("running", line.t)
        elif line.category == "Serverless.Worker.Reporting.TaskStateReporter":
            m = re.match(r"Reported (\S+) (\w+) ", msg)
            if m:
                out.setdefault(m.group(1), {}).setdefault(f"reported_{m.group(2).lower()}", line.t)
    return out


def file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
