#!/usr/bin/env bash
# Make sure the real servers the tests talk to are running: Postgres (127.0.0.1:5432, user postgres,
# trust auth), RabbitMQ (127.0.0.1:5672, guest/guest, with rabbitmqctl for test vhosts) and
# Mosquitto (127.0.0.1:1883, anonymous; the messenger's tests also start their own from its binary).
# Starts them when installed but stopped; on Debian as root, installs them when missing.
# Skipped when ACOUSTACK_TEST_POSTGRES_URL / ACOUSTACK_TEST_AMQP_URL / ACOUSTACK_TEST_MQTT point
# elsewhere.
set -euo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # name port seconds
  for _ in $(seq "$3"); do port_open "$2" && return 0; sleep 1; done
  echo "ensure-test-servers: $1 did not open 127.0.0.1:$2 within $3 s" >&2
  return 1
}

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "ensure-test-servers: $* missing; install it (Debian: apt-get install $*) or set" \
         "ACOUSTACK_TEST_POSTGRES_URL / ACOUSTACK_TEST_AMQP_URL" >&2
    exit 1
  fi
  echo "ensure-test-servers: installing $*"
  [ -n "${ACOUSTACK_APT_UPDATED:-}" ] || { apt-get update -qq; export ACOUSTACK_APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_postgres() {
  [ -n "${ACOUSTACK_TEST_POSTGRES_URL:-}" ] && return 0
  port_open 5432 && return 0
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  local version
  version=$(ls /etc/postgresql | sort -V | tail -1)
  # Tests connect as postgres over TCP without a password, as on the build machines.
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! grep -q "acoustack-tests" "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust # acoustack-tests\nhost all all ::1/128 trust # acoustack-tests' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_port Postgres 5432 60
}

ensure_rabbitmq() {
  [ -n "${ACOUSTACK_TEST_AMQP_URL:-}" ] && return 0
  if port_open 5672 && command -v rabbitmqctl >/dev/null; then return 0; fi
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  port_open 5672 || rabbitmq-server -detached
  wait_port RabbitMQ 5672 120
  rabbitmqctl -q await_startup >/dev/null 2>&1 || true
}

ensure_mosquitto() {
  # The messenger's tests also need the binary (their own broker) and openssl (its certificate).
  command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || apt_install mosquitto
  command -v openssl >/dev/null || apt_install openssl
  [ -n "${ACOUSTACK_TEST_MQTT:-}" ] && return 0
  port_open 1883 && return 0
  # Our own small configuration: loopback only, anonymous, nothing kept on disk.
  local conf="${TMPDIR:-/tmp}/acoustack-tests-mosquitto.conf"
  printf 'listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\n' >"$conf"
  "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -d -c "$conf"
  wait_port Mosquitto 1883 30
}

ensure_postgres
ensure_rabbitmq
ensure_mosquitto
echo "ensure-test-servers: Postgres, RabbitMQ and Mosquitto are up"
