#!/usr/bin/env bash
# Installs what broker/server/tests/js_client.rs runs: Node.js and, from tests/js/package-lock.json,
# Ditto's JavaScript client. Idempotent: does nothing when both are there.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing Node.js and npm"
  if [ "$(id -u)" = 0 ]; then apt-get install -y nodejs npm; else sudo apt-get install -y nodejs npm; fi
fi
if [ ! -d tests/js/node_modules/@eclipse-ditto/ditto-javascript-client-node ] \
  || [ tests/js/package-lock.json -nt tests/js/node_modules ]; then
  npm ci --prefix tests/js --no-audit --no-fund
fi
