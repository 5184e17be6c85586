#!/usr/bin/env bash
# Line coverage, measured with rustc's own instrumentation (-C instrument-coverage) and the
# toolchain's llvm-tools (rustup component add llvm-tools).
#
#   scripts/coverage.sh          the meta room (src/meta, src/mcp): its unit tests, the shared
#                                store suite (tests/meta_store.rs), the MCP, meta command
#                                line and path lease tests
#   scripts/coverage.sh --all    the whole suite; prints the crate's figure as well
#
# Builds into target/coverage (a separate, instrumented build: the first run takes minutes),
# prints one line per file of the meta room and the totals. Needs redis-server for the Redis
# half of the store suite, and the pinned agent CLIs on PATH (a real-CLI test is in both).
set -euo pipefail
cd "$(dirname "$0")/.."

host=$(rustc -vV | sed -n 's/^host: //p')
tools="$(rustc --print sysroot)/lib/rustlib/$host/bin"
if [[ ! -x "$tools/llvm-profdata" ]]; then
  echo "coverage: the toolchain's llvm-tools are missing: rustup component add llvm-tools" >&2
  exit 2
fi

target="$PWD/target/coverage"
raw="$target/profraw"
rm -rf "$raw"
mkdir -p "$raw"
export CARGO_TARGET_DIR="$target"
export RUSTFLAGS="-C instrument-coverage"
export LLVM_PROFILE_FILE="$raw/%p-%m.profraw"
export CI="${CI:-true}"

if [[ "${1:-}" == "--all" ]]; then
  selection=()
  cargo test --locked --no-fail-fast >"$target/test.log" 2>&1 || echo "coverage: some tests failed (see $target/test.log)" >&2
else
  selection=(--lib --test meta_store --test mcp --test meta_cli --test meta_leases)
  cargo test --locked --lib -- meta:: mcp:: >"$target/test.log" 2>&1
  cargo test --locked --test meta_store --test mcp --test meta_cli --test meta_leases \
    >>"$target/test.log" 2>&1
fi

"$tools/llvm-profdata" merge -sparse "$raw"/*.profraw -o "$target/merged.profdata"

# Every binary that ran: the test executables and the orchestrate binary they spawn.
mapfile -t binaries < <(
  cargo test --locked "${selection[@]}" --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p'
)
objects=(-object "$target/debug/orchestrate")
for b in "${binaries[@]}"; do objects+=(-object "$b"); done

report=$("$tools/llvm-cov" report --instr-profile="$target/merged.profdata" "${objects[@]}" \
  --ignore-filename-regex='/\.cargo/registry/|/rustc/|/tests/|/benches/')

# Columns: file, regions, missed, cover, functions, missed, executed, lines, missed, cover, ...
echo "$report" | awk -v all="${1:-}" '
  $1 ~ /(^|\/)(src\/)?(meta|mcp)\// {
    printf "%-28s %6d lines %6d missed %7.2f%%\n", $1, $8, $9, 100 * ($8 - $9) / ($8 ? $8 : 1)
    lines += $8; missed += $9
  }
  $1 == "TOTAL" { total_lines = $8; total_missed = $9 }
  END {
    printf "meta room (src/meta, src/mcp): %.1f%% of %d lines\n", 100 * (lines - missed) / lines, lines
    if (all == "--all") printf "whole crate: %.1f%% of %d lines\n", 100 * (total_lines - total_missed) / total_lines, total_lines
  }'
