#!/usr/bin/env bash
# pg.sh manages a private PostgreSQL cluster for development and tests, built
# from the system's PostgreSQL binaries. It never touches a system cluster: each
# private cluster has its own data directory and port.
#
#   scripts/pg.sh start DIR PORT [fast]   initdb if needed, start, print the URL
#   scripts/pg.sh stop DIR                stop the cluster (fast shutdown)
#   scripts/pg.sh url DIR PORT            print the connection URL
#
# "fast" turns off fsync and synchronous commit: for throwaway test clusters only.
# PostgreSQL refuses to run as root, so as root the cluster is owned by the
# "postgres" system user, and its directory is moved to /tmp when that user
# cannot reach the project's path.
set -euo pipefail

die() { echo "pg.sh: $*" >&2; exit 1; }

find_bin() {
  local dir
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"; return
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/pg_ctl" ] && { echo "$dir"; return; }
  done
  return 1
}

ensure_installed() {
  if ! find_bin >/dev/null; then
    echo "pg.sh: PostgreSQL server not found, installing it with apt-get" >&2
    [ "$(id -u)" = 0 ] || die "PostgreSQL is missing; run: sudo apt-get install -y postgresql"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  fi
}

# as_owner runs a command as the cluster owner.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# resolve_dir prints the directory the cluster really lives in. As root, the
# postgres user must be able to reach it; if it cannot, a stable /tmp twin is used
# and a symlink in the project points at it.
resolve_dir() {
  local dir=$1
  mkdir -p "$(dirname "$dir")"
  dir=$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "no 'postgres' system user; install the postgresql package"
    if [ -L "$dir" ]; then readlink -f "$dir"; return; fi
    if ! runuser -u postgres -- test -x "$(dirname "$dir")"; then
      local twin="/tmp/agentdesk-pg-$(echo "$dir" | md5sum | cut -c1-12)"
      mkdir -p "$twin"
      ln -sfn "$twin" "$dir"
      dir=$twin
    fi
    mkdir -p "$dir"
    chown postgres:postgres "$dir"
  fi
  mkdir -p "$dir"
  echo "$dir"
}

url() { echo "postgres://postgres@127.0.0.1:$2/postgres?sslmode=disable"; }

start() {
  local dir port fast=${3:-}
  port=$2
  ensure_installed
  local bin; bin=$(find_bin)
  dir=$(resolve_dir "$1")
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner mkdir -p "$dir/data" "$dir/run"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    {
      echo "listen_addresses = '127.0.0.1'"
      echo "port = $port"
      echo "unix_socket_directories = '$dir/run'"
      echo "max_connections = 400"
      echo "shared_buffers = 256MB"
      echo "work_mem = 16MB"
      echo "maintenance_work_mem = 256MB"
      echo "max_wal_size = 2GB"
      if [ "$fast" = fast ]; then
        echo "fsync = off"
        echo "synchronous_commit = off"
        echo "full_page_writes = off"
      fi
    } | as_owner tee -a "$dir/data/postgresql.conf" >/dev/null
  fi
  if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "-p $port" start >/dev/null \
      || { tail -20 "$dir/server.log" >&2; die "PostgreSQL did not start (log: $dir/server.log)"; }
  fi
  url "$dir" "$port"
}

stop() {
  local bin dir=$1
  [ -e "$dir" ] || return 0
  dir=$(readlink -f "$dir")
  bin=$(find_bin) || return 0
  if [ -f "$dir/data/PG_VERSION" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

case "${1:-}" in
  start) [ $# -ge 3 ] || die "usage: pg.sh start DIR PORT [fast]"; start "$2" "$3" "${4:-}" ;;
  stop) [ $# -ge 2 ] || die "usage: pg.sh stop DIR"; stop "$2" ;;
  url) url "$2" "$3" ;;
  *) die "usage: pg.sh start DIR PORT [fast] | stop DIR | url DIR PORT" ;;
esac
