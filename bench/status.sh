#!/usr/bin/env bash
# `status` and the session list on big workspaces: one session whose workers journaled about
# 1 GB (8 simulated Claude workers, chatty at full speed, run through the product), then 24 more
# ordinary sessions beside it. Prints wall time and peak RSS of `status SESSION`, `status`
# (the list) and `status --json`, best of 5 runs each.
# Run from the crate root after `cargo build --release`: bash bench/status.sh
# GB=0.25 makes a smaller session (quicker to generate).
set -euo pipefail
BIN=${BIN:-$PWD/target/release/orchestrate}
GB=${GB:-1}
WS=$(mktemp -d)
trap 'rm -rf "$WS"' EXIT
export HOME=$WS/home ORCHESTRATE_SIM_SPEED=0
mkdir -p "$HOME/.config/orchestrate"
# No reviews: the reviewers would play the chatty story too.
printf '[review]\nenabled = false\n' > "$HOME/.config/orchestrate/orchestrate.toml"
git init -q -b main "$WS/repo" && git -C "$WS/repo" -c user.name=b -c user.email=b@b commit -q --allow-empty -m init
plan=$WS/plan.toml
: > "$plan"
for i in 1 2 3 4 5 6 7 8; do
  printf '[[tasks]]\nid = "t%d"\nagent = "claude"\nprompt = "p"\n\n' "$i" >> "$plan"
done
# About 330 bytes of journal per chatty line.
lines=$(awk -v gb="$GB" 'BEGIN { printf "%d", gb * 1e9 / 8 / 330 }')
start=$(date +%s.%N)
ORCHESTRATE_SIM_SCENARIO=chatty ORCHESTRATE_SIM_LINES=$lines \
  "$BIN" --workspace "$WS/ws" run --simulate --no-dashboard --parallelism 8 \
  --target "$WS/repo" --plan "$plan" "storm" > "$WS/run.log" 2>&1 || { tail -5 "$WS/run.log"; exit 1; }
big=$(ls "$WS/ws" | grep '^orch_' | head -1)
bytes=$(du -cb "$WS/ws/$big/events" | tail -1 | cut -f1)
printf 'generated %s: %.2f GB of journals in %.0f s\n' "$big" "$(awk -v b="$bytes" 'BEGIN{print b/1e9}')" \
  "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')"
printf '[[tasks]]\nid = "x"\nagent = "claude"\nprompt = "p"\n\n[[tasks]]\nid = "y"\nagent = "codex"\nprompt = "q"\n' > "$WS/small.toml"
for _ in $(seq 24); do
  "$BIN" --workspace "$WS/ws" run --simulate --no-dashboard --target "$WS/repo" --plan "$WS/small.toml" "small" > /dev/null 2>&1
done
echo "sessions: $(ls "$WS/ws" | grep -c '^orch_')"

best_of_5() {
  local label=$1; shift
  local best_s=999 best_kb=0
  for _ in 1 2 3 4 5; do
    local t0 t1
    t0=$(date +%s%N)
    /usr/bin/time -f '%M' -o "$WS/time" "$@" > /dev/null
    t1=$(date +%s%N)
    s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print (b-a)/1e9}')
    kb=$(cat "$WS/time")
    if awk -v a="$s" -v b="$best_s" 'BEGIN{exit !(a<b)}'; then best_s=$s; best_kb=$kb; fi
  done
  printf '%-44s %6.1f ms  %6.1f MB peak RSS\n' "$label" "$(awk -v s="$best_s" 'BEGIN{print s*1000}')" \
    "$(awk -v k="$best_kb" 'BEGIN{print k/1024}')"
}
best_of_5 "status $big ($GB GB)" "$BIN" --workspace "$WS/ws" status "$big"
best_of_5 "status $big --json" "$BIN" --workspace "$WS/ws" status "$big" --json
best_of_5 "status (list of 25 sessions)" "$BIN" --workspace "$WS/ws" status
best_of_5 "status --json (25 sessions)" "$BIN" --workspace "$WS/ws" status --json
