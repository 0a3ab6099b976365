#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster for tests and benchmarks on 127.0.0.1:${PGPORT:-54329}
# (data in ${PGDATA_DIR:-/tmp/valueverse-pg}); prints the DATABASE_URL to use. Idempotent.
set -euo pipefail
PORT="${PGPORT:-54329}"
DIR="${PGDATA_DIR:-/tmp/valueverse-pg}"
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[ -x "$BIN/postgres" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
RUN_AS=()
if [ "$(id -u)" = 0 ]; then RUN_AS=(runuser -u postgres --); chown postgres "$(dirname "$DIR")" 2>/dev/null || true; fi

if ! "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
  if [ ! -f "$DIR/PG_VERSION" ]; then
    mkdir -p "$DIR"; [ "$(id -u)" = 0 ] && chown postgres "$DIR"
    "${RUN_AS[@]}" "$BIN/initdb" -D "$DIR" -U postgres -A trust --no-sync >/dev/null
    # The brief's settings scaled to a 2-core test box; fsync and synchronous_commit stay on
    # (acknowledged events must be durable).
    cat >> "$DIR/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
max_connections = 300
shared_buffers = 512MB
work_mem = 10MB
maintenance_work_mem = 256MB
random_page_cost = 1.1
effective_io_concurrency = 200
wal_buffers = 16MB
checkpoint_completion_target = 0.9
max_wal_size = 8GB
min_wal_size = 2GB
synchronous_commit = on
unix_socket_directories = '/tmp'
CONF
  fi
  "${RUN_AS[@]}" "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w start >/dev/null
fi
echo "postgres://postgres@127.0.0.1:$PORT/postgres"
