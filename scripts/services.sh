#!/usr/bin/env bash
# Make sure the brokers the tests talk to listen on 127.0.0.1: RabbitMQ (AMQP 5672) and
# Mosquitto (MQTT 1883). Idempotent: a service already listening is left alone; one that is
# down is started, installed first if its binary is missing. Fails loudly if a port stays shut.
# Overrides (rarely needed): AMQP_PORT, MQTT_PORT, MOSQUITTO_CONF, SERVICES_TIMEOUT (seconds).
set -euo pipefail

AMQP_PORT=${AMQP_PORT:-5672}
MQTT_PORT=${MQTT_PORT:-1883}
MOSQUITTO_CONF=${MOSQUITTO_CONF:-/etc/mosquitto/mosquitto.conf}
SERVICES_TIMEOUT=${SERVICES_TIMEOUT:-90}
export PATH="$PATH:/usr/sbin:/sbin" # both servers install to /usr/sbin, not on a user's PATH

as_root() { if ((EUID == 0)); then "$@"; else sudo "$@"; fi; }

# bash's /dev/tcp connects without nc; `timeout` guards against a port that drops packets.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

wait_port() { # NAME PORT LOGS: wait up to SERVICES_TIMEOUT seconds for PORT to answer
  local deadline=$((SECONDS + SERVICES_TIMEOUT))
  until port_open "$2"; do
    if ((SECONDS >= deadline)); then
      echo "ERROR: $1 is not listening on 127.0.0.1:$2 after ${SERVICES_TIMEOUT}s; its logs: $3" >&2
      as_root sh -c "tail -n 30 $3" >&2 || true # sh expands the glob in LOGS
      return 1
    fi
    sleep 1
  done
  echo "$1: started, listening on 127.0.0.1:$2 (after $((SECONDS + SERVICES_TIMEOUT - deadline))s)"
}

install_missing() { # install the Debian packages whose binaries are missing, in one apt run
  local missing=()
  command -v rabbitmq-server >/dev/null || missing+=(rabbitmq-server)
  command -v mosquitto >/dev/null || missing+=(mosquitto)
  ((${#missing[@]} == 0)) && return 0
  echo "installing: ${missing[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

amqp_up=false mqtt_up=false
port_open "$AMQP_PORT" && amqp_up=true && echo "RabbitMQ: already listening on 127.0.0.1:$AMQP_PORT"
port_open "$MQTT_PORT" && mqtt_up=true && echo "Mosquitto: already listening on 127.0.0.1:$MQTT_PORT"
if $amqp_up && $mqtt_up; then exit 0; fi
install_missing

if ! $amqp_up; then
  echo "RabbitMQ: down, starting it"
  # As root, Debian's wrapper switches to the rabbitmq user itself.
  as_root rabbitmq-server -detached
fi
if ! $mqtt_up; then
  echo "Mosquitto: down, starting it"
  # The packaged config writes its pid to /run/mosquitto, which systemd normally creates
  # (tmpfs: gone after a reboot, and never made in a container without systemd).
  if id mosquitto >/dev/null 2>&1; then
    as_root install -d -m 755 -o mosquitto -g mosquitto /run/mosquitto
  fi
  as_root mosquitto -d -c "$MOSQUITTO_CONF"
fi

# Both were started above before waiting, so their start-ups overlap.
$amqp_up || wait_port RabbitMQ "$AMQP_PORT" "/var/log/rabbitmq/*.log"
$mqtt_up || wait_port Mosquitto "$MQTT_PORT" /var/log/mosquitto/mosquitto.log
