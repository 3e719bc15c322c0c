#!/usr/bin/env bash
# Counts the instructions Citadel spends on one scenario: starts the release build under
# valgrind's callgrind with instrumentation off, creates small fixtures, switches counting on
# exactly while `citadel-bench` drives the named scenario against Citadel, and leaves the
# profile in bench/callgrind.out (read it with `callgrind_annotate --inclusive=yes`).
# Instruction counts do not depend on what else the machine does, so two commits compare.
#
#   bench/profile.sh kms.Encrypt [extra citadel-bench run arguments]
#   DURATION=10 bench/profile.sh secretsmanager.GetSecretValue
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:?usage: bench/profile.sh SCENARIO [citadel-bench run arguments]}
shift
command -v valgrind > /dev/null || { echo "valgrind is not installed" >&2; exit 1; }
cargo build --release --locked -p citadel-server -p citadel-bench

work=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -INT "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

export CITADEL_ROOT_ACCESS_KEY_ID=AKIACITADELBENCHROOT
CITADEL_ROOT_SECRET_ACCESS_KEY=$(head -c 30 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
export CITADEL_ROOT_SECRET_ACCESS_KEY
CITADEL_LOG_LEVEL=info valgrind --tool=callgrind --callgrind-out-file=bench/callgrind.out \
  --instr-atstart=no target/release/citadel serve --seal file --insecure-http \
  --listen 127.0.0.1:0 --data-dir "$work/data" 2> "$work/log" &
pid=$!
for _ in $(seq 1 1200); do grep -q "citadel ready" "$work/log" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'citadel listening on [^ ]*' "$work/log" | head -1 | awk '{print $4}')
[ -n "$url" ] || { cat "$work/log"; echo "citadel did not start" >&2; exit 1; }

# citadel-bench reports each phase on stderr; count only Citadel's part of the scenario.
AWS_ACCESS_KEY_ID=$CITADEL_ROOT_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$CITADEL_ROOT_SECRET_ACCESS_KEY \
  target/release/citadel-bench run --endpoint "$url" --server-pid "$pid" --parameters 200 \
  --secrets 20 --keys 0 --duration "${DURATION:-5}" --only "$scenario" "$@" 2>&1 > "$work/table" |
  while read -r line; do
    echo "$line" >&2
    case "$line" in
      *"on citadel: start") callgrind_control -i on "$pid" > /dev/null 2>&1 ;;
      *"on citadel: done") callgrind_control -i off "$pid" > /dev/null 2>&1 ;;
    esac
  done
grep " citadel " "$work/table" || { echo "the scenario did not run" >&2; exit 1; }
kill -INT "$pid"; wait "$pid" || true
pid=
echo "profile: bench/callgrind.out (requests counted: the ops/s above × (DURATION + 1) s)"
