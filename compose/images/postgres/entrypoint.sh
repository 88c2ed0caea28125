#!/bin/sh
# On the first start (no $PGDATA/PG_VERSION), make the cluster: superuser POSTGRES_USER (default
# postgres) with POSTGRES_PASSWORD, database POSTGRES_DB (default: the user's name), password
# (scram-sha-256) logins over the network, trust over the local socket. Then run the command.
set -eu

if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?must be set: the password of POSTGRES_USER}"
    user=${POSTGRES_USER:-postgres}
    db=${POSTGRES_DB:-$user}
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --pgdata="$PGDATA" --username="$user" --pwfile="$pwfile" --encoding=UTF8 \
        --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256
    rm -f "$pwfile"
    printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    if [ "$db" != postgres ]; then
        # A server on a private socket only, so nothing sees it ready before the database exists.
        pg_ctl --pgdata="$PGDATA" --wait --silent \
            --options="-c listen_addresses='' -c unix_socket_directories=/tmp" start
        createdb --host=/tmp --username="$user" "$db"
        pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop
    fi
    echo "acoustack-postgres: cluster made in $PGDATA (user $user, database $db)"
fi

exec "$@"
