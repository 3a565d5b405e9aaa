#!/bin/sh
# Write the broker's password and ACL files for the compose stack from ../.env:
# offsite-ingest (offsite), offsite-exporter (reads $SYS) and offsite-sim (the simulator).
# Devices are added afterwards, one user per device id:
#   docker run --rm -it -v "$PWD:/data" eclipse-mosquitto:2 mosquitto_passwd /data/offsite.passwd aq-0001
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC1091
. "$here/../.env"

docker run --rm -v "$here:/data" \
  -e INGEST="$MQTT_INGEST_PASSWORD" -e EXPORTER="$MQTT_EXPORTER_PASSWORD" -e SIM="$MQTT_SIM_PASSWORD" \
  eclipse-mosquitto:2 sh -c '
    rm -f /data/offsite.passwd && touch /data/offsite.passwd &&
    mosquitto_passwd -b /data/offsite.passwd offsite-ingest "$INGEST" &&
    mosquitto_passwd -b /data/offsite.passwd offsite-exporter "$EXPORTER" &&
    mosquitto_passwd -b /data/offsite.passwd offsite-sim "$SIM"'

# The project's ACL (devices publish under their own id; offsite reads everything), plus the
# two service users of this stack.
{
  cat "$here/../../mosquitto/acl.example"
  cat <<'ACL'

# The mosquitto exporter reads the broker's statistics.
user offsite-exporter
topic read $SYS/#

# `offsite simulate` publishes for many devices over one connection (demos, load tests).
user offsite-sim
topic readwrite offsite/v1/devices/#
ACL
} > "$here/offsite.acl"
echo "wrote $here/offsite.passwd and $here/offsite.acl"
