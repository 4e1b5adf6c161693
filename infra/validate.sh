#!/usr/bin/env bash
# Validates the Bicep in infra/ without touching Azure: downloads the Bicep CLI from NuGet (package
# Azure.Bicep.CommandLine.<os>-<arch>, through a throwaway project in a temporary directory, so it
# honours your NuGet configuration and proxy), then builds main.bicep and main.bicepparam. Fails
# on any error or warning; the linter rules are in infra/bicepconfig.json.
#
#   bash infra/validate.sh [--out DIR]     --out: also keep the compiled ARM template, DIR/main.json
#
# Needs: the .NET SDK (only for the download) and network access to NuGet.
# Environment:
#   BICEP_VERSION   the Bicep CLI version to download (default below)
#   BICEP           an existing bicep binary to use instead of downloading one
set -euo pipefail

INFRA="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BICEP_VERSION="${BICEP_VERSION:-0.49.2}"
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1

out=""
if [ "${1:-}" = --out ]; then
    out="${2:?--out needs a directory}"
    mkdir -p "$out"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

bicep="${BICEP:-}"
if [ -z "$bicep" ]; then
    case "$(uname -s)/$(uname -m)" in
        Linux/x86_64) rid=linux-x64 ;;
        Linux/aarch64 | Linux/arm64) rid=linux-arm64 ;;
        Darwin/x86_64) rid=osx-x64 ;;
        Darwin/arm64) rid=osx-arm64 ;;
        *) echo "validate.sh: no Bicep CLI package for $(uname -s)/$(uname -m); set BICEP" >&2; exit 2 ;;
    esac
    command -v dotnet >/dev/null || { echo "validate.sh: the .NET SDK is needed to download the Bicep CLI (or set BICEP)" >&2; exit 2; }
    sdk_major="$(dotnet --version | cut -d. -f1)"
    cat > "$work/fetch-bicep.csproj" <<EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>net${sdk_major}.0</TargetFramework>
  </PropertyGroup>
  <ItemGroup>
    <PackageDownload Include="Azure.Bicep.CommandLine.${rid}" Version="[${BICEP_VERSION}]" />
  </ItemGroup>
</Project>
EOF
    echo "Downloading Bicep CLI ${BICEP_VERSION} (Azure.Bicep.CommandLine.${rid}) ..."
    if ! dotnet restore "$work/fetch-bicep.csproj" --packages "$work/packages" > "$work/restore.log" 2>&1; then
        cat "$work/restore.log" >&2
        echo "validate.sh: could not download Azure.Bicep.CommandLine.${rid} ${BICEP_VERSION}" >&2
        exit 2
    fi
    bicep="$work/packages/azure.bicep.commandline.${rid}/${BICEP_VERSION}/tools/bicep"
    chmod +x "$bicep"
fi
"$bicep" --version

failed=0
# Runs one bicep command; any error or warning (the linter's included) fails the validation.
# Its output (the ARM JSON) goes to $output.
check() {
    local what="$1"; shift
    local log="$work/diagnostics.log"
    if ! "$bicep" "$@" --stdout > "${output:-/dev/null}" 2> "$log"; then failed=1; fi
    if grep -Eq ' : (Error|Warning) ' "$log"; then failed=1; fi
    if [ -s "$log" ]; then cat "$log" >&2; else echo "ok: $what (no errors, no warnings)"; fi
}

output="${out:+$out/main.json}" check "bicep build infra/main.bicep" build "$INFRA/main.bicep"
# main.bicepparam reads its secrets from the environment: placeholders, never deployed.
ECS_ACCESS_KEYS='VALIDATEONLYKEY00001:not-a-secret' \
WORKER_SSH_PUBLIC_KEY='ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIValidateOnlyValidateOnlyValidateOnly0000 validate' \
    check "bicep build-params infra/main.bicepparam" build-params "$INFRA/main.bicepparam"

if [ "$failed" != 0 ]; then
    echo "validate.sh: FAILED" >&2
    exit 1
fi
echo "validate.sh: infra/ is valid"
