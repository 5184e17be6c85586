#!/usr/bin/env bash
# The output storm, under orchestrate and under mprocs, alternating, in tmux at 200x60.
#
# Eight processes each print LINES Claude stream-json lines (about 420 bytes each) as fast as
# they can: `orchestrate sim claude` playing the chatty story, the same generator for both
# tools. Under orchestrate they run as a custom `kind = "claude"` agent profile with the
# dashboard open; under mprocs as eight procs. Each generator notes when it finished, then
# stays alive HOLD seconds so both tools are still running while we measure.
#
# Per tool and run: CPU seconds per MB printed (the tool's own processes: coordinator plus
# dashboard, each in brackets, or mprocs; not the generators), bytes per second the tool wrote to its terminal,
# peak RSS, and the lag: from the last generator finishing to the screen showing the final
# line of every process it shows (all eight panes for orchestrate; the selected proc for
# mprocs, which shows one at a time). For orchestrate also the time a key takes mid-storm: `?`
# until its help shows. Two ways: polling `tmux capture-pane` (each poll spawns processes on
# a machine the storm saturates, so it over-states), and a tmux control-mode client that sends
# the key and times the first output bytes carrying the help's title (tmux's own delivery
# included, no polling).
#
# Installs mprocs 0.9.6 with `cargo install --locked` into TOOLS (a cache) when missing.
# Run from the crate root after `cargo build --release`: bash bench/storm.sh
set -euo pipefail
BIN=${BIN:-$PWD/target/release/orchestrate}
TOOLS=${TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/orchestrate-bench}
LINES=${LINES:-60000}
RUNS=${RUNS:-3}
HOLD=${HOLD:-20}
COLS=200 ROWS=60

MPROCS=$TOOLS/bin/mprocs
if [[ ! -x $MPROCS ]]; then
  echo "installing mprocs 0.9.6 into $TOOLS (once)"
  cargo install --locked mprocs --version 0.9.6 --root "$TOOLS" >/dev/null 2>&1
fi
command -v tmux >/dev/null || { echo "storm.sh needs tmux" >&2; exit 1; }

WORK=$(mktemp -d)
SOCKET=orchestrate-storm-$$
trap 'tmux -L "$SOCKET" kill-server 2>/dev/null || true; pkill -f -- "$WORK" 2>/dev/null || true; rm -rf "$WORK"' EXIT
tm() { tmux -L "$SOCKET" "$@"; }

cat > "$WORK/gen.sh" <<EOF
#!/bin/sh
# Arguments (an agent CLI's flags and prompt) are ignored.
ORCHESTRATE_SIM_SCENARIO=chatty ORCHESTRATE_SIM_SPEED=0 ORCHESTRATE_SIM_LINES=$LINES \\
  "$BIN" sim claude -p --output-format stream-json --verbose storm
date +%s%N > "\$STORM_MARKS/done.\$\$"
sleep $HOLD
EOF
chmod +x "$WORK/gen.sh"
GEN_BYTES=$(ORCHESTRATE_SIM_SCENARIO=chatty ORCHESTRATE_SIM_SPEED=0 ORCHESTRATE_SIM_LINES=$LINES \
  "$BIN" sim claude -p --output-format stream-json --verbose storm | wc -c)
MB=$(awk -v b="$GEN_BYTES" 'BEGIN { printf "%.1f", 8 * b / 1e6 }')
FINAL="Checked $LINES steps."
echo "storm: 8 generators x $LINES lines = $MB MB, tmux ${COLS}x$ROWS, $RUNS runs each"

ticks=$(getconf CLK_TCK)
cpu_of() { # on-CPU seconds of the given pids (their own threads, not children)
  local total=0 p
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] || continue
    total=$((total + $(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat")))
  done
  awk -v t="$total" -v hz="$ticks" 'BEGIN { printf "%.2f", t / hz }'
}
hwm_of() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }
now_ns() { date +%s%N; }

# A control-mode client sends `?` and times the first %output carrying the help's title, three
# times (Esc closes the help between them). The clock starts once the client is attached and has
# answered a first command, so tmux's start-up under load is not counted. Prints `a/b/c` in ms.
key_by_output() {
  python3 - "$SOCKET" <<'PY' 2>/dev/null || echo -
import queue, subprocess, sys, threading, time
tmux = subprocess.Popen(["tmux", "-L", sys.argv[1], "-C", "attach", "-t", "storm"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
lines = queue.Queue()  # (when read, line): a thread reads, so old output can be told apart
def read():
    for line in tmux.stdout:
        lines.put((time.monotonic(), line))
threading.Thread(target=read, daemon=True).start()
def send(command):
    tmux.stdin.write(command + b"\n"); tmux.stdin.flush()
def wait_for(found, since, limit=5):
    while True:
        try:
            at, line = lines.get(timeout=max(0.01, since + limit - time.monotonic()))
        except queue.Empty:
            return None
        if at >= since and found(line):
            return at
send(b"display-message -p attached-and-ready")
wait_for(lambda line: line.startswith(b"attached-and-ready"), time.monotonic())
times = []
for _ in range(3):
    start = time.monotonic()
    send(b"send-keys -t storm ?")
    shown = wait_for(lambda line: line.startswith(b"%output") and b"closes)" in line, start)
    times.append("%.0f" % ((shown - start) * 1000) if shown else "-")
    send(b"send-keys -t storm Escape")
    time.sleep(0.4)
send(b"detach-client")
tmux.kill()
print("/".join(times))
PY
}

# Waits for every generator to finish, then for the screen to show `want` final lines.
# Samples the tools' CPU and RSS meanwhile (the last sample before they may exit).
measure() {
  local label=$1 want=$2; shift 2
  local pids=("$@") cpu=0 done_at shown_at key_ms=- key_out=-
  # Mid-storm, a key: orchestrate's `?` opens its help; the time until the screen shows it.
  if [[ $label == orchestrate ]]; then
    sleep 3
    local k0; k0=$(now_ns)
    tm send-keys -t storm '?'
    for _ in $(seq 500); do
      tm capture-pane -p -t storm | grep -q "Keys (Esc closes)" && break
      sleep 0.005
    done
    key_ms=$(awk -v a="$k0" -v b="$(now_ns)" 'BEGIN { printf "%.0f", (b - a) / 1e6 }')
    tm send-keys -t storm Escape
    sleep 0.5
    key_out=$(key_by_output)
    tm send-keys -t storm Escape
  fi
  while (($(ls "$MARKS" | wc -l) < 8)); do
    cpu=$(cpu_of "${pids[@]}"); sleep 0.05
  done
  done_at=$(cat "$MARKS"/done.* | sort -n | tail -1)
  while (($(tm capture-pane -p -t storm | grep -o "$FINAL" | wc -l) < want)); do
    cpu=$(cpu_of "${pids[@]}")
    if (($(now_ns) - done_at > 120000000000)); then echo "  $label: the screen never caught up" >&2; break; fi
    sleep 0.02
  done
  shown_at=$(now_ns)
  cpu=$(cpu_of "${pids[@]}")
  local rss="" each="" p
  for p in "${pids[@]}"; do rss+="$(hwm_of "$p") "; each+="$(cpu_of "$p") "; done
  local secs started_at bytes
  started_at=$(cat "$WORK/started")
  secs=$(awk -v a="$started_at" -v b="$done_at" 'BEGIN { print (b - a) / 1e9 }')
  bytes=$(stat -c %s "$WORK/tty.$label")
  printf '%-12s cpu %6.2f s (%s) = %.4f s/MB | terminal %8.0f B/s | peak RSS MB %s| lag %5.0f ms | storm %.1f s | key %s ms (by output %s ms)\n' \
    "$label" "$cpu" "${each% }" "$(awk -v c="$cpu" -v m="$MB" 'BEGIN { print c / m }')" \
    "$(awk -v b="$bytes" -v s="$secs" 'BEGIN { print b / s }')" "$rss" \
    "$(awk -v a="$done_at" -v b="$shown_at" 'BEGIN { print (b - a) / 1e6 }')" "$secs" "$key_ms" "$key_out" | tee -a "$WORK/results"
}

run_orchestrate() {
  local ws=$WORK/ws.$1
  export HOME=$WORK/home.$1
  mkdir -p "$HOME/.config/orchestrate" "$WORK/repo.$1"
  git init -q -b main "$WORK/repo.$1"
  git -C "$WORK/repo.$1" -c user.name=b -c user.email=b@b commit -q --allow-empty -m init
  cat > "$HOME/.config/orchestrate/orchestrate.toml" <<EOF
[review]
enabled = false
[agents.storm]
kind = "claude"
command = ["$WORK/gen.sh"]
env = { STORM_MARKS = "$MARKS", IS_SANDBOX = "1" }
EOF
  : > "$WORK/plan.toml"
  for i in 1 2 3 4 5 6 7 8; do
    printf '[[tasks]]\nid = "s%d"\nagent = "storm"\nprompt = "p"\n\n' "$i" >> "$WORK/plan.toml"
  done
  now_ns > "$WORK/started"
  tm new-session -d -s storm -x $COLS -y $ROWS \
    "HOME=$HOME $BIN --workspace $ws run --parallelism 8 --target $WORK/repo.$1 --plan $WORK/plan.toml storm; sleep 600"
  tm pipe-pane -o -t storm "cat > $WORK/tty.orchestrate"
  local coordinator="" dashboard=""
  for _ in $(seq 200); do
    # Anchored: tmux's `sh -c` wrapper carries the same words.
    coordinator=$(pgrep -f -- "^$BIN --workspace [^ ]*ws.$1 coordinator" | head -1 || true)
    dashboard=$(pgrep -f -- "^$BIN --workspace $ws run" | head -1 || true)
    [[ -n $coordinator && -n $dashboard ]] && break
    sleep 0.05
  done
  measure orchestrate 8 "$coordinator" "$dashboard"
  tm kill-server 2>/dev/null || true
  pkill -f -- "--workspace $ws" 2>/dev/null || true
  pkill -f -- "$WORK/gen.sh" 2>/dev/null || true
}

run_mprocs() {
  {
    echo "procs:"
    for i in 1 2 3 4 5 6 7 8; do
      printf '  gen%d:\n    shell: "%s"\n    env:\n      STORM_MARKS: "%s"\n' "$i" "$WORK/gen.sh" "$MARKS"
    done
  } > "$WORK/mprocs.yaml"
  now_ns > "$WORK/started"
  tm new-session -d -s storm -x $COLS -y $ROWS "$MPROCS --config $WORK/mprocs.yaml; sleep 600"
  tm pipe-pane -o -t storm "cat > $WORK/tty.mprocs"
  local pid=""
  for _ in $(seq 200); do
    pid=$(pgrep -f -- "^$MPROCS --config $WORK/mprocs.yaml" | head -1 || true)
    [[ -n $pid ]] && break
    sleep 0.05
  done
  measure mprocs 1 "$pid"
  tm kill-server 2>/dev/null || true
  pkill -f -- "$WORK/gen.sh" 2>/dev/null || true
}

for run in $(seq "$RUNS"); do
  for tool in orchestrate mprocs; do
    MARKS=$WORK/marks.$tool.$run
    rm -rf "$MARKS" && mkdir -p "$MARKS"
    "run_$tool" "$run"
    sleep 1
  done
done

echo
echo "medians over $RUNS runs:"
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
for tool in orchestrate mprocs; do
  grep "^$tool " "$WORK/results" > "$WORK/r.$tool" || true
  printf '%-12s s/MB %s | terminal B/s %s | lag ms %s\n' "$tool" \
    "$(awk '{ sub(/.*= /, ""); print $1 }' "$WORK/r.$tool" | median)" \
    "$(awk '{ sub(/.*terminal +/, ""); print $1 }' "$WORK/r.$tool" | median)" \
    "$(awk '{ sub(/.*lag +/, ""); print $1 }' "$WORK/r.$tool" | median)"
done
o=$(awk '{ sub(/.*= /, ""); print $1 }' "$WORK/r.orchestrate" | median)
m=$(awk '{ sub(/.*= /, ""); print $1 }' "$WORK/r.mprocs" | median)
awk -v o="$o" -v m="$m" 'BEGIN { printf "CPU per MB, orchestrate / mprocs: %.2fx\n", o / m }'
