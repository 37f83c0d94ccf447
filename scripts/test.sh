#!/usr/bin/env bash
# test.sh runs the whole suite against a throwaway private PostgreSQL that it
# starts and removes itself. Extra arguments go to `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d /tmp/agentdesk-testpg.XXXXXX)
chmod 755 "$dir"
port=$(( 40000 + RANDOM % 10000 ))
cleanup() { scripts/pg.sh stop "$dir/pg" || true; rm -rf "$dir"; }
trap cleanup EXIT
AGENTDESK_TEST_DATABASE_URL=$(scripts/pg.sh start "$dir/pg" "$port" fast)
export AGENTDESK_TEST_DATABASE_URL
echo "test: throwaway PostgreSQL on port $port" >&2
go test -race -timeout 20m "${@:-./...}"
