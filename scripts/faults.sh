#!/usr/bin/env bash
# Runs the fault catalogue (tests/EndToEnd.Tests/Faults) several times in a row and prints the
# README's table: per fault, time to converge (p50 / max over the runs), writes lost, orphans.
#
#   bash scripts/faults.sh [runs, default 5]
#
# Each run is the catalogue's classes side by side (`--filter "Category=Fault&Restarts!=Docker"`),
# then the fault that restarts the Docker engine alone (`Restarts=Docker`), as scripts/test.sh runs
# them; a run in which any fault test fails makes the script exit non-zero (the table is still
# printed, from the runs that passed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${1:-5}"
OUT="$ROOT/TestResults/faults-runs"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1
cd "$ROOT"

bash scripts/install-deps.sh </dev/null
dotnet build Serverless.sln -c Release -nologo -v quiet </dev/null
rm -rf "$OUT"
mkdir -p "$OUT"

failed=0
for run in $(seq 1 "$RUNS"); do
    echo "faults: run $run of $RUNS" >&2
    run_failed=0
    for filter in "Category=Fault&Restarts!=Docker" "Restarts=Docker"; do
        FAULT_RESULTS="$OUT" dotnet test tests/EndToEnd.Tests/Serverless.EndToEnd.Tests.csproj -c Release --no-build -nologo \
            --filter "$filter" --logger "console;verbosity=minimal" </dev/null || run_failed=1
    done
    failed=$((failed + run_failed))
done

python3 - "$OUT/faults.tsv" "$RUNS" <<'PY'
import statistics, sys
from collections import defaultdict
rows = defaultdict(list)
try:
    for line in open(sys.argv[1]):
        fault, seconds, lost, orphans = line.rstrip("\n").split("\t")
        rows[fault].append((float(seconds), int(lost), int(orphans)))
except FileNotFoundError:
    pass
print(f"| fault | runs passed | converge p50 / max (s) | writes lost | orphans |")
print(f"| --- | --- | --- | --- | --- |")
for fault in sorted(rows):
    runs = rows[fault]
    seconds = [r[0] for r in runs]
    print(f"| {fault.replace('_', ' ')} | {len(runs)}/{sys.argv[2]} | {statistics.median(seconds):.1f} / {max(seconds):.1f} | {sum(r[1] for r in runs)} | {sum(r[2] for r in runs)} |")
PY
[ "$failed" -eq 0 ] || { echo "faults: $failed of $RUNS runs had a failing fault test" >&2; exit 1; }
