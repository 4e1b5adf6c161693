#!/usr/bin/env bash
# Deploys an image to a service through the control plane's deploy webhook (POST /deploy), then
# waits on the status URL until the rollout completes. What a CI step runs after pushing an image:
#
#   DEPLOY_URL=https://<control plane> DEPLOY_SECRET=<webhook secret> \
#       bash scripts/deploy.sh <cluster> <service> <image> [container]
#
# Environment:
#   DEPLOY_DELIVERY_ID    the delivery id (default: a random one). A repeat of an id deploys nothing and
#                         answers as the first did: use e.g. "$GITHUB_RUN_ID-$GITHUB_SHA" so a re-run of the
#                         job waits on the same deployment instead of starting another.
#   DEPLOY_FORCE=true     deploy even when the service already runs this image
#   DEPLOY_TIMEOUT        seconds to wait for the rollout (default 900)
#   DEPLOY_POLL_SECONDS   seconds between status polls (default 5)
# Needs curl and openssl. Exit status: 0 COMPLETED; 1 refused, FAILED (the circuit breaker rolled
# it back) or replaced by a newer deployment; 2 still in progress at the timeout.
set -euo pipefail

[ $# -ge 3 ] || { echo "usage: $0 <cluster> <service> <image> [container]" >&2; exit 2; }
: "${DEPLOY_URL:?set DEPLOY_URL to the URL of the control plane}" "${DEPLOY_SECRET:?set DEPLOY_SECRET to the webhook secret}"
cluster="$1" service="$2" image="$3" container="${4:-}"

# Cluster, service and container names and image references contain no characters JSON must escape.
body="{\"cluster\":\"$cluster\",\"service\":\"$service\",\"image\":\"$image\"${container:+,\"container\":\"$container\"}${DEPLOY_FORCE:+,\"force\":$DEPLOY_FORCE}}"
signature="sha256=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$DEPLOY_SECRET" | sed 's/^.* //')"
delivery="${DEPLOY_DELIVERY_ID:-}"
[ -n "$delivery" ] || delivery="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"

answer="$(curl -sS --retry 3 --retry-all-errors -w '\n%{http_code}' -X POST "${DEPLOY_URL%/}/deploy" \
    -H 'Content-Type: application/json' -H "X-GitHub-Delivery: $delivery" -H "X-Hub-Signature-256: $signature" \
    --data-binary "$body")"
code="${answer##*$'\n'}"
answer="${answer%$'\n'*}"
echo "$answer"
case "$code" in
    200 | 202) ;;
    *) echo "deploy: refused with HTTP $code" >&2; exit 1 ;;
esac

status_url="$(printf '%s' "$answer" | sed -n 's/.*"statusUrl":"\([^"]*\)".*/\1/p')"
deadline=$((SECONDS + ${DEPLOY_TIMEOUT:-900}))
while :; do
    status="$(curl -sS --retry 3 --retry-all-errors "$status_url")"
    state="$(printf '%s' "$status" | sed -n 's/.*"rolloutState":"\([^"]*\)".*/\1/p')"
    case "$state" in
        COMPLETED) echo "$status"; exit 0 ;;
        FAILED | INACTIVE) echo "$status"; echo "deploy: the deployment ended $state" >&2; exit 1 ;;
    esac
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "$status"
        echo "deploy: still ${state:-unknown} after ${DEPLOY_TIMEOUT:-900} s" >&2
        exit 2
    fi
    sleep "${DEPLOY_POLL_SECONDS:-5}"
done
