#!/usr/bin/env bash
# The time an agent CLI waits on orchestrate's pre-tool hook: `orchestrate hook` started with
# the CLI's hook JSON on stdin, asking a live coordinator over its control socket, answering
# allow (`ls`) or deny (`rm -rf`). Prints p50, p90, p99 and max per verdict, in ms, of N
# runs each (the whole process: exec, socket round trip, policy, journal for a deny).
#
# Usage: bench/hook_roundtrip.sh [runs per verdict, default 200]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
cargo build --release --quiet
bin="$PWD/target/release/orchestrate"
scratch=$(mktemp -d)
trap '"$bin" --workspace "$scratch/ws" kill latest >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT
git -C "$scratch" init -q -b main repo
git -C "$scratch/repo" -c user.name=b -c user.email=b@b commit -q --allow-empty -m init
printf '[[tasks]]\nid = "t"\nagent = "claude"\nprompt = "wait"\n' >"$scratch/plan.toml"
id=$(cd "$scratch" && ORCHESTRATE_SIM_SCENARIO=hang "$bin" --workspace ws run --simulate \
  --target repo --plan plan.toml "hold" | awk '/^session /{print $2; exit}')
socket="$scratch/ws/$id/control.sock"
for _ in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done
measure() {
  local command=$1
  local input="{\"cwd\":\"$scratch/ws/$id/runs/t\",\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"Bash\",\"tool_input\":{\"command\":\"$command\"}}"
  for _ in $(seq "$runs"); do
    local start end
    start=$(date +%s%N)
    "$bin" hook claude --socket "$socket" --worker claude-t <<<"$input" >/dev/null 2>&1 || true
    end=$(date +%s%N)
    echo $(((end - start) / 1000))
  done | sort -n | awk -v name="$2" '{ v[NR] = $1 } END {
    printf "%-6s p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  (%d runs)\n", name,
      v[int(NR*0.5)]/1000, v[int(NR*0.9)]/1000, v[int(NR*0.99)]/1000, v[NR]/1000, NR }'
}
measure "ls -la" allow
measure "rm -rf victim" deny
