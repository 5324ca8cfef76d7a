#!/usr/bin/env bash
# A throwaway PostgreSQL server for the engine matrix (tests/test_engines.py): `make postgres`, and the
# tests themselves when no server is named. Prints the connection URL as its last line.
#
#   bash tests/postgres.sh          start it (or find it running) and print its URL
#   bash tests/postgres.sh stop     stop it
#
# It uses the machine's PostgreSQL binaries (Debian: `apt-get install postgresql`; they live in
# /usr/lib/postgresql/<version>/bin), a data folder of its own ($USEROPS_PG_DIR, default
# $TMPDIR/userops-postgres) and port $USEROPS_PG_PORT (default 54329), listening on 127.0.0.1 only and
# trusting local connections: a server for tests, never for data. Durability is off (fsync, full-page
# writes), which PostgreSQL's own docs recommend for throwaway data. As root it runs the server as the
# `postgres` user (PostgreSQL refuses to run as root), which Debian's package creates.
set -euo pipefail
DIR="${USEROPS_PG_DIR:-${TMPDIR:-/tmp}/userops-postgres}"
PORT="${USEROPS_PG_PORT:-54329}"
URL="postgres://postgres@127.0.0.1:${PORT}/postgres"

bin=""
if command -v pg_ctl >/dev/null 2>&1; then
  bin="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"
else
  for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$candidate/pg_ctl" ] && { bin="$candidate"; break; }
  done
fi
if [ -z "$bin" ]; then
  echo "tests/postgres.sh: no PostgreSQL server binaries (pg_ctl) on this machine;" \
    "install them (Debian: sudo apt-get install postgresql) or set USEROPS_TEST_POSTGRES to a server's URL" >&2
  exit 3
fi

as_owner() {  # run a command as the data folder's owner: ourselves, or `postgres` when we are root
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

if [ "${1:-start}" = "stop" ]; then
  [ -f "$DIR/PG_VERSION" ] && as_owner "$bin/pg_ctl" -D "$DIR" -m fast stop >/dev/null 2>&1 || true
  echo "stopped"
  exit 0
fi

if "$bin/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
  echo "$URL"  # running already (this folder's server, or another checkout's on the same port)
  exit 0
fi

if [ ! -f "$DIR/PG_VERSION" ]; then
  mkdir -p "$DIR"
  [ "$(id -u)" -eq 0 ] && chown postgres "$DIR"
  chmod 700 "$DIR"
  as_owner "$bin/initdb" -D "$DIR" -A trust -U postgres -E UTF8 --locale C.UTF-8 >/dev/null
fi
as_owner "$bin/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w -t 60 \
  -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off" \
  start >/dev/null
echo "$URL"
