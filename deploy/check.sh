#!/usr/bin/env bash
# Checks the deployment artefacts with the real tools, as CI does (.ci/run):
#   - Prometheus rules, rule unit tests and config: promtool (deploy/prometheus/check.sh)
#   - deploy/postgresql/postgresql.conf: PostgreSQL parses it (postgres -C, on a throwaway cluster)
#   - deploy/redis/redis.conf: a Redis starts with it, and the brief's settings read back
# Needs promtool (Debian: prometheus), PostgreSQL server binaries (postgresql) and redis-server.
# The Kubernetes manifests and the metrics used by alerts/dashboards are checked by `npx vitest run test/deploy`.
set -euo pipefail
cd "$(dirname "$0")"
DEPLOY="$PWD"

echo "-- prometheus"
./prometheus/check.sh

tmp="$(mktemp -d)"
redis_pid=""
cleanup() {
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "-- postgresql.conf"
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[ -x "$BIN/postgres" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
RUN_AS=()
if [ "$(id -u)" = 0 ]; then RUN_AS=(runuser -u postgres --); chmod 755 "$tmp"; fi
mkdir "$tmp/pg" "$tmp/conf"
cp postgresql/postgresql.conf "$tmp/conf/valueverse.conf"
[ "$(id -u)" = 0 ] && chown -R postgres "$tmp/pg" "$tmp/conf"
"${RUN_AS[@]}" "$BIN/initdb" -D "$tmp/pg" -U postgres -A trust --no-sync >/dev/null
echo "include '$tmp/conf/valueverse.conf'" >> "$tmp/pg/postgresql.conf"
# postgres -C loads the whole configuration (an unknown name or a bad value is fatal) and prints one setting.
for setting in max_connections:200 shared_buffers:1048576 effective_cache_size:3145728 work_mem:10240 \
  max_wal_size:8192 max_parallel_workers_per_gather:4 synchronous_commit:on; do
  got="$("${RUN_AS[@]}" "$BIN/postgres" -D "$tmp/pg" -C "${setting%%:*}")"
  [ "$got" = "${setting#*:}" ] || { echo "postgresql.conf: ${setting%%:*} is '$got', expected '${setting#*:}'" >&2; exit 1; }
done
echo "  postgresql.conf: parsed by $("$BIN/postgres" --version)"

echo "-- redis.conf"
port=6391
redis-server "$DEPLOY/redis/redis.conf" --port "$port" --dir "$tmp" --daemonize no --logfile "$tmp/redis.log" &
redis_pid=$!
for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$port" ping >/dev/null || { echo "redis-server did not start with redis.conf:" >&2; cat "$tmp/redis.log" >&2; exit 1; }
for setting in maxmemory:4294967296 maxmemory-policy:allkeys-lru tcp-keepalive:60 timeout:300 tcp-backlog:511 \
  databases:16 "save:900 1 300 10 60 10000"; do
  got="$(redis-cli -p "$port" config get "${setting%%:*}" | sed -n 2p)"
  [ "$got" = "${setting#*:}" ] || { echo "redis.conf: ${setting%%:*} is '$got', expected '${setting#*:}'" >&2; exit 1; }
done
echo "  redis.conf: loaded by $(redis-server --version | cut -d' ' -f1-3)"
redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
wait "$redis_pid" 2>/dev/null || true
redis_pid=""
echo "deploy checks passed"
