"""Markdown tables from bench/ScaleSim's JSON results (bench/scale-sim.sh): per-operation storage
transactions at every size measured, the busiest partition and queue, and the projection of the
largest run to Azure's published limits."""
import glob
import json
import os
import re
import sys

PARTITION_LIMIT = 2000   # entities/s per table partition
QUEUE_LIMIT = 2000       # messages/s per queue
ACCOUNT_LIMIT = 20000    # transactions/s per storage account


def cell(text):
    """A table cell: a partition key's '|' would end it."""
    return str(text).replace("|", "\\|")


def main(folder):
    runs = []
    for path in glob.glob(os.path.join(folder, "scale-sim-*x*.json")):
        with open(path) as f:
            runs.append(json.load(f))
    if not runs:
        print("no results in", folder)
        return
    runs.sort(key=lambda r: (r["instances"], r["tasks"]))
    names = []
    for run in runs:
        for phase in run["phases"]:
            if phase["Name"] not in names:
                names.append(phase["Name"])

    def key(name):  # the sweep's and resync's names carry the size
        return name.split(",")[0].split(" + ")[0]

    print("Storage transactions per operation (net of the idle rate), by size (instances × tasks):\n")
    print("| operation | " + " | ".join(f"{r['instances']}×{r['tasks']}" for r in runs) + " |")
    print("|---|" + "---:|" * len(runs))
    seen = []
    for name in names:
        if key(name) in seen:
            continue
        seen.append(key(name))
        cells = []
        for run in runs:
            phase = next((p for p in run["phases"] if key(p["Name"]) == key(name)), None)
            cells.append("–" if phase is None else f"{phase['PerOperation']:g}")
        label = re.sub(r"\+ \d+ no-op", "+ no-op", re.sub(r", \d+ instances", ", all instances", name))
        print(f"| {label} | " + " | ".join(cells) + " |")

    largest = runs[-1]
    print(f"\nBusiest table partition and queue per operation ({largest['instances']}×{largest['tasks']}):\n")
    print("| operation | busiest partition | entities/op there | share | busiest queue | msgs/op there | by table/queue (tx/op) |")
    print("|---|---|---:|---:|---|---:|---|")
    for phase in largest["phases"]:
        parts = cell(", ".join(f"{k} {v:g}" for k, v in list(phase["PerOperationByResource"].items())[:5]))
        print(f"| {phase['Name']} | {cell(phase['BusiestPartition'])} | {phase['BusiestPartitionPerOperation']:g} | "
              f"{phase['BusiestPartitionShare']:.0%} | {phase['BusiestQueue']} | {phase['BusiestQueuePerOperation']:g} | {parts} |")

    print(f"\nProjection to Azure's limits from the {largest['instances']}×{largest['tasks']} run "
          f"({PARTITION_LIMIT} entities/s per partition, {QUEUE_LIMIT} messages/s per queue, {ACCOUNT_LIMIT} tx/s per account):\n")
    print("| launch path | tx/launch | account limit | busiest partition (entities/launch) | partition limit | without its queries | busiest queue (msgs/launch) | queue limit | sustained launches/s |")
    print("|---|---:|---:|---|---:|---:|---|---:|---:|")
    for phase in largest["phases"]:
        if "RUNNING" not in phase["Name"]:
            continue
        account = ACCOUNT_LIMIT / phase["PerOperation"]
        partition = PARTITION_LIMIT / phase["BusiestPartitionPerOperation"] if phase["BusiestPartitionPerOperation"] else float("inf")
        queue = QUEUE_LIMIT / phase["BusiestQueuePerOperation"] if phase["BusiestQueuePerOperation"] else float("inf")
        best = min(account, partition, queue)
        # Runs since 2026-12-03 also say how much of the partition's count queries returned (a cost per second).
        # Only the instance partition's queries are per second (the placement view, the sweeps); a service's
        # task partition is read by each of its reconciles, which is per launch.
        by_queries = phase.get("BusiestPartitionByQueriesPerOperation") if phase["BusiestPartition"].startswith("ContainerInstances/") else None
        points = None if by_queries is None else phase["BusiestPartitionPerOperation"] - by_queries
        without = "–" if points is None else (f"{PARTITION_LIMIT / points:.0f}/s ({points:g})" if points > 0 else "∞")
        print(f"| {phase['Name']} | {phase['PerOperation']:g} | {account:.0f}/s | {cell(phase['BusiestPartition'])} ({phase['BusiestPartitionPerOperation']:g}) | {partition:.0f}/s | "
              f"{without} | {phase['BusiestQueue']} ({phase['BusiestQueuePerOperation']:g}) | {queue:.0f}/s | **{best:.0f}/s** |")
    print("\nThe partition column divides everything the window read there by its launches: a read of the whole "
          "partition that fell in the window (the placement view, at most one per 3 s per control plane process, "
          "or a sweep) is a cost per second, not per launch, and makes short windows look worse; \"without its "
          "queries\" leaves those reads out for the instance partition (the per-launch writes and point reads alone; "
          "the per-second reads then come off the partition's 2,000 entities/s first: README, \"1,000 workers by "
          "simulation\"). A service's task partition is read by each of its reconciles: per launch, as counted.")
    idle = next((p for p in largest["phases"] if p["Name"].startswith("idle")), None)
    if idle:
        print(f"\nIdle: {idle['PerOperation']:g} transactions per instance-hour with the simulation's worker settings "
              f"({', '.join(f'{k} {v:g}' for k, v in idle['PerOperationBySource'].items())}).")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results")
