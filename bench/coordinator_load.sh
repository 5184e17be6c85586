#!/usr/bin/env bash
# The coordinator alone under the output storm: MB per second per core of its CPU.
#
# Eight workers (a custom `kind = "claude"` profile) each print LINES Claude stream-json lines
# as fast as they can (`orchestrate sim claude` playing the chatty story, the generator
# storm.sh uses); the session runs with `--no-dashboard`, so only the coordinator reads, frames,
# parses, journals and summarises. Reports the bytes the workers printed (their raw logs), the
# coordinator's CPU seconds (user + system, read from /proc until it exits) and the ratio.
#
# BIN=path/to/orchestrate compares another build (run two in turn: this machine drifts).
# Run from the crate root after `cargo build --release`: bash bench/coordinator_load.sh
set -euo pipefail
BIN=${BIN:-$PWD/target/release/orchestrate}
LINES=${LINES:-30000}
RUNS=${RUNS:-3}

run_once() {
  local work
  work=$(mktemp -d)
  trap 'pkill -f -- "$work" 2>/dev/null || true; rm -rf "$work"' RETURN
  export HOME=$work/home
  mkdir -p "$HOME/.config/orchestrate" "$work/repo"
  git init -q -b main "$work/repo"
  git -C "$work/repo" -c user.name=b -c user.email=b@b commit -q --allow-empty -m init
  cat > "$work/gen.sh" <<EOF
#!/bin/sh
# Arguments (an agent CLI's flags and prompt) are ignored.
ORCHESTRATE_SIM_SCENARIO=chatty ORCHESTRATE_SIM_SPEED=0 ORCHESTRATE_SIM_LINES=$LINES \\
  "$BIN" sim claude -p --output-format stream-json --verbose storm
EOF
  chmod +x "$work/gen.sh"
  cat > "$HOME/.config/orchestrate/orchestrate.toml" <<EOF
[review]
enabled = false
[agents.storm]
kind = "claude"
command = ["$work/gen.sh"]
env = { IS_SANDBOX = "1" }
EOF
  : > "$work/plan.toml"
  for i in 1 2 3 4 5 6 7 8; do
    printf '[[tasks]]\nid = "s%d"\nagent = "storm"\nprompt = "p"\n\n' "$i" >> "$work/plan.toml"
  done
  "$BIN" --workspace "$work/ws" run --no-dashboard --parallelism 8 --target "$work/repo" \
    --plan "$work/plan.toml" storm > "$work/follow.txt" 2>&1 &
  local run=$! coordinator="" ticks=0 now
  for _ in $(seq 400); do
    coordinator=$(pgrep -f -- "^$BIN --workspace $work/ws coordinator" | head -1 || true)
    [[ -n $coordinator ]] && break
    sleep 0.05
  done
  [[ -n $coordinator ]] || { echo "the coordinator did not start" >&2; return 1; }
  # utime + stime, until the process is gone (the last reading before it exits).
  while now=$(awk '{print $14 + $15}' "/proc/$coordinator/stat" 2>/dev/null); do
    ticks=$now
    sleep 0.1
  done
  wait "$run" || true
  local bytes
  bytes=$(cat "$work"/ws/*/raw/*.log | wc -c)
  awk -v b="$bytes" -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    s = t / hz
    printf "printed %.1f MB | coordinator cpu %.2f s | %.1f MB/s per core\n", b / 1e6, s, b / 1e6 / s
  }'
}

echo "coordinator load: 8 workers x $LINES lines, no dashboard, $RUNS runs ($BIN)"
for _ in $(seq "$RUNS"); do
  run_once
done
