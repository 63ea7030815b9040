#!/usr/bin/env bash
# Fuzz the Ditto Protocol envelope parser for a bounded time: scripts/fuzz.sh [SECONDS] (default 60).
# Seeds fuzz/corpus/envelope from the JSON examples in ../shared/ditto-reference (override with
# DITTO_EXAMPLES); libFuzzer keeps adding what it finds there. A crash fails the script and its
# input lands in fuzz/artifacts/envelope/; replay it with
#   cargo fuzz run --sanitizer none envelope fuzz/artifacts/envelope/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
examples=${DITTO_EXAMPLES:-../shared/ditto-reference/protocol-examples}
corpus=fuzz/corpus/envelope

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# One seed file per ```json block, named after its page (the same names each run, so re-seeding
# overwrites instead of piling up). The Jekyll {% raw %} markers are not part of the JSON.
mkdir -p "$corpus"
if [[ -d $examples ]]; then
  find "$examples" -name '*.md' -exec awk -v dir="$corpus" -v root="$examples/" '
    FNR == 1 { n = 0; name = substr(FILENAME, length(root) + 1); sub(/\.md$/, "", name); gsub(/\//, "_", name) }
    /^```json/ { out = sprintf("%s/%s-%d.json", dir, name, ++n); next }
    /^```/ && out { close(out); out = ""; next }
    out { gsub(/[{]% (end)?raw %[}]/, ""); print > out }
  ' {} +
  echo "seeded $corpus from $examples: $(find "$corpus" -type f | wc -l) files in the corpus"
else
  echo "warning: $examples not found; fuzzing from the existing corpus only" >&2
fi

# --sanitizer none: cargo-fuzz's default AddressSanitizer needs the nightly-only -Zsanitizer
# flag; libFuzzer's coverage instrumentation itself works on stable. twinwire forbids unsafe
# code, so ASan would add little.
cargo fuzz run --fuzz-dir fuzz --sanitizer none envelope "$corpus" -- -max_total_time="$seconds"
