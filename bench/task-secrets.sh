#!/usr/bin/env bash
# Task secrets benchmark: storage requests and RunTask -> RUNNING time that three secrets add to a
# task's launch, against the same task without secrets in the same run (bench/TaskSecrets/Program.cs).
#
#   bash bench/task-secrets.sh [--no-build] [--rounds N] [--warmup N]
#
# Needs azurite on PATH, a running Docker engine and the image local/busybox:latest
# (bash scripts/install-deps.sh). Prints a Markdown table and writes it to bench/results/task-secrets.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
BUILD=1
ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) BUILD=0 ;;
    --rounds|--warmup) ARGS+=("$1" "$2"); shift ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
bench_require azurite dotnet docker
bench_require_docker
PROJECT="$REPO/bench/TaskSecrets/TaskSecretsBench.csproj"
if [[ $BUILD -eq 1 ]]; then
  dotnet build -c Release "$PROJECT" -nologo -v quiet >/dev/null
fi
mkdir -p "$REPO/bench/results"
cd "$REPO"
dotnet "$REPO/bench/TaskSecrets/bin/Release/net10.0/TaskSecretsBench.dll" --out "$REPO/bench/results/task-secrets.md" "${ARGS[@]}"
