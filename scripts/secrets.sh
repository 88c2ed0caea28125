#!/usr/bin/env bash
# The stack's passwords, made once per machine: random, into SECRETS_FILE (default
# compose/secrets.env: git-ignored, mode 0600), which `make up` hands to docker compose after
# compose/.env. No password lives in a committed file.
#
# An existing file is kept as it is (Postgres and RabbitMQ made their users with it on their first
# start); a key it lacks is added. Each value is 48 hex digits, safe inside a URL.
# The MQTT password is also written alone into secrets/mqtt_password beside the file (a directory
# only root reads), which compose hands to the messenger and Mosquitto as a file secret (the only
# kind a read-only container takes); MQTT_PASSWORD_FILE in the file names it.
# The k3s Secret is made from the same file (k3s/README.md):
#   kubectl -n NAMESPACE create secret generic acoustack-credentials --from-env-file=compose/secrets.env
set -euo pipefail

KEYS="POSTGRES_PASSWORD RABBITMQ_PASSWORD MQTT_PASSWORD"
# Not secret, but made here too: where the MQTT password's own file is.
PATHS="MQTT_PASSWORD_FILE"
file="${SECRETS_FILE:-compose/secrets.env}"

umask 077
made_now=0
if [ ! -e "$file" ]; then
    mkdir -p "$(dirname "$file")"
    printf '# Made by scripts/secrets.sh on %s; never commit it.\n' "$(date -u +%FT%TZ)" >"$file"
    made_now=1
fi
chmod 600 "$file"
for key in $KEYS; do
    if ! grep -q "^${key}=" "$file"; then
        printf '%s=%s\n' "$key" "$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" >>"$file"
        echo "secrets: made $key in $file"
    fi
done

folder="$(cd "$(dirname "$file")" && pwd)/secrets"
mkdir -p "$folder"
chmod 700 "$folder"
password=$(sed -n 's/^MQTT_PASSWORD=//p' "$file")
printf '%s' "$password" >"$folder/mqtt_password"
chmod 644 "$folder/mqtt_password"  # read inside the containers; the folder keeps others out
grep -q '^MQTT_PASSWORD_FILE=' "$file" || printf 'MQTT_PASSWORD_FILE=%s\n' "$folder/mqtt_password" >>"$file"

# A stack first started before the passwords were made here keeps the users it made then, with
# the old development passwords: say how to carry on rather than let storage fail to log in.
if [ "$made_now" = 1 ] && [ -n "${DOCKER:-}" ] \
    && "$DOCKER" volume inspect acoustack_postgres-data >/dev/null 2>&1; then
    cat >&2 <<WARN
secrets: the stack's volumes already exist, made with the old development passwords. Either
  delete them (their data too): docker compose -f compose/compose.yaml down -v
  or keep them: put the passwords they were made with into $file
  (POSTGRES_PASSWORD= and RABBITMQ_PASSWORD=), then change them in Postgres and RabbitMQ.
WARN
fi
