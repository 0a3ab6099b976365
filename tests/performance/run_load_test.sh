#!/usr/bin/env bash
# Load tests as the performance guide names them:
#   ./tests/performance/run_load_test.sh quick         # 1 minute, 100 virtual users
#   ./tests/performance/run_load_test.sh progressive   # 50 → 100 → 200 → 400 users, 30 s each
#   ./tests/performance/run_load_test.sh stress        # 2× the target load (33,334 events/s offered), 2 minutes
# Target: LOAD_TEST_URL (default http://127.0.0.1:3000; loopback only) with LOAD_TEST_API_KEY, or
# --start-server. Other options: --help. See tests/performance/README.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mode="${1:-}"
case "$mode" in
  quick | progressive | stress) shift ;;
  -h | --help) exec node --import tsx "$ROOT/tests/performance/load.ts" --help ;;
  *)
    echo "usage: $0 quick|progressive|stress [--start-server] [--duration S] [--users N] [--help]" >&2
    exit 2
    ;;
esac

cd "$ROOT"
exec node --import tsx tests/performance/load.ts --mode "$mode" "$@"
