"""Azurite for the service-scale benchmark: its --debug log read back as one record per storage
request, and a tiny REST client (SharedKeyLite) to write Table rows and Queue messages directly.

Azurite --debug writes ~30 lines per request, every one carrying the request's id. The line

    <ISO time>Z <request id> info: TableStorageContextMiddleware: RequestMethod=GET RequestURL=... RequestHeaders:{...}

(QueueStorageContextMiddleware for queues) occurs exactly once per incoming request, so it is the
marker that counts transactions; "DispatchMiddleware: Operation=<name>" names the operation and
"EndMiddleware: End response. TotalTimeInMS=<n> StatusCode=<code>" closes it. A table batch
($batch) is one request, as Azure bills it.

Who sent a request: the control plane's Azure SDK sends "User-Agent: azsdk-net-..."; the worker runs
with AZURE_TELEMETRY_DISABLED=true, so it sends none; this module's own requests carry
"servicescale-bench". Nothing else talks to the benchmark's Azurite.
"""

import base64
import datetime
import email.utils
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

import requests

ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
BENCH_AGENT = "servicescale-bench"

CONTROL_PLANE = "control plane"
WORKER = "worker"
BENCH = "benchmark"

REQUEST_MARK = "StorageContextMiddleware: RequestMethod="
OPERATION_MARK = "DispatchMiddleware: Operation="
END_MARK = "EndMiddleware: End response."
BODY_MARK = "Serializer: Raw response body string is "      # queue responses
QUERY_BODY_MARK = "queryEntities() Raw response string is "    # table query responses (JSON in a JSON string)


# ---------------------------------------------------------------- the debug log

@dataclass
class StorageRequest:
    t: float          # epoch seconds (Azurite's clock is this machine's)
    rid: str
    service: str      # "table" | "queue"
    method: str
    resource: str     # table or queue name
    process: str      # CONTROL_PLANE | WORKER | BENCH
    operation: str = "?"
    status: int = 0
    query: str = ""   # a table query's $filter
    messages: int = -1  # messages a dequeue returned (-1: not a dequeue, or unknown)
    rows: int = -1      # entities a table query returned (-1: unknown)
    delay: int = 0      # a message's visibilitytimeout (s): invisible for that long after Enqueue
    server_ms: int = 0  # TotalTimeInMS: the request line's time plus this is when it was answered

    @property
    def kind(self) -> str:
        """Table or queue, with per-instance command queues folded into one name."""
        if self.service == "queue":
            name = "ci-<instance> (worker commands)" if self.resource.startswith("ci-") else self.resource
            return f"queue {name}"
        return f"table {self.resource}"


_UA_RE = re.compile(r'"user-agent":"([^"]*)"')
_END_RE = re.compile(r"TotalTimeInMS=(\d+) StatusCode=(\d+)")


def _epoch(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _resource(service: str, path: str) -> str:
    rest = path.split("/", 2)[2] if path.count("/") >= 2 else ""
    if service == "queue":
        return rest.split("/", 1)[0] or "(account)"
    m = re.match(r"[^(/?]+", rest)
    return m.group(0) if m else "(account)"


class AzuriteLog:
    """Reads the debug log incrementally; keeps every request seen so far."""

    def __init__(self, path: str):
        self.path = path
        self.offset = 0
        self.partial = ""
        self.requests = []
        self._open = {}

    def poll(self) -> None:
        try:
            with open(self.path, "r", encoding="utf-8", errors="replace") as f:
                f.seek(self.offset)
                data = f.read()
                self.offset = f.tell()
        except OSError:
            return
        data = self.partial + data
        *lines, self.partial = data.split("\n")
        for line in lines:
            if REQUEST_MARK in line:
                stamp, rid, _ = line.split(" ", 2)
                service = "table" if "TableStorageContextMiddleware" in line else "queue"
                method, rest = line.split(REQUEST_MARK, 1)[1].split(" ", 1)
                url = rest.split("RequestURL=", 1)[1].split(" RequestHeaders:", 1)[0]
                headers = rest.split(" RequestHeaders:", 1)[1] if " RequestHeaders:" in rest else ""
                ua = _UA_RE.search(headers)
                agent = ua.group(1) if ua else ""
                process = (CONTROL_PLANE if agent.startswith("azsdk-") else
                           BENCH if agent.startswith(BENCH_AGENT) else WORKER)
                parts = urlsplit(url)
                r = StorageRequest(_epoch(stamp), rid, service, method,
                                   _resource(service, unquote(parts.path)), process)
                if service == "table":
                    r.query = parse_qs(parts.query).get("$filter", [""])[0]
                else:
                    r.delay = int(parse_qs(parts.query).get("visibilitytimeout", ["0"])[0] or 0)
                self._open[rid] = r
                self.requests.append(r)
            elif OPERATION_MARK in line:
                r = self._open.get(line.split(" ", 2)[1])
                if r is not None:
                    r.operation = line.split(OPERATION_MARK, 1)[1].strip()
            elif QUERY_BODY_MARK in line:
                r = self._open.get(line.split(" ", 2)[1])
                if r is not None:
                    r.rows = line.split(QUERY_BODY_MARK, 1)[1].count('PartitionKey\\":')
            elif BODY_MARK in line:
                r = self._open.get(line.split(" ", 2)[1])
                if r is not None:
                    body = line.split(BODY_MARK, 1)[1]
                    if r.service == "queue" and body.startswith("<?xml") and "QueueMessagesList" in body:
                        r.messages = body.count("<QueueMessage>")
            elif END_MARK in line:
                r = self._open.pop(line.split(" ", 2)[1], None)
                if r is not None:
                    m = _END_RE.search(line)
                    if m:
                        r.status = int(m.group(2))
                        r.server_ms = int(m.group(1))

    def window(self, start: float, end: float) -> list:
        self.poll()
        return [r for r in self.requests if start <= r.t <= end]


DELAYED = 60   # an Enqueue with a visibility timeout at least this long is deferred work


def breakdown(requests: list) -> list:
    """[(process, table/queue, operation, method, count)], by process then count."""
    counts = {}
    for r in requests:
        op = r.operation + (f" ({r.status})" if r.status >= 400 else "")
        if r.operation == "Messages_Enqueue" and r.delay >= DELAYED:
            op += f" delayed >= {DELAYED} s"
        key = (r.process, r.kind, op, r.method)
        counts[key] = counts.get(key, 0) + 1
    return sorted(((*k, v) for k, v in counts.items()), key=lambda x: (x[0], -x[4], x[1], x[2]))


def by_resource(requests: list) -> dict:
    """{(process, table/queue, method): count}."""
    out = {}
    for r in requests:
        key = (r.process, r.kind, r.method)
        out[key] = out.get(key, 0) + 1
    return out


# ---------------------------------------------------------------- REST with SharedKeyLite

def _sign(string_to_sign: str) -> str:
    digest = hmac.new(base64.b64decode(KEY), string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class Storage:
    """Table and Queue REST against Azurite's path-style endpoints
    (http://127.0.0.1:<port>/devstoreaccount1/...), authorized with SharedKeyLite.

    Table: StringToSign = x-ms-date + "\\n" + CanonicalizedResource.
    Queue: StringToSign = VERB\\nContent-MD5\\nContent-Type\\nDate\\n + x-ms-* headers + CanonicalizedResource.
    CanonicalizedResource is "/" + account + the URL path, which with path-style URLs names the
    account twice: /devstoreaccount1/devstoreaccount1/Tasks.
    """

    def __init__(self, table_port: int, queue_port: int):
        self.table = f"http://127.0.0.1:{table_port}/{ACCOUNT}"
        self.queue = f"http://127.0.0.1:{queue_port}/{ACCOUNT}"
        self.http = requests.Session()

    @staticmethod
    def _date() -> str:
        return email.utils.formatdate(usegmt=True)

    def _table_headers(self, path: str) -> dict:
        date = self._date()
        return {
            "x-ms-date": date,
            "x-ms-version": "2019-02-02",
            "Authorization": f"SharedKeyLite {ACCOUNT}:{_sign(date + chr(10) + f'/{ACCOUNT}/{ACCOUNT}/{path}')}",
            "Accept": "application/json;odata=nometadata",
            "Content-Type": "application/json",
            "DataServiceVersion": "3.0;NetFx",
            "MaxDataServiceVersion": "3.0;NetFx",
            "User-Agent": BENCH_AGENT,
        }

    def insert_entity(self, table: str, entity: dict) -> None:
        body = json.dumps(entity, separators=(",", ":"))
        headers = self._table_headers(table)
        headers["Prefer"] = "return-no-content"
        r = self.http.post(f"{self.table}/{table}", data=body.encode("utf-8"), headers=headers, timeout=30)
        if r.status_code not in (201, 204):
            raise RuntimeError(f"insert into {table}: HTTP {r.status_code} {r.text[:400]}")

    def query(self, table: str, filter_: str, select: str = "") -> list:
        params = {"$filter": filter_}
        if select:
            params["$select"] = select
        rows, token = [], {}
        while True:
            r = self.http.get(f"{self.table}/{table}()", params={**params, **token},
                              headers=self._table_headers(f"{table}()"), timeout=30)
            if r.status_code != 200:
                raise RuntimeError(f"query {table}: HTTP {r.status_code} {r.text[:400]}")
            rows += r.json().get("value", [])
            pk = r.headers.get("x-ms-continuation-NextPartitionKey")
            if not pk:
                return rows
            token = {"NextPartitionKey": pk, "NextRowKey": r.headers.get("x-ms-continuation-NextRowKey", "")}

    def query_full(self, table: str, filter_: str) -> list:
        """Entities with their OData type annotations (fullmetadata), ready to be written back."""
        headers = self._table_headers(f"{table}()")
        headers["Accept"] = "application/json;odata=fullmetadata"
        r = self.http.get(f"{self.table}/{table}()", params={"$filter": filter_}, headers=headers, timeout=30)
        if r.status_code != 200:
            raise RuntimeError(f"query {table}: HTTP {r.status_code} {r.text[:400]}")
        return r.json().get("value", [])

    def put_message(self, queue: str, text: str) -> None:
        from xml.sax.saxutils import escape
        body = f"<QueueMessage><MessageText>{escape(text)}</MessageText></QueueMessage>".encode("utf-8")
        date = self._date()
        content_type = "application/xml"
        canonical_headers = f"x-ms-date:{date}\nx-ms-version:2019-02-02\n"
        to_sign = f"POST\n\n{content_type}\n\n{canonical_headers}/{ACCOUNT}/{ACCOUNT}/{queue}/messages"
        headers = {
            "x-ms-date": date,
            "x-ms-version": "2019-02-02",
            "Content-Type": content_type,
            "Authorization": f"SharedKeyLite {ACCOUNT}:{_sign(to_sign)}",
            "User-Agent": BENCH_AGENT,
        }
        r = self.http.post(f"{self.queue}/{queue}/messages", data=body, headers=headers, timeout=30)
        if r.status_code != 201:
            raise RuntimeError(f"put message on {queue}: HTTP {r.status_code} {r.text[:400]}")


def wait_log_quiet(log: AzuriteLog, seconds: float) -> None:
    """Until the log has been read to its end (a request's lines are all written by then)."""
    time.sleep(seconds)
    log.poll()
