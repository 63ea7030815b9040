#!/usr/bin/env bash
# The project's test command: brokers up, then every test. Extra arguments go to nextest,
# e.g. scripts/test.sh -p twinwire-protocol
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-deps.sh # librdkafka's build needs a C toolchain and the OpenSSL headers
bash scripts/services.sh # the adapter tests talk to the real RabbitMQ and Mosquitto
bash scripts/js-client.sh # Ditto's JavaScript client, for the compatibility test

# Run both suites even if the first fails, so one run shows every failure.
status=0
cargo nextest run --workspace --no-fail-fast "$@" || status=$?
cargo test --workspace --doc || status=$? # nextest does not run doctests
exit "$status"
