//! Adapter throughput against a bare `serde_json::Value` parse of the same lines.
//!
//! Two corpora per CLI, each repeated into a ~4 MiB CRLF stream as a PTY delivers it:
//! - `fixture`: the coverage transcript in tests/fixtures (every mapping row, mostly tiny
//!   lines: the worst case, where per-event overhead dominates);
//! - `sim`: what `orchestrate sim <cli>` prints for a successful run (typical traffic);
//! - `real`: what the pinned real CLI printed in a PTY for the same story against the stub
//!   model (tests/fixtures/real/<cli>-success.pty, CRLF, escapes and stderr warnings included),
//!   repeated verbatim.
//!
//! "bare" parses every line into a `Value` and drops it; "normalize" runs the full pipeline a
//! worker uses (framing, CRLF, UTF-8 check, parse, adapter, stamping). The ratio
//! normalize/bare, from the same run, is printed at the end.
//!
//! Run: `cargo bench --bench adapters` (`-- nomatch` skips criterion and prints the ratios
//! alone; `ADAPTERS_ONLY=codex/sim` limits them to one stream). `ADAPTERS_PROFILE=codex/sim`
//! runs that stream's normalize side alone, a fixed number of times, for `perf record` or
//! `perf stat` (`codex/sim/bare`: its bare parse; `ADAPTERS_PROFILE_ROUNDS`: how many times).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use orchestrate::agents::{AgentKind, Normalizer};
use orchestrate::timestamp::Timestamp;

/// The allocator the orchestrate binary runs with (src/main.rs), so the ratios are the
/// coordinator's own; both sides of each ratio use it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TARGET_BYTES: usize = 4 << 20;

/// Rounds of the paired ratio measurement.
const ROUNDS: usize = 21;

/// Passes over one stream under `ADAPTERS_PROFILE`.
const PROFILE_ROUNDS: usize = 40;

fn fixture(kind: AgentKind) -> Vec<u8> {
    let fixture = match kind {
        AgentKind::Claude => "tests/fixtures/claude-stream.jsonl",
        AgentKind::Codex => "tests/fixtures/codex-stream.jsonl",
        AgentKind::Gemini => "tests/fixtures/gemini-stream.jsonl",
        AgentKind::Events => "tests/fixtures/events-stream.jsonl",
    };
    std::fs::read(fixture).expect("run from the crate root")
}

/// One successful run of the simulated CLI, as it prints it.
fn sim_transcript(kind: AgentKind) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> = match kind {
        AgentKind::Claude => vec![
            "claude",
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "add a health endpoint",
        ],
        AgentKind::Codex => vec![
            "codex",
            "exec",
            "--json",
            "--skip-git-repo-check",
            "add a health endpoint",
        ],
        AgentKind::Gemini => vec![
            "gemini",
            "--output-format",
            "stream-json",
            "--approval-mode=yolo",
            "--prompt=add a health endpoint",
        ],
        AgentKind::Events => return fixture(kind),
    };
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orchestrate"))
        .arg("sim")
        .args(&args)
        .current_dir(dir.path())
        .env("ORCHESTRATE_SIM_SPEED", "0")
        .env("GEMINI_CLI_TRUST_WORKSPACE", "true")
        .env("GEMINI_API_KEY", "bench")
        .env("ORCHESTRATE_SIM_HOME", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A real CLI's PTY bytes for the success story (tests/fixtures/real/).
fn real_recording(kind: AgentKind) -> Vec<u8> {
    std::fs::read(format!("tests/fixtures/real/{kind}-success.pty"))
        .expect("run from the crate root")
}

/// `one` repeated as it is (it is already what a PTY delivered).
fn repeat_verbatim(one: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(TARGET_BYTES + one.len());
    while out.len() < TARGET_BYTES {
        out.extend_from_slice(one);
    }
    out
}

fn repeat(one: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(TARGET_BYTES + one.len());
    while out.len() < TARGET_BYTES {
        // CRLF as a PTY delivers it.
        for line in one.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

fn bare_parse(bytes: &[u8]) -> usize {
    let mut parsed = 0;
    for line in bytes.split(|&b| b == b'\n') {
        if let Ok(v) =
            serde_json::from_slice::<serde_json::Value>(line.strip_suffix(b"\r").unwrap_or(line))
        {
            black_box(v);
            parsed += 1;
        }
    }
    parsed
}

fn normalize(kind: AgentKind, bytes: &[u8]) -> usize {
    let mut n = Normalizer::new(kind, "bench-1", Some("t1"));
    let (mut events, mut issues) = (Vec::new(), Vec::new());
    let mut count = 0;
    for chunk in bytes.chunks(64 * 1024) {
        n.push(chunk, Timestamp(0), &mut events, &mut issues);
        count += events.len();
        events.clear();
        issues.clear();
    }
    n.finish(None, Timestamp(0), &mut events, &mut issues);
    count + events.len()
}

/// Times `a` and `b` in turn, `rounds` times, so a drift of the machine's speed (this one is
/// shared) hits both alike: the best of each, and the median of the rounds' b/a ratios.
fn paired(rounds: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> (Duration, Duration, f64) {
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        start.elapsed()
    };
    let (mut best_a, mut best_b) = (Duration::MAX, Duration::MAX);
    let mut ratios = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let (ta, tb) = (time(&mut a), time(&mut b));
        best_a = best_a.min(ta);
        best_b = best_b.min(tb);
        ratios.push(tb.as_secs_f64() / ta.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    (best_a, best_b, ratios[rounds / 2])
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let kinds = [
        AgentKind::Claude,
        AgentKind::Codex,
        AgentKind::Gemini,
        AgentKind::Events,
    ];
    let mut corpora: Vec<(AgentKind, &str, Vec<u8>)> = Vec::new();
    for kind in kinds {
        corpora.push((kind, "fixture", repeat(&fixture(kind))));
        if kind != AgentKind::Events {
            corpora.push((kind, "sim", repeat(&sim_transcript(kind))));
            corpora.push((kind, "real", repeat_verbatim(&real_recording(kind))));
        }
    }
    if let Ok(stream) = std::env::var("ADAPTERS_PROFILE") {
        let (stream, bare) = match stream.strip_suffix("/bare") {
            Some(stream) => (stream.to_string(), true),
            None => (stream, false),
        };
        let (kind, _, bytes) = corpora
            .iter()
            .find(|(kind, name, _)| format!("{kind}/{name}") == stream)
            .expect("ADAPTERS_PROFILE names a stream such as codex/fixture");
        let rounds = std::env::var("ADAPTERS_PROFILE_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(PROFILE_ROUNDS);
        for _ in 0..rounds {
            if bare {
                black_box(bare_parse(bytes));
            } else {
                black_box(normalize(*kind, bytes));
            }
        }
        return;
    }
    for (kind, name, bytes) in &corpora {
        let mut group = criterion.benchmark_group(format!("adapter/{kind}/{name}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("bare_parse", |b| b.iter(|| bare_parse(black_box(bytes))));
        group.bench_function("normalize", |b| {
            b.iter(|| normalize(*kind, black_box(bytes)))
        });
        group.finish();
    }
    criterion.final_summary();

    println!(
        "\nadapter / bare serde_json::Value parse, {ROUNDS} rounds in turn ({} MiB per stream):",
        TARGET_BYTES >> 20
    );
    // `ADAPTERS_ONLY=codex/sim` limits the ratios to one stream (to profile it).
    let only = std::env::var("ADAPTERS_ONLY").ok();
    for (kind, name, bytes) in &corpora {
        if only
            .as_deref()
            .is_some_and(|o| o != format!("{kind}/{name}"))
        {
            continue;
        }
        let (bare, full, median) = paired(
            ROUNDS,
            || {
                black_box(bare_parse(bytes));
            },
            || {
                black_box(normalize(*kind, bytes));
            },
        );
        let mib_s = |d: Duration| bytes.len() as f64 / d.as_secs_f64() / (1 << 20) as f64;
        println!(
            "  {:<15} bare {:>6.1} MiB/s   normalize {:>6.1} MiB/s   ratio {:.2}x (best/best), {:.2}x (median of rounds)",
            format!("{kind}/{name}"),
            mib_s(bare),
            mib_s(full),
            full.as_secs_f64() / bare.as_secs_f64(),
            median
        );
    }
}
