#!/usr/bin/env bash
# How close a busy worker is held to its CPU limit (sandbox.cpu_percent): a one-task session
# whose agent is `while :; do :; done`, measured from outside through /proc over a window,
# for a few limits. Prints limit, measured share of one CPU, and what orchestrate's own
# sampler reported (status --json).
#
# Usage: bench/cpu_limit.sh [seconds per limit, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
window=${1:-10}
cargo build --release --quiet
bin="$PWD/target/release/orchestrate"
tck=$(getconf CLK_TCK)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
git -C "$scratch" init -q -b main repo
git -C "$scratch/repo" -c user.name=b -c user.email=b@b commit -q --allow-empty -m init
printf '[[tasks]]\nid = "t"\nagent = "busy"\nprompt = "spin"\n' >"$scratch/plan.toml"
for limit in 25 50 75; do
  printf '[sandbox]\ncpu_percent = %s\n\n[agents.busy]\nkind = "events"\ncommand = ["sh", "-c", "while :; do :; done"]\n' \
    "$limit" >"$scratch/orchestrate.toml"
  id=$(cd "$scratch" && "$bin" --workspace ws run --simulate --target repo --plan plan.toml spin |
    awk '/^session /{print $2; exit}')
  pid=""
  for _ in $(seq 100); do
    pid=$("$bin" --workspace "$scratch/ws" status "$id" --json | sed -n 's/.*"pid": \([0-9]*\),.*/\1/p' | tail -1)
    [ -n "$pid" ] && [ -e "/proc/$pid/stat" ] && break
    sleep 0.1
  done
  sleep 2 # past the sampler's first period
  ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
  before=$(ticks)
  sleep "$window"
  after=$(ticks)
  reported=$("$bin" --workspace "$scratch/ws" status "$id" --json | sed -n 's/.*"cpu_percent": \([0-9.]*\),*$/\1/p' | tail -1)
  awk -v l="$limit" -v b="$before" -v a="$after" -v t="$tck" -v w="$window" -v r="$reported" \
    'BEGIN { printf "limit %3d%%   measured %5.1f%%   reported by status %s%%\n", l, (a-b)/t/w*100, r }'
  "$bin" --workspace "$scratch/ws" kill "$id" >/dev/null
done
