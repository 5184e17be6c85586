#!/usr/bin/env bash
# From a review's last verdict to its action applied: sessions whose worker reaches a
# milestone and keeps working, reviewed by the simulated claude, codex and gemini, two of
# them with a concern (rule 2: the worker is paused). Measured from the journals: the last
# reviewer's `exited` event -> the `review_decision` event -> the reviewed worker's `paused`
# event. Prints min, median and max over N sessions, in ms.
#
# Usage: bench/review_decision.sh [sessions, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
cargo build --release --quiet
bin="$PWD/target/release/orchestrate"
scratch=$(mktemp -d)
trap '"$bin" --workspace "$scratch/ws" kill latest >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT
git -C "$scratch" init -q -b main repo
git -C "$scratch/repo" -c user.name=b -c user.email=b@b commit -q --allow-empty -m init
python3 - "$scratch" <<'PY'
import json, sys
line = '{"type":"milestone","payload":{"text":"the endpoint answers"}}'
cmd = "echo '%s'; sleep 30" % line
open(sys.argv[1] + "/orchestrate.toml", "w").write(
    '[review]\nenabled = true\n\n[agents.work]\nkind = "events"\ncommand = ["sh", "-c", %s]\n' % json.dumps(cmd))
open(sys.argv[1] + "/plan.toml", "w").write('[[tasks]]\nid = "t"\nagent = "work"\nprompt = "p"\n')
PY
for _ in $(seq "$runs"); do
  id=$(cd "$scratch" && ORCHESTRATE_SIM_SPEED=0 ORCHESTRATE_SIM_VERDICT_CLAUDE=concern ORCHESTRATE_SIM_VERDICT_CODEX=concern \
    "$bin" --workspace ws run --simulate --target repo --plan plan.toml go | awk '/^session /{print $2; exit}')
  for _ in $(seq 100); do
    grep -q '"phase":"paused"' "$scratch/ws/$id/events/work-t.jsonl" 2>/dev/null && break
    sleep 0.1
  done
  "$bin" --workspace "$scratch/ws" kill "$id" >/dev/null
  echo "$scratch/ws/$id"
done | python3 -c '
import json, sys, glob, statistics
from datetime import datetime
def ms(e): return datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp() * 1000
def events(path): return [json.loads(l) for l in open(path) if l.strip()]
decide, apply = [], []
for d in sys.stdin.read().split():
    last = max(ms(e) for p in glob.glob(d + "/events/review-*.jsonl") for e in events(p) if e["payload"].get("phase") == "exited")
    decision = next(ms(e) for e in events(d + "/orchestrator.jsonl") if e["payload"].get("phase") == "review_decision")
    paused = next(ms(e) for e in events(d + "/events/work-t.jsonl") if e["payload"].get("phase") == "paused")
    decide.append(decision - last); apply.append(paused - last)
for name, v in (("verdict -> decision", decide), ("verdict -> worker paused", apply)):
    print("%-26s min %.1f ms  median %.1f ms  max %.1f ms  (%d sessions)" % (name, min(v), statistics.median(v), max(v), len(v)))
'
