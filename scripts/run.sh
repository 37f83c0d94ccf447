#!/usr/bin/env bash
# run.sh is `make run`: a private PostgreSQL under DATA (unless DATABASE_URL is
# set), migrations, demo data on first start, then the server in the
# foreground. Ctrl-C stops the server and then the cluster.
set -euo pipefail
bin=$1 data=$2 port=$3 addr=$4
cd "$(dirname "$0")/.."
own_pg=""
if [ -z "${DATABASE_URL:-}" ]; then
  DATABASE_URL=$(scripts/pg.sh start "$data/pg" "$port")
  own_pg=1
fi
export DATABASE_URL
# Secrets that must survive restarts (ticket tokens in sent mail, widget
# tokens) are made once and kept beside the data, readable by us only.
secrets="$data/secrets.env"
if [ ! -f "$secrets" ]; then
  mkdir -p "$data"
  ( umask 077
    echo "AGENTDESK_EMAIL_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    echo "AGENTDESK_WIDGET_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  ) > "$secrets"
fi
set -a; . "$secrets"; set +a
# The demo's support addresses take mail on a local SMTP port.
export AGENTDESK_SMTP_ADDR=${AGENTDESK_SMTP_ADDR:-127.0.0.1:2525}
# A local IMAP server (dovecot on 127.0.0.1) may be polled in development.
export AGENTDESK_IMAP_ALLOW_PRIVATE=${AGENTDESK_IMAP_ALLOW_PRIVATE:-true}
stop_pg() { [ -n "$own_pg" ] && scripts/pg.sh stop "$data/pg" && echo "run: PostgreSQL stopped" >&2 || true; }
trap stop_pg EXIT
"$bin" migrate up
"$bin" seed --demo --if-empty
echo
echo "AgentDesk: http://$addr   (chat demo: http://$addr/demo/widget, mail: smtp://$AGENTDESK_SMTP_ADDR)"
"$bin" seed --print-logins
echo
"$bin" serve --addr "$addr" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server; stop_pg; trap - EXIT; exit 0' INT TERM
wait $server
