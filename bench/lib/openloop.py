"""Open-loop, constant-rate load generator (what wrk2 does; wrk2 is not packaged here).

Request i is due at t0 + i/rate whether or not earlier requests have finished, and its
latency is measured from that intended send time, not from when a connection was free. A
server that stalls therefore shows the stall in every request that queued behind it instead of
hiding it (coordinated omission). At 100 req/s Python is nowhere near its limit.
"""

import http.client
import queue
import threading
import time


def percentile(sorted_values: list, p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(round(p / 100.0 * len(sorted_values) + 0.5)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def run(requests: list, rate: float, duration: float, warmup: float = 1.0,
        connections: int = 16, timeout: float = 10.0) -> dict:
    """Sends `requests` (SignedRequest, round-robin, all for one host) at `rate` req/s for
    warmup + duration seconds; returns latency statistics over the measured part."""
    host, port = requests[0].host.rsplit(":", 1)
    due = queue.Queue()
    lock = threading.Lock()
    samples = []        # (intended, sent, done, status)
    errors = []

    def worker():
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        while True:
            item = due.get()
            if item is None:
                break
            intended, i = item
            request = requests[i % len(requests)]
            sent = time.perf_counter()
            try:
                # Exactly the signed headers, as wrk sends them: no implicit Host or
                # Accept-Encoding from http.client.
                conn.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
                for name, value in request.headers:
                    conn.putheader(name, value)
                conn.putheader("Content-Length", str(len(request.body)))
                conn.endheaders(request.body)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as e:
                conn.close()    # reconnects on the next request
                status = None
                with lock:
                    errors.append(repr(e))
            done = time.perf_counter()
            with lock:
                samples.append((intended, sent, done, status))
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()

    total = int((warmup + duration) * rate)
    t0 = time.perf_counter() + 0.05
    for i in range(total):
        intended = t0 + i / rate
        delay = intended - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        due.put((intended, i))
    for _ in threads:
        due.put(None)
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0

    measured = [s for s in samples if s[0] >= t0 + warmup]
    latencies = sorted(done - intended for intended, _, done, _ in measured)
    start_delay = sorted(sent - intended for intended, sent, _, _ in measured)
    non_2xx = sum(1 for *_, status in measured if status is None or not 200 <= status < 300)
    statuses = {}
    for *_, status in measured:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "requests": len(measured),
        "rate_target": rate,
        "rate_achieved": len(samples) / elapsed if elapsed > 0 else 0.0,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p90_ms": percentile(latencies, 90) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": (latencies[-1] * 1000) if latencies else float("nan"),
        # Intended send time to actual send: the generator's own lag plus waiting for a free
        # connection. Large values with a fast server would mean the generator is the limit.
        "start_delay_p99_ms": percentile(start_delay, 99) * 1000,
        "non_2xx": non_2xx,
        "statuses": statuses,
        "errors": errors[:5],
    }
