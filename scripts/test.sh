#!/usr/bin/env bash
# Runs every test in the solution and ends with one line: "N passed, N failed, N skipped".
#
#   bash scripts/test.sh [extra dotnet test arguments, e.g. --filter FullyQualifiedName~Clusters]
#
# Without arguments it runs three stages: every test but the fault catalogue, then the fault catalogue
# (Category=Fault) on its own, then its one fault that restarts the Docker engine (Restarts=Docker)
# alone; the catalogue's figures land in TestResults/faults/faults.tsv.
#
# Installs what is missing first (scripts/install-deps.sh, with Docker: the worker's tests need the
# engine and local/busybox:latest; ECS_SKIP_DOCKER=1 skips it), builds Release, runs `dotnet test`
# with a per-project summary on the console and a TRX file per test project in TestResults/, and
# sums those files. Exits non-zero when a test failed, when a test project could not run, or when
# no test ran at all. Needs no terminal and no stdin (CI=true is fine). Tests start their own
# Azurite (tests/TestSupport/AzuriteFixture.cs), so nothing else is started here.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RESULTS="$ROOT/TestResults"
CONFIGURATION=Release
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
cd "$ROOT"

solution="$(ls Serverless.slnx Serverless.sln 2>/dev/null | head -n 1 || true)"
[ -n "$solution" ] || { echo "test: no Serverless.sln(x) in $ROOT" >&2; exit 1; }

summarize() {
    # Counts every test result in the TRX files: errors, timeouts and aborts count as failures,
    # xunit's skipped tests are "NotExecuted".
    python3 - "$RESULTS" <<'PY'
import glob, os, sys
import xml.etree.ElementTree as ET

ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
passed = failed = skipped = 0
for path in sorted(glob.glob(os.path.join(sys.argv[1], "**", "*.trx"), recursive=True)):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        print(f"test: unreadable {path}: {e}", file=sys.stderr)
        failed += 1
        continue
    for result in root.iterfind(".//t:Results/t:UnitTestResult", ns):
        outcome = result.get("outcome", "")
        if outcome == "Passed":
            passed += 1
        elif outcome == "NotExecuted":
            skipped += 1
        else:
            failed += 1
print(f"{passed} {failed} {skipped}")
PY
}

finish() {
    local run_status="$1" passed failed skipped
    read -r passed failed skipped < <(summarize)
    local line="$passed passed, $failed failed"
    [ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
    if [ "$run_status" -ne 0 ] && [ "$failed" -eq 0 ]; then
        echo "test: dotnet exited with status $run_status (a build error, or a test project that could not run)" >&2
    fi
    [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ] && echo "test: no test ran" >&2
    echo "$line"
    if [ "$run_status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$((passed + failed))" -eq 0 ]; then
        exit 1
    fi
    exit 0
}

bash "$ROOT/scripts/install-deps.sh" </dev/null

rm -rf "$RESULTS"
mkdir -p "$RESULTS"

echo "test: building $solution ($CONFIGURATION)" >&2
if ! dotnet build "$solution" -c "$CONFIGURATION" -nologo </dev/null; then
    finish 1
fi

# Minimal console verbosity prints failures and one "Passed!/Failed! - ... - <assembly>" line per
# test project. A test that hangs for 20 minutes is killed and reported rather than blocking CI.
run_tests() {
    dotnet test "$@" -c "$CONFIGURATION" --no-build -nologo \
        --logger "console;verbosity=minimal" \
        --logger trx \
        --results-directory "$RESULTS" \
        --blame-hang-timeout 20m --blame-hang-dump-type none </dev/null
}

set +e
if [ "$#" -gt 0 ]; then
    run_tests "$solution" "$@"
    status=$?
else
    # The end-to-end suite runs beside the rest: the unit, worker and Functions tests, then the fault
    # catalogue (tests/EndToEnd.Tests/Faults), its classes side by side, each with a control plane,
    # storage (its own Azurite) and workers of its own, so its kills and floods reach nothing else.
    # Last, alone, the one fault that restarts the Docker engine, which stops every container on the
    # machine. TEST_STAGES=sequential runs the suite, then the catalogue, one after the other.
    fault_filter="Category=Fault&Restarts!=Docker"
    e2e=tests/EndToEnd.Tests/Serverless.EndToEnd.Tests.csproj
    if [ "${TEST_STAGES:-parallel}" = sequential ]; then
        run_tests "$solution" --filter "Category!=Fault"
        status=$?
        echo "test: fault catalogue" >&2
        FAULT_RESULTS="$RESULTS/faults" run_tests "$e2e" --filter "$fault_filter"
        fault_status=$?
        [ "$status" -eq 0 ] && status=$fault_status
    else
        (
            run_tests "$solution" --filter "FullyQualifiedName!~Serverless.EndToEnd.Tests"
            unit_status=$?
            echo "test: fault catalogue (beside the end-to-end suite)" >&2
            FAULT_RESULTS="$RESULTS/faults" run_tests "$e2e" --filter "$fault_filter"
            fault_status=$?
            [ "$unit_status" -ne 0 ] && exit "$unit_status"
            exit "$fault_status"
        ) &
        others=$!
        run_tests "$e2e" --filter "Category!=Fault"
        status=$?
        wait "$others"
        other_status=$?
        [ "$status" -eq 0 ] && status=$other_status
    fi
    echo "test: fault catalogue, the Docker engine restarted" >&2
    FAULT_RESULTS="$RESULTS/faults" run_tests "$e2e" --filter "Restarts=Docker"
    fault_status=$?
    [ "$status" -eq 0 ] && status=$fault_status
fi
set -e
finish "$status"
