#!/usr/bin/env bash
# Adapter cost against a bare serde_json::Value parse, counted in instructions (valgrind's
# cachegrind), so the figure does not move with a shared machine's speed the way times do.
#
# For each stream of benches/adapters.rs: one pass of `normalize` and one of the bare parse,
# each minus a run that builds the streams and stops (the setup). Also prints the L1 data
# cache misses and mispredicted branches per pass, the costs an instruction count hides.
#
# Usage: bash bench/adapter-instructions.sh [stream ...]    (default: all ten, ~3 minutes)
#   e.g. bash bench/adapter-instructions.sh codex/sim gemini/fixture
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install -y valgrind)" >&2; exit 1; }
cargo bench --bench adapters --no-run 2>&1 | tail -1
bin=$(ls -t target/release/deps/adapters-* | grep -v '\.d$' | head -1)

# One run: instructions, L1 data misses, mispredicted branches.
measure() {
    ADAPTERS_PROFILE_ROUNDS=$2 ADAPTERS_PROFILE=$1 valgrind --tool=cachegrind --cache-sim=yes \
        --branch-sim=yes --cachegrind-out-file=/dev/null "$bin" nomatch 2>&1 >/dev/null |
        awk '/I *refs:/ {i=$NF} /D1  misses:/ {d=$4} /Mispredicts:/ {m=$3}
             END {gsub(",", "", i); gsub(",", "", d); gsub(",", "", m); print i, d, m}'
}

streams=("$@")
if [ ${#streams[@]} -eq 0 ]; then
    streams=(claude/fixture claude/sim claude/real codex/fixture codex/sim codex/real
        gemini/fixture gemini/sim gemini/real events/fixture)
fi

read -r setup_i setup_d setup_m <<<"$(measure "${streams[0]}" 0)"
printf '%-15s %26s %22s %22s\n' stream "instructions (normalize/bare)" "L1d misses" "mispredicts"
for stream in "${streams[@]}"; do
    read -r ni nd nm <<<"$(measure "$stream" 1)"
    read -r bi bd bm <<<"$(measure "$stream/bare" 1)"
    awk -v s="$stream" -v ni=$((ni - setup_i)) -v bi=$((bi - setup_i)) \
        -v nd=$((nd - setup_d)) -v bd=$((bd - setup_d)) -v nm=$((nm - setup_m)) -v bm=$((bm - setup_m)) \
        'BEGIN { printf "%-15s %6.0fM / %4.0fM = %5.3fx %9.0fk / %6.0fk %9.0fk / %6.0fk\n",
                 s, ni/1e6, bi/1e6, ni/bi, nd/1e3, bd/1e3, nm/1e3, bm/1e3 }'
done
