#!/usr/bin/env bash
# What the build needs beyond Rust: a C compiler, make and perl (librdkafka and its configure,
# built from rdkafka-sys's bundled source), and the OpenSSL headers with pkg-config (the Kafka
# adapter's TLS and SASL SCRAM). Idempotent: installs only the Debian packages that are missing.
set -euo pipefail

as_root() { if ((EUID == 0)); then "$@"; else sudo "$@"; fi; }

missing=()
for package in build-essential perl pkg-config libssl-dev; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]} == 0)); then
  echo "build dependencies: present"
  exit 0
fi
echo "installing: ${missing[*]}"
as_root apt-get update -q
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
