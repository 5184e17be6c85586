#!/usr/bin/env bash
# The dashboard's CPU use while nothing happens, over 30 s, in a real terminal (tmux, 200x60)
# on a finished session, or with LIVE=1 on a running one: 8 simulated workers that stay
# alive and silent (its clock then ticks every second). Reads the process's on-CPU time (ns)
# from /proc/<pid>/schedstat.
# Run from the crate root after `cargo build --release`: bash bench/idle_cpu.sh
set -euo pipefail
BIN=${BIN:-$PWD/target/release/orchestrate}
SECONDS_MEASURED=${SECONDS_MEASURED:-30}
WS=$(mktemp -d)
SOCKET=orchestrate-idle-$$
trap 'tmux -L "$SOCKET" kill-server 2>/dev/null || true; rm -rf "$WS"' EXIT
if [[ ${LIVE:-0} == 1 ]]; then
  git init -q -b main "$WS/repo"
  git -C "$WS/repo" -c user.name=b -c user.email=b@b commit -q --allow-empty -m init
  for i in 1 2 3 4 5 6 7 8; do
    printf '[[tasks]]\nid = "h%d"\nagent = "claude"\nprompt = "p"\n\n' "$i"
  done > "$WS/plan.toml"
  ORCHESTRATE_SIM_SCENARIO=hang ORCHESTRATE_SIM_SPEED=0 "$BIN" --workspace "$WS" run --simulate \
    --parallelism 8 --target "$WS/repo" --plan "$WS/plan.toml" live < /dev/null > /dev/null
  trap '"$BIN" --workspace "$WS" control latest stop > /dev/null 2>&1 || true; sleep 1; tmux -L "$SOCKET" kill-server 2>/dev/null || true; rm -rf "$WS"' EXIT
else
  "$BIN" --workspace "$WS" demo --no-dashboard --speed 0 > /dev/null
fi
tmux -L "$SOCKET" new-session -d -s idle -x 200 -y 60 "$BIN --workspace $WS dashboard"
sleep ${WARMUP:-5}
PANE=$(tmux -L "$SOCKET" display-message -p -t idle '#{pane_pid}')
PID=$(pgrep -P "$PANE" -f orchestrate || echo "$PANE")
on_cpu() { awk '{print $1}' "/proc/$PID/schedstat"; }
START=$(on_cpu)
sleep "$SECONDS_MEASURED"
END=$(on_cpu)
awk -v a="$START" -v b="$END" -v s="$SECONDS_MEASURED" \
  'BEGIN { printf "dashboard idle over %d s: %.1f ms on CPU = %.3f%% of a core\n", s, (b - a) / 1e6, (b - a) / 1e7 / s }'
