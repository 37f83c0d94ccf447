#!/usr/bin/env bash
# deps.sh installs what `make run` and `make test` need and is missing, so a
# fresh Debian machine with Go gets there with no manual step.
#   scripts/deps.sh run    PostgreSQL server, UI dependencies
#   scripts/deps.sh test   the above plus Chromium, swaks and sipp for the tests
set -euo pipefail
mode=${1:-run}
cd "$(dirname "$0")/.."

need=()
have_pg() { command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; }
have_pg || need+=(postgresql)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
if [ "$mode" = test ]; then
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  command -v swaks >/dev/null 2>&1 || need+=(swaks)
  # swaks speaks STARTTLS only with Net::SSLeay, which it merely recommends.
  perl -MNet::SSLeay -e1 >/dev/null 2>&1 || need+=(libnet-ssleay-perl)
  command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing ${need[*]}" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# UI dependencies: installed from the lock file, again only when it changed.
if [ -f web/ui/package-lock.json ]; then
  stamp=web/ui/node_modules/.agentdesk-lock
  if [ ! -f "$stamp" ] || ! cmp -s web/ui/package-lock.json "$stamp"; then
    (cd web/ui && npm ci --no-audit --no-fund --loglevel=error)
    cp web/ui/package-lock.json "$stamp"
  fi
fi
go mod download
