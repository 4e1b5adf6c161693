"""The Markdown report of the RunTask benchmark (runtask.py collects, this renders)."""

import os

from benchcommon import command_output, machine_info

HERE = os.path.dirname(os.path.abspath(__file__))

P50_BAR, P95_BAR = 1.1, 1.3   # issue 17
DISTURBED_CPU = 50
STORAGE_BAR, EXECUTIONS_BAR = 15, 4

SEGMENTS = [
    # (from mark, to mark, label, what it is)
    (None, "runtask_answered", "RunTask call",
     "API: definition read beside the clientToken claim (cluster, instances: shared views), reserve beside insert task, send Start beside recording the answer"),
    ("runtask_answered", "worker_received", "Start reaches the worker",
     "express: sealed in the wake datagram, sent once the Start is queued (may arrive before the answer); otherwise the worker's poll of `ci-<instance>`"),
    ("worker_received", "container_created", "worker to Docker's `create` event",
     "plan (task definition, cached), the `create` request beside the task-row check, the engine's create"),
    ("container_created", "container_started", "`create` event to `start` event",
     "the `start` request and the engine's start (the raw side's same two events: the table above)"),
    ("container_started", "worker_reported", "worker reports RUNNING",
     "the report goes express in a wake datagram, then to `task-events` (an inspect first only for a container with port mappings)"),
    ("worker_reported", "cp_applied", "report reaches the control plane, applied",
     "the datagram (or the queue trigger's poll, when it was not taken), then TaskStateApplier: conditional replace on the row as this control plane last wrote it"),
    ("cp_applied", "running_seen", "client sees it",
     "DescribeTasks every 20 ms (persistent signed connection)"),
]


def pct(values: list, p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    v = sorted(x for x in values if x is not None)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def diff(a, b):
    return b - a if a is not None and b is not None else None


def mean(values: list) -> float:
    v = [x for x in values if x is not None]
    return sum(v) / len(v) if v else float("nan")


def stats_row(label: str, values: list) -> str:
    v = [x for x in values if x is not None]
    return (f"| {label} | {pct(v, 50):,.0f} | {pct(v, 95):,.0f} | {mean(v):,.0f} | "
            f"{min(v):,.0f} | {max(v):,.0f} | {len(v)} |")


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def breakdown_table(rows: list, tasks: int, per_label: str = "per task") -> list:
    out = [f"| process | table / queue | operation (Azurite's name) | HTTP | calls | {per_label} |",
           "| --- | --- | --- | --- | ---: | ---: |"]
    for process, resource, op, method, count in rows:
        out.append(f"| {process} | {resource} | {op} | {method} | {count} | {count / tasks:.2f} |")
    return out


def render(results: dict, args) -> str:
    lat = results["latency"]
    ours, raw = lat["ours"], lat["raw"]
    o_ms = [o["ms"] for o in ours]
    r_ms = [r["ms"] for r in raw]
    out = ["# RunTask: time to RUNNING and cost per task, ours vs raw `docker run -d`", ""]
    out += [f"One run, one machine, one Docker engine: Azurite (in memory, `--debug`), our control "
            f"plane standalone and one worker (defaults, except that its storage requests carry no "
            f"User-Agent so they can be told apart). Task definition: `{IMAGE_DESC}`, memory 32 MiB.",
            ""]

    # ---- latency
    out += ["## 1. Latency", "",
            f"{len(ours)} of our tasks launched one after another, each measured alone: RunTask "
            f"(signed, with a `clientToken` as boto3 sends) over a keep-alive connection, then "
            f"DescribeTasks every {args.poll_interval * 1000:.0f} ms until `lastStatus == RUNNING`. "
            f"Each is paired with one raw `docker run -d {RAW_DESC}` on the same "
            f"engine, timed from the command's start until it returns, 0.5 s after or before ours "
            f"({'alternating: even pairs ours first, odd pairs raw first' if getattr(args, 'order', 'ours-first') == 'alternate' else 'ours first in every pair'}), "
            f"{'while the client polls DescribeTasks (the last task of ours) every ' + format(args.poll_interval * 1000, '.0f') + ' ms as it does during ours, so that the polling, which shares the engine cores here, weighs on both sides' if getattr(args, 'raw_observer', 'off') == 'on' else 'with nothing else of the benchmark running'}; "
            f"then the raw container is removed, and the next RunTask is sent {args.gap:g} s + a random 0-{args.gap_jitter:g} s "
            f"after the previous one was seen RUNNING: each launch finds the cluster idle (both of "
            f"our queue pollers back at their longest interval, 2 s) at a random point of the "
            f"pollers' cycles, as a user's RunTask would. {args.warmup} unmeasured warm-up pairs first. Our tasks keep "
            f"running (up to 4 minutes, then they are stopped between samples, unmeasured), so both "
            f"sides see the same containers on the engine.",
            "",
            "| ms | p50 | p95 | mean | min | max | n |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            stats_row("**ours**: RunTask sent → DescribeTasks shows RUNNING", o_ms),
            stats_row("**raw**: `docker run -d` start → returns", r_ms),
            stats_row("raw: → first `docker inspect` shows Running (one more CLI call)",
                      [r["inspect_running_ms"] for r in raw]),
            stats_row("raw: → container `StartedAt` (engine's clock)", [r["started_at_ms"] for r in raw]),
            stats_row("raw: → its `create` event (docker events)", [r.get("create_event_ms") for r in raw]),
            stats_row("raw: → its `start` event (docker events)", [r.get("start_event_ms") for r in raw]),
            stats_row("ours: → our container's `create` event",
                      [o["marks_ms"].get("container_created") for o in ours]),
            stats_row("ours: → our container's `start` event (docker events)",
                      [o["marks_ms"]["container_started"] for o in ours]),
            "",
            "The engine's own part, the same two events on both sides (`create` answered to `start` "
            "answered: the client's `start` request and the engine's start):",
            "",
            "| ms | p50 | p95 | mean | min | max | n |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            stats_row("ours: `create` event → `start` event", [diff(o["marks_ms"].get("container_created"),
                                                              o["marks_ms"].get("container_started")) for o in ours]),
            stats_row("raw: `create` event → `start` event", [diff(r.get("create_event_ms"), r.get("start_event_ms"))
                                                             for r in raw]),
            stats_row("ours: the worker took the command → `create` event",
                      [diff(o["marks_ms"].get("worker_received"), o["marks_ms"].get("container_created")) for o in ours]),
            stats_row("raw: the CLI started → `create` event", [r.get("create_event_ms") for r in raw]),
            ""]
    for first, label in ((True, "ours went first"), (False, "raw went first")):
        idx = [i for i, o in enumerate(ours) if o.get("first", True) == first]
        if idx and len(idx) < len(ours):
            po = [ours[i]["ms"] for i in idx]
            pr = [raw[i]["ms"] for i in idx]
            out.append(f"Pairs where {label} ({len(idx)}): ours p50 {pct(po, 50):,.0f} / p95 {pct(po, 95):,.0f} ms, "
                       f"raw p50 {pct(pr, 50):,.0f} / p95 {pct(pr, 95):,.0f} ms, ratio "
                       f"{pct(po, 50) / pct(pr, 50):.2f}x / {pct(po, 95) / pct(pr, 95):.2f}x.")
            out.append("")
    r50, r95 = pct(o_ms, 50) / pct(r_ms, 50), pct(o_ms, 95) / pct(r_ms, 95)
    quiet = [i for i, o in enumerate(ours) if o.get("other_cpu", 0) <= DISTURBED_CPU]
    q_o = [ours[i]["ms"] for i in quiet]
    q_r = [raw[i]["ms"] for i in quiet]
    out += ["| ours / raw `docker run -d` | ratio | bar | | pairs undisturbed by other processes only |",
            "| --- | ---: | ---: | --- | ---: |",
            f"| p50 | {r50:.2f}x | ≤ {P50_BAR}x | {verdict(r50 <= P50_BAR)} | "
            f"{pct(q_o, 50) / pct(q_r, 50):.2f}x ({pct(q_o, 50):,.0f} / {pct(q_r, 50):,.0f} ms) |",
            f"| p95 | {r95:.2f}x | ≤ {P95_BAR}x | {verdict(r95 <= P95_BAR)} | "
            f"{pct(q_o, 95) / pct(q_r, 95):.2f}x ({pct(q_o, 95):,.0f} / {pct(q_r, 95):,.0f} ms) |",
            "",
            f"{len(ours) - len(quiet)} of {len(ours)} pairs ran while processes outside the "
            f"benchmark used more than {DISTURBED_CPU}% of a core (the machine is shared); the last "
            f"column leaves them out. Before each pair the driver waited for the machine to be "
            f"quiet ({lat.get('quiet_waited_s', 0):.0f} s of waiting in all).", ""]

    out += ["Where our time goes: each sample's timeline joined from the client, the worker's and "
            "the control plane's logs, Docker's events and Azurite's log (the queue poll that "
            "returned the message is the last `Messages_Dequeue` of that queue before the "
            "process logged the message's effect). Segments in order; p50s do not add up exactly.",
            "",
            "| segment | p50 ms | p95 ms | mean ms | share of mean | what happens |",
            "| --- | ---: | ---: | ---: | ---: | --- |"]
    total_mean = mean(o_ms)
    poll_ms = f"{args.poll_interval * 1000:.0f} ms"
    for start, end, label, what in SEGMENTS:
        what = what.replace("every 20 ms", f"every {poll_ms}")
        vals = []
        for o in ours:
            m = o["marks_ms"]
            a = 0.0 if start is None else m.get(start)
            b = m.get(end)
            vals.append(b - a if a is not None and b is not None else None)
        if not any(v is not None for v in vals):
            out.append(f"| {label} | n/a | n/a | n/a | | {what} |")
            continue
        out.append(f"| {label} | {pct(vals, 50):,.0f} | {pct(vals, 95):,.0f} | {mean(vals):,.0f} | "
                   f"{100 * mean(vals) / total_mean:.0f}% | {what} |")
    rtt = [x for o in ours for x in o["describe_rtt_ms"]]
    if "express" in lat:
        e = lat["express"]
        out += ["", f"Express deliveries during the measured pairs: {e['starts']} of {e['samples']} Starts reached the worker in the "
                f"wake datagram (no poll of its queue between the Start's enqueue and the worker taking it); "
                f"{e['reports']} of {e['report_messages']} `task-events` messages were applied from the datagram, and their "
                f"queued twins only deleted."]
    out += ["",
            f"Client overhead: a DescribeTasks round trip took p50 {pct(rtt, 50):.1f} ms at the client "
            f"(server's own time p50 {pct(lat.get('describe_server_ms', []), 50):.1f} ms, "
            f"{sum(o['describe_polls'] for o in ours) / len(ours):.0f} polls per sample); "
            f"RunTask p50 {pct([o['runtask_ms'] for o in ours], 50):.0f} ms at the client, "
            f"{pct(lat.get('runtask_server_ms', []), 50):.0f} ms in the server"
            + (f"; during a raw `docker run -d` the observer polled {mean([r.get('observer_polls') for r in raw]):.0f} "
               f"times (mean)" if any(r.get('observer_polls') for r in raw) else "")
            + f". CPU during the "
            f"measured pairs (% of one core): " + ", ".join(
                f"{k} {v:.0f}" for k, v in lat["cpu"].items() if k != "seconds") + ".", ""]

    # ---- cost
    out += ["## 2. Cost per task", "",
            "Each window starts after "
            f"{args.settle:g} s of idle (pollers back at their longest interval) and ends when "
            "Docker reported every container started (or destroyed), the control plane's log "
            "shows every task RUNNING (or STOPPED) applied, every task-events invocation completed "
            "and the worker's heartbeat carries the new count, plus 0.2 s. In between, no API call "
            "but the launching/stopping ones. Storage transactions = every request Azurite logged "
            "in the window, from both processes, idle polling included (a table batch counts "
            "once). Function executions = HTTP invocations (one per API call) + `TaskEvents` "
            "queue-trigger invocations (the standalone host's per-message completion line); "
            "the last column adds whatever else ran in the window (other queue functions, "
            "timers).",
            "",
            "| window | tasks | storage transactions | per task | of which control plane / worker "
            "| executions: API calls + TaskEvents | per task | all executions in window (per task) "
            "| window s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for w in results["windows"]:
        n = w["tasks"]
        sp = w["storage_by_process"]
        core = core_executions(w)
        out.append(f"| {w['name']} | {n} | {w['storage']} | **{w['storage'] / n:.2f}** | "
                   f"{sp['control plane'] / n:.2f} / {sp['worker'] / n:.2f} | {core} | "
                   f"**{core / n:.2f}** | {w['executions']} ({w['executions'] / n:.2f}) | "
                   f"{w['t_end'] - w['t_start']:.1f} |")
    runs = [w for w in results["windows"] if w["kind"] == "run"]
    out += ["", "| bar (per task launched) | " + " | ".join(w["name"] for w in runs) + " |",
            "| --- | " + " | ".join("---:" for _ in runs) + " |",
            f"| storage transactions ≤ {STORAGE_BAR} | " + " | ".join(
                f"{w['storage'] / w['tasks']:.2f} ({verdict(w['storage'] / w['tasks'] <= STORAGE_BAR)})"
                for w in runs) + " |",
            f"| function executions ≤ {EXECUTIONS_BAR} (API calls + TaskEvents) | " + " | ".join(
                f"{core_executions(w) / w['tasks']:.2f} ({verdict(core_executions(w) / w['tasks'] <= EXECUTIONS_BAR)})"
                for w in runs) + " |",
            f"| function executions ≤ {EXECUTIONS_BAR} (everything in the window) | " + " | ".join(
                f"{w['executions'] / w['tasks']:.2f} ({verdict(w['executions'] / w['tasks'] <= EXECUTIONS_BAR)})"
                for w in runs) + " |", ""]
    out += ["Function executions and task reports per window:", ""]
    for w in results["windows"]:
        api = ", ".join(f"{k} x{v}" for k, v in sorted(w["api_calls"].items())) or "none"
        apps = ", ".join(f"{k} x{v}" for k, v in sorted(w["applications"].items())) or "none"
        funcs = ", ".join(f"{k} x{v}" for k, v in sorted(w["functions"].items())) or "none"
        out.append(f"- {w['name']}: HTTP {api}; {funcs}; task reports applied "
                   f"(reported -> resulting lastStatus): {apps}")
    hosted = results.get("hosted_functions", [])
    if hosted:
        out += ["", "The control plane hosts: " + "; ".join(
            f"{name} ({kind}: {detail})" for name, kind, detail in hosted) + "."]
    out.append("")
    for w in results["windows"]:
        out += [f"### Storage calls in window \"{w['name']}\" ({w['tasks']} tasks, "
                f"{w['t_end'] - w['t_start']:.1f} s)", ""]
        out += breakdown_table(w["breakdown"], w["tasks"])
        out.append("")

    # ---- idle
    idle = results["idle"]
    minutes = idle["minutes"]
    by_proc = {}
    for process, _, _, _, count in idle["breakdown"]:
        by_proc[process] = by_proc.get(process, 0) + count
    cpu = idle["cpu"]
    out += ["## 3. Idle", "",
            f"{minutes * 60:.0f} s with both processes running, no API calls and the "
            f"{idle.get('tasks_running', 0)} tasks of the last window running, "
            f"{args.settle:g} s after that window.", "",
            "| process | storage requests / min | CPU % of one core |",
            "| --- | ---: | ---: |",
            f"| control plane | {by_proc.get('control plane', 0) / minutes:.1f} | {cpu['control plane']:.1f} |",
            f"| worker | {by_proc.get('worker', 0) / minutes:.1f} | {cpu['worker']:.1f} |",
            f"| Azurite | | {cpu['azurite']:.1f} |",
            f"| Docker engine (dockerd, containerd; shared) | | {cpu['docker engine']:.1f} |",
            f"| other processes on the machine | | {cpu['other processes']:.1f} |", ""]
    out += breakdown_table(idle["breakdown"], minutes, "per minute")
    funcs = ", ".join(f"{k} x{v}" for k, v in sorted(idle.get("functions", {}).items())) or "none"
    out += ["", f"Function executions in the idle window: {funcs}."]
    out += ["", "CPU per 10 s slice (% of one core): " + "; ".join(
        f"cp {s['control plane']:.1f} / worker {s['worker']:.1f} / other {s['other processes']:.0f}"
        for s in idle["cpu_slices"]) + ".", ""]
    out += ["Busiest threads over the idle window (% of one core, threads of the same name summed):", "",
            "| process | thread | threads | CPU % |", "| --- | --- | ---: | ---: |"]
    for proc in ("control plane", "worker"):
        for name, count, value in idle["threads"][proc][:4]:
            out.append(f"| {proc} | `{name}` | {count} | {value:.2f} |")
    startup = results.get("startup")
    if startup:
        secs = results["startup_seconds"]
        out += ["", f"For comparison, the {secs:.0f} s right after start-up and the first few "
                f"requests (create cluster, register task definition, worker registration), before "
                f"any task:", "",
                "| process | total CPU % | busiest threads (CPU %) |", "| --- | ---: | --- |"]
        for proc in ("control plane", "worker"):
            rows = startup[proc]
            out.append(f"| {proc} | {sum(r[2] for r in rows):.1f} | " + ", ".join(
                f"`{n}` {v:.1f}" for n, _, v in rows[:3] if v > 0) + " |")
        out += ["", "`.NET Tiered Com` is the runtime's background tiered-compilation thread: "
                "methods first run as quickly-jitted tier-0 code and, once called often, are "
                "compiled again optimized (tier 1) in the background. It runs only after new "
                "code paths got hot, so a freshly started process (or one that just served its "
                "first burst of requests) shows CPU with no load, which then fades within "
                "seconds; the idle numbers above are the steady state."]
    out.append("")

    out += ["Machine:", ""] + [f"- {k}: {v}" for k, v in machine_info([
        ("docker engine", command_output(["docker", "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"])),
        ("azurite", command_output(["azurite", "--version"])),
    ])]
    out += ["", "Caveats:", "",
            "- Azurite runs with `--debug` for the whole run (about 30 log lines per request); that "
            "costs Azurite CPU and a little latency on every storage call, ours only (raw docker "
            "uses no storage). Its CPU is in the tables above.",
            "- The worker runs with `AZURE_TELEMETRY_DISABLED=true` (its Azure SDK sends no "
            "User-Agent header), which is how its requests are told apart from the control "
            "plane's in Azurite's log; everything else is the default configuration (worker: "
            "`HeartbeatSeconds` 20, `CommandPollMaxDelayMilliseconds` 2000, "
            "`TransitionReportDelayMilliseconds` 1000; control plane: host.json "
            "`maxPollingInterval` 2 s, batch 16). Debug lines are switched on in two places to "
            "count what happens: the control plane's `Function.*` categories (one line per "
            "queue or timer invocation) and the worker's `Heartbeat`.",
            "- Both containers get memory 32 MiB, CPU shares 2 and a stop timeout of 2 s (ours from "
            "the task definition and the worker's minimum shares, the raw one as `docker run` "
            "options); ours also carries the agent's labels, a name and the metadata endpoint's "
            "environment, the raw one one label (for cleanup).",
            "- The raw baseline includes the docker CLI's own start-up (a Go binary); ours includes "
            f"the Python client's signing and the {args.poll_interval * 1000:.0f} ms DescribeTasks polling "
            "granularity. Each poll also costs the client, the control plane and Azurite CPU while "
            "the engine starts our container: on this machine they share the engine's 2 cores (on "
            "Azure the control plane and storage do not run on the Docker host). " + (
                "The raw `docker run -d` therefore runs with the same polling going on "
                "(`--raw-observer on`, the default since 2026-12-03 afternoon)."
                if getattr(args, "raw_observer", "off") == "on" else
                "The raw `docker run -d` ran with no polling (`--raw-observer off`): that CPU weighed "
                "on ours only."),
            "- The machine and its Docker engine are shared with other sessions; the CPU tables "
            "show how much else ran. Azurite stands in for Azure Storage (no network latency here; "
            "on Azure each storage call costs milliseconds more).",
            "", "Reproduce: `bash bench/run-task.sh` (see bench/README.md)."]
    return "\n".join(out) + "\n"


IMAGE_DESC = "local/busybox:latest sleep 300"
RAW_DESC = "--memory 32m --cpu-shares 2 --stop-timeout 2 local/busybox:latest sleep 300"


def core_executions(w: dict) -> int:
    """API calls + TaskEvents invocations: the executions the launch (or stop) itself causes."""
    return sum(w["api_calls"].values()) + sum(
        v for k, v in w["functions"].items() if k.startswith("TaskEvents "))


def warnings(results: dict, args) -> list:
    out = []
    lat_cpu = results["latency"]["cpu"]
    if lat_cpu["other processes"] > 25:
        out.append(f"latency phase: other processes used {lat_cpu['other processes']:.0f}% CPU on "
                   f"average; samples of both sides are disturbed")
    for w in results["windows"]:
        if not w.get("heartbeat_seen"):
            out.append(f"{w['name']}: no worker heartbeat with the final task count was seen; the "
                       f"window may miss the worker's last heartbeat write")
        if not w.get("drained"):
            out.append(f"{w['name']}: not every task-events invocation had completed at the window's end")
    missing = sum(1 for o in results["latency"]["ours"]
                  for v in o.get("marks_ms", {}).values() if v is None)
    if missing:
        out.append(f"latency breakdown: {missing} timeline marks could not be found in the logs")
    if results["idle"]["cpu"]["other processes"] > 25:
        out.append(f"idle window: other processes used {results['idle']['cpu']['other processes']:.0f}% CPU")
    return out
