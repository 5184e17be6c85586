//! Dashboard costs.
//! - `render`: one full frame at 200x60 with 16 workers and 100 000 events fed through the
//!   app (the log keeps its bounded tail), drawn into a TestBackend.
//! - clock frame: a second that moves only the running counters, their cells alone.
//! - write-to-screen latency: an event line appended to a worker's journal, until a drawn
//!   frame shows it. The path is the real one up to the terminal: the tailer (notify), the
//!   app's update and a full draw with the buffer diff; the terminal's own write is left
//!   out.
//!
//! Run: `cargo bench --bench dashboard`

use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::Write;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use criterion::Criterion;
use orchestrate::event::{AgentEvent, EventType};
use orchestrate::session::tailer::{DEFAULT_POLL, TailEvent, TailSpec, Tailer, jsonl_files};
use orchestrate::timestamp::Timestamp;
use orchestrate::tui::app::{App, Msg};
use orchestrate::tui::theme::Theme;
use orchestrate::tui::view;
use orchestrate::tui::view::clocks::Shown;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

fn event(kind: EventType, worker: &str, n: u64, payload: serde_json::Value) -> AgentEvent {
    AgentEvent {
        kind,
        agent: "claude".into(),
        worker: worker.into(),
        task: Some(worker.into()),
        seq: n,
        timestamp: Timestamp(1_795_284_000_000 + n as i64),
        payload: payload.as_object().unwrap().clone().into(),
    }
}

fn busy_app() -> App {
    let mut app = App::new(
        "orch_bench",
        "benchmark the dashboard",
        Theme::default_theme(),
        Timestamp(1_795_284_000_000),
    );
    for w in 0..16 {
        let name = format!("worker-{w:02}");
        app.update(Msg::Event(event(
            EventType::Status,
            &name,
            0,
            json!({"phase": "spawned", "text": "started", "pid": 1000 + w}),
        )));
    }
    for n in 0..100_000u64 {
        let name = format!("worker-{:02}", n % 16);
        let e = match n % 4 {
            0 => event(
                EventType::Progress,
                &name,
                n,
                json!({"text": format!("Bash: cargo test --package p{n}"), "kind": "tool_call"}),
            ),
            1 => event(
                EventType::Task,
                &name,
                n,
                json!({"text": format!("todo {}/10", n % 10), "progress": n % 100}),
            ),
            _ => event(
                EventType::Progress,
                &name,
                n,
                json!({"text": format!("Working through step {n} of the change to the session store."), "kind": "message"}),
            ),
        };
        app.update(Msg::Event(e));
    }
    app
}

fn main() {
    let mut app = busy_app();
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    let mut criterion = Criterion::default().sample_size(50).configure_from_args();
    criterion.bench_function("dashboard/render_200x60_16_workers_100k_events", |b| {
        b.iter(|| {
            terminal
                .draw(|f| view::draw(f, black_box(&mut app)))
                .unwrap();
        })
    });
    criterion.final_summary();
    let mut frames: Vec<Duration> = (0..500)
        .map(|_| {
            let start = Instant::now();
            terminal.draw(|f| view::draw(f, &mut app)).unwrap();
            start.elapsed()
        })
        .collect();
    frames.sort();
    println!(
        "\nframe at 200x60, 16 workers, 100 000 events: p50 {:?}  p99 {:?}  max {:?}",
        frames[250], frames[495], frames[499]
    );
    // A second that moves only the running counters: their cells alone.
    let mut shown = Shown::default();
    let frame = terminal.draw(|f| view::draw(f, &mut app)).unwrap();
    shown.remember(&app.clock_spots, frame.buffer);
    let mut now = app.now.millis();
    let mut clocks: Vec<Duration> = (0..500)
        .map(|_| {
            now += 1000;
            let start = Instant::now();
            app.update(Msg::Tick(Timestamp(now)));
            assert!(shown.draw_clocks(&mut terminal, &app).unwrap());
            start.elapsed()
        })
        .collect();
    clocks.sort();
    println!(
        "clock frame at 200x60 ({} counters): p50 {:?}  p99 {:?}",
        app.clock_spots.len(),
        clocks[250],
        clocks[495]
    );

    // Write-to-screen: journal line -> tailer -> app -> drawn frame that shows it.
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("claude-1.jsonl");
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&journal)
        .unwrap();
    let (tx, rx) = channel::<AgentEvent>();
    let spec = TailSpec {
        dirs: vec![dir.path().to_path_buf()],
        accept: jsonl_files,
        poll: DEFAULT_POLL,
        backlog: None,
    };
    let _tailer = Tailer::spawn(spec, move |e| {
        if let TailEvent::Line { line, .. } = e
            && let Ok(event) = serde_json::from_slice::<AgentEvent>(&line)
        {
            let _ = tx.send(event);
        }
    })
    .unwrap();
    let mut app = busy_app();
    let mut samples = Vec::new();
    for n in 0..2000u64 {
        let marker = format!("marker-{n:05}");
        let line = event(
            EventType::Progress,
            "worker-03",
            200_000 + n,
            json!({"text": marker, "kind": "message"}),
        )
        .to_line();
        let written = Instant::now();
        file.write_all(&line).unwrap();
        let e = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the tailer delivered nothing");
        app.update(Msg::Event(e));
        terminal.draw(|f| view::draw(f, &mut app)).unwrap();
        let shown = terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect::<String>()
            .contains(&marker);
        assert!(shown, "the frame shows the new event");
        samples.push(written.elapsed());
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "write-to-screen over {} events (tailer + update + 200x60 frame): p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        samples.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        samples[samples.len() - 1]
    );
}
