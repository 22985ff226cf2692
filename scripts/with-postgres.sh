#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL cluster: installs Debian's `postgresql` if it is
# missing, `initdb`s a temporary folder as the `postgres` user, starts it with `pg_ctl` on a free
# loopback port, exports its URL as MOONBASE_TEST_POSTGRES_URL, runs the command, and always
# stops the cluster and removes the folder (even when the command fails or is interrupted).
# Exits with the command's status; fails (never skips) when the cluster cannot start.
# Also exported: MOONBASE_TEST_POSTGRES_DATA, the cluster's data folder (its postmaster.pid names
# the server's process). Tests run without durability (fsync off); MOONBASE_POSTGRES_DURABLE=1
# keeps PostgreSQL's defaults instead, as benchmarks want. The server offers TLS, with a
# self-signed certificate for 127.0.0.1 and localhost exported as MOONBASE_TEST_POSTGRES_CA
# (connections that prefer TLS, the default, use it); MOONBASE_POSTGRES_TLS=0 leaves it out.
#
#   scripts/with-postgres.sh swift test --filter RecordStoreTests
set -euo pipefail

[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

pg_bin() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$found" ] && [ -x "$found/initdb" ] && echo "$found"
}

bin=$(pg_bin || true)
if [ -z "$bin" ]; then
  echo "with-postgres: installing Debian's postgresql" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  bin=$(pg_bin) || { echo "with-postgres: postgresql installed, but no initdb under /usr/lib/postgresql" >&2; exit 1; }
fi

# initdb and the server refuse to run as root: they run as `postgres` (Debian's package makes it).
as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"
  elif [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"
  else sudo -u postgres -- "$@"
  fi
}

cluster=$(mktemp -d /tmp/moonbase-pg.XXXXXX)
chmod 755 "$cluster"
chown postgres: "$cluster" 2>/dev/null || $SUDO chown postgres: "$cluster"

stop() {
  as_postgres "$bin/pg_ctl" -D "$cluster/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$cluster" 2>/dev/null || $SUDO rm -rf "$cluster"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free loopback port: bind port 0 and read what the kernel chose.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
  || shuf -i 20000-60000 -n 1)

password=moonbase
echo "$password" >"$cluster/pwfile"
chown postgres: "$cluster/pwfile" 2>/dev/null || $SUDO chown postgres: "$cluster/pwfile"
as_postgres "$bin/initdb" -D "$cluster/data" -U postgres --pwfile="$cluster/pwfile" -A scram-sha-256 \
  -E UTF8 --locale=C.UTF-8 >"$cluster/initdb.log" 2>&1 \
  || { cat "$cluster/initdb.log" >&2; echo "with-postgres: initdb failed" >&2; exit 1; }
# Tests make many databases at once: room for their connections; durability is not wanted there.
options="-h 127.0.0.1 -p $port -k $cluster -c max_connections=300"
if [ "${MOONBASE_POSTGRES_TLS:-1}" = 1 ]; then
  if ! command -v openssl >/dev/null; then
    echo "with-postgres: installing Debian's openssl" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openssl >/dev/null
  fi
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$cluster/server.key" -out "$cluster/server.crt" >"$cluster/openssl.log" 2>&1 \
    || { cat "$cluster/openssl.log" >&2; echo "with-postgres: cannot make a certificate (openssl)" >&2; exit 1; }
  chmod 600 "$cluster/server.key"
  chown postgres: "$cluster/server.key" "$cluster/server.crt" 2>/dev/null || $SUDO chown postgres: "$cluster/server.key" "$cluster/server.crt"
  options="$options -c ssl=on -c ssl_cert_file=$cluster/server.crt -c ssl_key_file=$cluster/server.key"
  export MOONBASE_TEST_POSTGRES_CA="$cluster/server.crt"
fi
[ "${MOONBASE_POSTGRES_DURABLE:-}" = 1 ] || options="$options -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
if ! as_postgres "$bin/pg_ctl" -D "$cluster/data" -l "$cluster/server.log" -w -t 60 -o "$options" start >/dev/null; then
  cat "$cluster/server.log" >&2
  echo "with-postgres: the PostgreSQL server did not start" >&2
  exit 1
fi

export MOONBASE_TEST_POSTGRES_URL="postgres://postgres:$password@127.0.0.1:$port/postgres"
export MOONBASE_TEST_POSTGRES_DATA="$cluster/data"
echo "with-postgres: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') at 127.0.0.1:$port" >&2
status=0
"$@" || status=$?
exit "$status"
