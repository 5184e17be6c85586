#!/usr/bin/env bash
# From a known launch error to the relaunched worker: sessions whose codex profile carries a
# flag the CLI no longer takes (`--full-auto`), run with the simulated codex. Measured from
# the journals: the worker's error line (`unexpected argument`) -> the coordinator's
# `recovery_relaunch` -> the relaunched worker's first event (`spawned`) -> its first event
# from the agent itself (the CLI's own start-up included). Prints min, median and max over N
# sessions, in ms.
#
# Usage: bench/recovery_relaunch.sh [sessions, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
cargo build --release --quiet
bin="$PWD/target/release/orchestrate"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
git -C "$scratch" init -q -b main repo
git -C "$scratch/repo" -c user.name=b -c user.email=b@b commit -q --allow-empty -m init
printf '[review]\nenabled = false\n\n[agents.codex]\nargs = ["--full-auto"]\n' > "$scratch/orchestrate.toml"
printf '[[tasks]]\nid = "t"\nagent = "codex"\nprompt = "p"\n' > "$scratch/plan.toml"
for _ in $(seq "$runs"); do
  out=$(cd "$scratch" && ORCHESTRATE_SIM_SPEED=0 "$bin" --workspace ws run --simulate --no-dashboard \
    --target repo --plan plan.toml go)
  id=$(echo "$out" | awk '/^session /{print $2; exit}')
  echo "$scratch/ws/$id"
done | python3 -c '
import json, sys, statistics
from datetime import datetime
def ms(e): return datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp() * 1000
def events(path): return [json.loads(l) for l in open(path) if l.strip()]
decide, spawn, first = [], [], []
for d in sys.stdin.read().split():
    worker = events(d + "/events/codex-t.jsonl")
    error = next(ms(e) for e in worker if "unexpected argument" in e["payload"].get("text", ""))
    relaunch = next(ms(e) for e in events(d + "/orchestrator.jsonl") if e["payload"].get("phase") == "recovery_relaunch")
    spawns = [i for i, e in enumerate(worker) if e["payload"].get("phase") == "spawned"]
    spawned = ms(worker[spawns[1]])
    own = ms(worker[spawns[1] + 1])
    decide.append(relaunch - error); spawn.append(spawned - error); first.append(own - error)
for name, v in (("error -> relaunch decided", decide), ("error -> worker spawned", spawn),
                ("error -> agent first event", first)):
    print("%-28s min %.1f ms  median %.1f ms  max %.1f ms  (%d sessions)" % (name, min(v), statistics.median(v), max(v), len(v)))
'
