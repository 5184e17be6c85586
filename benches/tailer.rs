//! Write-to-delivery latency of the JSONL tailer: a line appended to a followed file, until
//! the tailer's sink receives it (inotify wake-up, read to EOF, framing, channel send).
//!
//! Run: `cargo bench --bench tailer`

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use criterion::Criterion;
use orchestrate::session::tailer::{DEFAULT_POLL, TailEvent, TailSpec, Tailer, jsonl_files};

const LINE: &[u8] = br#"{"type":"progress","agent":"claude","worker":"claude-1","task":"t2","seq":17,"timestamp":"2026-11-21T18:00:00.000Z","payload":{"text":"Editing src/auth.rs","progress":45}}
"#;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("claude-1.jsonl");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let (tx, rx) = channel::<Instant>();
    let spec = TailSpec {
        dirs: vec![dir.path().to_path_buf()],
        accept: jsonl_files,
        poll: DEFAULT_POLL,
        backlog: None,
    };
    let _tailer = Tailer::spawn(spec, move |event| {
        if let TailEvent::Line { .. } = event {
            let _ = tx.send(Instant::now());
        }
    })
    .unwrap();
    let mut deliver = || {
        let written = Instant::now();
        file.write_all(LINE).unwrap();
        let received = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("line not delivered");
        received.duration_since(written)
    };
    for _ in 0..50 {
        deliver(); // Warm up.
    }

    let mut criterion = Criterion::default().sample_size(50).configure_from_args();
    criterion.bench_function("tailer/write_to_delivery", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| deliver()).sum())
    });
    criterion.final_summary();

    let mut samples: Vec<Duration> = (0..5000).map(|_| deliver()).collect();
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "\ntailer write-to-delivery over {} lines: p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        samples.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        samples[samples.len() - 1]
    );
}
