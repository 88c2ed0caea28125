#!/bin/sh
# The password file and the configuration are made at each start, in a tmpfs (/tmp), from the
# secret: the root filesystem stays read-only and no password is baked into the image.
set -eu

secret=${MQTT_PASSWORD_FILE:-/run/secrets/mqtt_password}
user=${MQTT_USER:-acoustack}
[ -s "$secret" ] || { echo "acoustack-mosquitto: no password in $secret (make secrets)" >&2; exit 2; }
umask 077
: >/tmp/passwd
mosquitto_passwd -b /tmp/passwd "$user" "$(cat "$secret")"
cat >/tmp/mosquitto.conf <<CONF
per_listener_settings false
allow_anonymous false
password_file /tmp/passwd
persistence true
persistence_location /mosquitto/data/
log_dest stdout
listener 1883 0.0.0.0
CONF
# A role's own limits (the fleet hub's broker: services/hub/broker.conf), mounted as *.conf here.
extra=/etc/mosquitto/acoustack.d
if ls "$extra"/*.conf >/dev/null 2>&1; then
    echo "include_dir $extra" >>/tmp/mosquitto.conf
fi
echo "acoustack-mosquitto: user $user, listening on 1883"
exec mosquitto -c /tmp/mosquitto.conf
