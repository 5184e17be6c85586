#!/usr/bin/env bash
# How long after a real CLI's last line its task's outcome is in the coordinator's journal.
#
# Runs one-task sessions (the success story) with each pinned real CLI against the stub model,
# then reads the journals: the CLI's last event (its final line, as the worker's reader
# journaled it), the worker's `exited` event, and the task's outcome (`task_succeeded`, after
# the coordinator committed the work). Prints, per CLI, the minimum, median and maximum of:
#   cli exit    last line -> exited   (the CLI shutting down, plus the PTY drain)
#   ours        exited -> outcome      (the coordinator: state, commit, records)
#   total       last line -> outcome
#
# Usage: bench/real_cli_outcome.sh [runs per CLI, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
.ci/install-agent-clis >/dev/null
export PATH="$PWD/.agent-clis/node_modules/.bin:$PATH"
cargo build --release --quiet
bin="$PWD/target/release/orchestrate"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/repo"
git -C "$scratch/repo" init -q -b main
echo "# repo" >"$scratch/repo/README.md"
git -C "$scratch/repo" add -A
git -C "$scratch/repo" -c user.name=b -c user.email=b@b commit -qm init
# Claude refuses bypass mode as root unless the machine is declared a sandbox.
printf '[agents.claude]\nenv = { IS_SANDBOX = "1" }\n' >"$scratch/orchestrate.toml"
for cli in claude codex gemini; do
  printf '[[tasks]]\nid = "t"\nagent = "%s"\nprompt = "add a health endpoint"\n' "$cli" >"$scratch/$cli.toml"
  for _ in $(seq "$runs"); do
    (cd "$scratch" && "$bin" --workspace ws run --stub-model --target repo --plan "$cli.toml" \
      --no-dashboard "bench" </dev/null >/dev/null)
  done
done
python3 - "$scratch/ws" <<'PY'
import glob, json, statistics, sys
from datetime import datetime

def ms(event):
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp() * 1000

def lines(path):
    return [json.loads(l) for l in open(path) if l.strip()]

rows = {}
for session in sorted(glob.glob(sys.argv[1] + "/orch_*")):
    coordinator = lines(session + "/orchestrator.jsonl")
    started = next(e for e in coordinator if e["payload"].get("phase") == "task_started")
    outcome = next(e for e in coordinator if e["payload"].get("phase") == "task_succeeded")
    worker = started["payload"]["worker"]
    events = lines(f"{session}/events/{worker}.jsonl")
    exited = next(e for e in events if e["payload"].get("phase") == "exited")
    last = [e for e in events if e["seq"] < exited["seq"]
            and e["payload"].get("phase") not in ("spawned", "stopping")][-1]
    rows.setdefault(worker.split("-")[0], []).append(
        (ms(exited) - ms(last), ms(outcome) - ms(exited), ms(outcome) - ms(last)))

def summary(values):
    return f"{min(values):6.0f} {statistics.median(values):6.0f} {max(values):6.0f}"

print(f"{'cli':<8} {'n':>2}   cli exit (min/med/max ms)   ours (min/med/max ms)   total (min/med/max ms)")
for cli, values in sorted(rows.items()):
    columns = list(zip(*values))
    print(f"{cli:<8} {len(values):>2}   {summary(columns[0])}          {summary(columns[1])}      {summary(columns[2])}")
PY
