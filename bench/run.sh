#!/usr/bin/env bash
# Builds Citadel and the harness in release mode, starts Citadel in production mode (file seal,
# plain HTTP on loopback, fresh data dir, root credentials from the environment), runs every
# scenario against it and the ceiling, and writes docs/BENCHMARKS.md and bench/results.json.
# Extra arguments go to `citadel-bench run` (e.g. --duration 3 --parameters 1000 --compare URL).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p citadel-server -p citadel-bench

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

export CITADEL_ROOT_ACCESS_KEY_ID=AKIACITADELBENCHROOT
CITADEL_ROOT_SECRET_ACCESS_KEY=$(head -c 30 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
export CITADEL_ROOT_SECRET_ACCESS_KEY
CITADEL_LOG_LEVEL=info target/release/citadel serve --seal file --insecure-http \
  --listen 127.0.0.1:0 --data-dir "$work/data" 2> "$work/log" &
server_pid=$!

url=
for _ in $(seq 1 300); do
  if grep -q "citadel ready" "$work/log" 2>/dev/null || grep -q "citadel listening on" "$work/log" 2>/dev/null; then
    url=$(grep -o 'citadel listening on [^ ]*' "$work/log" | head -1 | awk '{print $4}')
    grep -q "citadel ready" "$work/log" && break
  fi
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/log"; echo "citadel exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/log"; echo "citadel did not start" >&2; exit 1; }

AWS_ACCESS_KEY_ID=$CITADEL_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$CITADEL_ROOT_SECRET_ACCESS_KEY \
  target/release/citadel-bench run --endpoint "$url" --server-pid "$server_pid" \
  --commit "$(git rev-parse --short HEAD)$(git diff --quiet || echo '-dirty')" \
  --json bench/results.json --markdown docs/BENCHMARKS.md "$@"
