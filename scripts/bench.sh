#!/usr/bin/env bash
# The benchmark command with what it needs on a fresh Debian machine: the build dependencies,
# RabbitMQ and Mosquitto (the AMQP and MQTT scenarios) and wrk (the gateway's HTTP load), each
# installed only when missing. Arguments go to twinwire-bench (default: all), e.g.
#   scripts/bench.sh all --quick     scripts/bench.sh list     scripts/bench.sh kafka engine
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if ((EUID == 0)); then "$@"; else sudo "$@"; fi; }

bash scripts/build-deps.sh
bash scripts/services.sh
if ! command -v wrk >/dev/null; then
  echo "installing: wrk"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk
fi
(($#)) || set -- all
exec cargo run --release -p twinwire-bench -- "$@"
