#!/usr/bin/env bash
# Starts a throwaway PostgreSQL for the replica tests and prints the URL to
# export as C66BOT_TEST_DATABASE_URL. Debian's postgresql package is
# installed when missing (as root). The server runs as the unprivileged
# "postgres" user, in a data directory under /tmp, on loopback only; run
# it again to get the same server (it is started only once).
#
#   export C66BOT_TEST_DATABASE_URL=$(bash .ci/postgres.sh)
set -euo pipefail

port=${C66BOT_TEST_PG_PORT:-55432}
data=${C66BOT_TEST_PG_DATA:-/tmp/c66bot-pg}
url="postgres://c66bot:c66bot@127.0.0.1:${port}/c66bot_test?sslmode=disable"

bindir() {
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/pg_ctl" ]; then echo "$d"; return; fi
  done
}

if [ -z "$(bindir)" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "PostgreSQL is not installed; run as root to install Debian's postgresql" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
fi
bin=$(bindir)

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home "$data" postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

if ! as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  if [ ! -s "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    [ "$(id -u)" = 0 ] && chown postgres "$data"
    as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust --no-sync >/dev/null
  fi
  # fsync off: a test database that a crash may lose; the tests kill
  # c66bot, never PostgreSQL.
  as_pg "$bin/pg_ctl" -D "$data" -l "$data/log" -w -o "-h 127.0.0.1 -p $port -k /tmp -c fsync=off -c max_connections=300" start >/dev/null
fi

psql_pg() { as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
if [ "$(psql_pg -c "select 1 from pg_roles where rolname='c66bot'")" != 1 ]; then
  psql_pg -c "create role c66bot login password 'c66bot' createdb"
fi
if [ "$(psql_pg -c "select 1 from pg_database where datname='c66bot_test'")" != 1 ]; then
  psql_pg -c "create database c66bot_test owner c66bot"
fi
echo "$url"
