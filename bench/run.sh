#!/usr/bin/env bash
# Builds Citadel and the harness in release mode, starts Citadel in production mode (file seal,
# plain HTTP on loopback, fresh data dir, root credentials from the environment), runs every
# scenario against it and the ceiling, and writes docs/BENCHMARKS.md and bench/results.json.
# Extra arguments go to `citadel-bench run` (e.g. --duration 3 --parameters 1000 --compare URL).
#
# `bench/run.sh --postgres …` stores Citadel's data in a private PostgreSQL server instead
# (initdb into a temporary directory, fsync on, as the `postgres` user when run as root) and
# writes docs/BENCHMARKS_POSTGRES.md and bench/results-postgres.json.
set -euo pipefail
cd "$(dirname "$0")/.."

store="SQLite (embedded)"
markdown=docs/BENCHMARKS.md
json=bench/results.json
if [ "${1:-}" = "--postgres" ]; then
  shift
  store=PostgreSQL
  markdown=docs/BENCHMARKS_POSTGRES.md
  json=bench/results-postgres.json
fi

cargo build --release --locked -p citadel-server -p citadel-bench

work=$(mktemp -d)
server_pid=
pg=
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ -n "$pg" ]; then as_postgres "$pgbin/pg_ctl" -D "$pg/data" -m fast stop > /dev/null 2>&1 || true; rm -rf "$pg"; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The operator's setting for a benchmark: measure the server, not AWS's default Parameter Store
# quota (3,000 requests/s with high throughput on), which the reads would hit.
cat > "$work/citadel.toml" <<'TOML'
[ssm]
high_throughput_tps = 0
TOML
store_args=(--config "$work/citadel.toml")
if [ "$store" = PostgreSQL ]; then
  pgbin=$(dirname "$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
  # Not under $work: the postgres user must be able to reach it.
  pg=$(mktemp -d /tmp/citadel-bench-pg.XXXXXX)
  head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$pg/password"
  if [ "$(id -u)" = 0 ]; then chown -R postgres "$pg"; fi
  as_postgres "$pgbin/initdb" -D "$pg/data" -U citadel --pwfile="$pg/password" \
    --auth-local=trust --auth-host=scram-sha-256 > "$pg/initdb.log"
  pgport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_postgres "$pgbin/pg_ctl" -D "$pg/data" -l "$pg/log" -w \
    -o "-p $pgport -k $pg -c listen_addresses=127.0.0.1 -c max_connections=200" start > /dev/null
  CITADEL_DATABASE_PASSWORD=$(cat "$pg/password")
  export CITADEL_DATABASE_PASSWORD
  store_args+=(--database-url "postgres://citadel@127.0.0.1:$pgport/postgres?sslmode=disable")
  store="PostgreSQL $("$pgbin/pg_ctl" --version | awk '{print $3}') on loopback (fsync on)"
fi

export CITADEL_ROOT_ACCESS_KEY_ID=AKIACITADELBENCHROOT
CITADEL_ROOT_SECRET_ACCESS_KEY=$(head -c 30 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
export CITADEL_ROOT_SECRET_ACCESS_KEY
CITADEL_LOG_LEVEL=info target/release/citadel serve --seal file --insecure-http \
  --listen 127.0.0.1:0 --data-dir "$work/data" "${store_args[@]}" 2> "$work/log" &
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
  --store "$store" --json "$json" --markdown "$markdown" "$@"

# Start-up with everything the run created in the store: stop Citadel, start it again on the same
# data and time it until its health check answers.
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
started=$(date +%s%N)
CITADEL_LOG_LEVEL=info target/release/citadel serve --seal file --insecure-http \
  --listen 127.0.0.1:0 --data-dir "$work/data" "${store_args[@]}" 2> "$work/log2" &
server_pid=$!
ready=
for _ in $(seq 1 3000); do
  url=$(grep -o 'citadel listening on [^ ]*' "$work/log2" 2>/dev/null | head -1 | awk '{print $4}' || true)
  if [ -n "$url" ] && grep -q "citadel ready" "$work/log2" && curl -fs "$url/_citadel/health" > /dev/null; then
    ready=$(date +%s%N); break
  fi
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/log2"; echo "citadel exited on restart" >&2; exit 1; }
  sleep 0.005
done
[ -n "$ready" ] || { cat "$work/log2"; echo "citadel did not become ready again" >&2; exit 1; }
target/release/citadel-bench startup --json "$json" --markdown "$markdown" \
  --ms "$(( (ready - started) / 1000000 ))"
