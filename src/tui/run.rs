//! The dashboard's terminal and loop. One `tokio::select!` over every message (keys, tailed
//! journal events, control replies, liveness, clock, raw PTY bytes), the frame deadline and
//! the termination signals. Messages are drained in batches; a frame is drawn only when
//! something visible changed, at most one per 16 ms, so an idle dashboard sleeps. The
//! terminal is restored on every way out: `q`, a panic, SIGTERM, SIGHUP.

use std::io::{self, IsTerminal, Read, Seek, SeekFrom, Stdout, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use crossterm::event::{self, Event};
use crossterm::terminal::{
    self, BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen,
    LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::time::{Instant, sleep_until};

use super::app::{Action, App, Msg, OpenWith};
use super::theme::Theme;
use super::view;
use super::view::clocks::Shown;
use crate::coordinator::control::{self, ControlReply};
use crate::coordinator::lock;
use crate::session::tailer::{Tailer, follow_session};
use crate::session::{SessionDir, Workspace};
use crate::timestamp::Timestamp;
use crate::worker::WorkerSummary;

/// At most one frame per this interval (~60 frames/s).
const MIN_FRAME: Duration = Duration::from_millis(16);
/// Messages handled per turn before drawing.
const BATCH: usize = 1024;
/// Journal events handled per turn: a key that comes meanwhile waits for one turn at most.
const EVENT_BATCH: usize = 256;
/// Journal events waiting for the loop at most. Past it the tailer waits (the journals keep
/// everything on disk), so a storm of output cannot grow the dashboard's memory.
const EVENT_QUEUE: usize = 4096;
/// How much of each journal is read on opening (the rest is history the journals keep).
const BACKLOG_BYTES: u64 = 512 * 1024;
/// How much raw output fills the zoomed terminal screen at first.
const SCREEN_BACKLOG: u64 = 64 * 1024;

/// How the dashboard ended, for the caller's message.
pub enum Exit {
    /// `q`: the session goes on.
    Left,
    /// SIGTERM or SIGHUP: its number.
    Signalled(i32),
}

/// Opens the dashboard on `session` until the operator leaves it.
pub fn run_dashboard(workspace: &Workspace, session: &SessionDir, theme: Theme) -> Result<Exit> {
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        bail!(
            "the dashboard needs a terminal (standard input and output); without one, follow the session with `orchestrate status {id} --watch` or `orchestrate logs {id}`",
            id = session.id
        );
    }
    let info = session.read_info()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the dashboard's runtime")?;
    let mut app = App::new(&session.id, &info.prompt, theme, Timestamp::now());
    let mut terminal = enter_terminal()?;
    let result = runtime.block_on(event_loop(workspace, session, &mut app, &mut terminal));
    restore_terminal();
    result
}

async fn event_loop(
    workspace: &Workspace,
    session: &SessionDir,
    app: &mut App,
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
) -> Result<Exit> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let input = Arc::new(InputGate::default());
    spawn_input_reader(tx.clone(), Arc::clone(&input));
    let summaries = worker_summaries(session);
    let _ = tx.send(Msg::Origins(journal_origins(session, &summaries)));
    // Before the tailer starts: the summaries count what its tails repeat (see App::Summaries).
    let _ = tx.send(Msg::Summaries(summaries));
    let (events_tx, events_rx) = mpsc::channel::<crate::event::AgentEvent>(EVENT_QUEUE);
    let _tailer = follow_journals(session, events_tx)?;
    // Declared after the tailer, so dropped before it: a tailer waiting on a full queue is let
    // go before it is joined.
    let mut events_rx = events_rx;
    spawn_clock(
        tx.clone(),
        session.lock_path(),
        workspace.db_path(),
        session.id.clone(),
    );
    let screen_generation = Arc::new(AtomicU64::new(0));
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut dirty = true;
    // Only the running counters changed: their cells alone are redrawn.
    let mut clocks_moved = false;
    let mut shown = Shown::default();
    let mut last_draw = Instant::now() - MIN_FRAME;
    // A key's effect is drawn at once, not at the next frame's turn: it acts within a frame.
    let mut keyed = false;
    loop {
        let frame_at = if keyed {
            Instant::now()
        } else {
            last_draw + MIN_FRAME
        };
        tokio::select! {
            // Keys (and replies, ticks) before journal events: a key acts within a frame
            // whatever the agents print.
            biased;
            first = rx.recv() => {
                let Some(first) = first else { return Ok(Exit::Left) };
                for msg in batch(first, BATCH, || rx.try_recv().ok()) {
                    let tick = matches!(msg, Msg::Tick(_));
                    let key = matches!(msg, Msg::Key(_));
                    let (actions, changed) = app.update(msg);
                    if tick {
                        clocks_moved |= changed;
                    } else {
                        dirty |= changed;
                        keyed |= key && changed;
                    }
                    for action in actions {
                        match action {
                            Action::Quit => return Ok(Exit::Left),
                            Action::Control(request) => send_control(session, request, tx.clone()),
                            Action::WatchScreen(worker) => {
                                let generation = screen_generation.fetch_add(1, Ordering::SeqCst) + 1;
                                watch_screen(session, worker, tx.clone(), Arc::clone(&screen_generation), generation);
                            }
                            Action::Attach(worker) => {
                                let attached = suspended(terminal, &input, || {
                                    crate::cli::attach::attach(workspace, &session.id, &worker).map(|_| ())
                                })?;
                                shown.forget();
                                if let Err(e) = attached {
                                    let _ = tx.send(Msg::Reply(ControlReply::refused(format!("{e:#}"))));
                                }
                                dirty = true;
                            }
                            Action::Resume { retry } => resume_session(workspace, session, retry, tx.clone()),
                            alert @ (Action::Bell | Action::Notify(_)) => ring(alert),
                            Action::Open { program, dir } => {
                                let opened = suspended(terminal, &input, || open_in(program, &dir))?;
                                shown.forget();
                                if let Err(e) = opened {
                                    let _ = tx.send(Msg::Reply(ControlReply::refused(format!("{e:#}"))));
                                }
                                dirty = true;
                            }
                        }
                    }
                }
            }
            _ = sigterm.recv() => return Ok(Exit::Signalled(libc::SIGTERM)),
            _ = sighup.recv() => return Ok(Exit::Signalled(libc::SIGHUP)),
            _ = sleep_until(frame_at), if dirty || clocks_moved => {
                if dirty || !draw_clocks(terminal, app, &mut shown)? {
                    draw(terminal, app, &mut shown)?;
                }
                dirty = false;
                clocks_moved = false;
                keyed = false;
                last_draw = Instant::now();
            }
            Some(first) = events_rx.recv() => {
                for event in batch(first, EVENT_BATCH, || events_rx.try_recv().ok()) {
                    let (actions, changed) = app.update(Msg::Event(event));
                    dirty |= changed;
                    for action in actions {
                        ring(action);
                    }
                }
            }
        }
    }
}

/// `first` and what else is queued (`next`), up to `most`: updated together, one frame.
fn batch<T>(first: T, most: usize, mut next: impl FnMut() -> Option<T>) -> Vec<T> {
    let mut batch = vec![first];
    while batch.len() < most {
        match next() {
            Some(item) => batch.push(item),
            None => break,
        }
    }
    batch
}

/// The bell, and a desktop notification through the terminal (OSC 9: iTerm2, kitty, WezTerm,
/// Windows Terminal show one; others ignore it). Other actions are not alerts.
fn ring(action: Action) {
    match action {
        Action::Bell => {
            let _ = io::stdout().write_all(b"\x07");
        }
        Action::Notify(text) => {
            let clean: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
            let _ = write!(io::stdout(), "\x1b]9;{clean}\x07");
        }
        _ => return,
    }
    let _ = io::stdout().flush();
}

fn draw(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    app: &mut App,
    shown: &mut Shown,
) -> Result<()> {
    // Synchronized output: the terminal shows the frame whole or not at all.
    execute!(io::stdout(), BeginSynchronizedUpdate)?;
    shown.restore(terminal)?;
    let frame = terminal.draw(|frame| view::draw(frame, app))?;
    shown.remember(&app.clock_spots, frame.buffer);
    execute!(io::stdout(), EndSynchronizedUpdate)?;
    Ok(())
}

/// The running counters alone, when nothing else changed; false when a full frame is needed.
fn draw_clocks(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    app: &App,
    shown: &mut Shown,
) -> Result<bool> {
    execute!(io::stdout(), BeginSynchronizedUpdate)?;
    let drawn = shown.draw_clocks(terminal, app)?;
    execute!(io::stdout(), EndSynchronizedUpdate)?;
    Ok(drawn)
}

fn enter_terminal() -> Result<Terminal<CrosstermBackend<Stdout>>> {
    install_panic_hook();
    terminal::enable_raw_mode().context("cannot put the terminal in raw mode")?;
    // No mouse capture: the terminal's own selection and copy keep working.
    execute!(io::stdout(), EnterAlternateScreen, cursor::Hide)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    terminal.clear()?;
    Ok(terminal)
}

/// Puts the terminal back as it was; safe to call more than once.
pub fn restore_terminal() {
    let _ = execute!(
        io::stdout(),
        EndSynchronizedUpdate,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = terminal::disable_raw_mode();
    let _ = io::stdout().flush();
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // The terminal first, so the report is readable.
        restore_terminal();
        previous(info);
    }));
}

/// Whether the key reader may read, and whether it has stopped reading.
#[derive(Default)]
struct InputGate {
    paused: AtomicBool,
    /// Set by the reader once it is out of crossterm's poll: only then may another reader
    /// (attach) take stdin, or crossterm would swallow its keys.
    parked: AtomicBool,
}

/// Keys and resizes, read on a thread of their own; it parks while the gate is paused.
fn spawn_input_reader(tx: UnboundedSender<Msg>, gate: Arc<InputGate>) {
    std::thread::spawn(move || {
        loop {
            if gate.paused.load(Ordering::SeqCst) {
                gate.parked.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            gate.parked.store(false, Ordering::SeqCst);
            // Long enough that an idle dashboard rarely wakes, short enough that attach (which
            // waits for the reader to park) starts without a noticeable pause.
            match event::poll(Duration::from_millis(250)) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => return,
            }
            let msg = match event::read() {
                Ok(Event::Key(key)) => Msg::Key(key),
                Ok(Event::Resize(..)) => Msg::Resize,
                Ok(_) => continue,
                Err(_) => return,
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
    });
}

/// Every worker's summary, by name (see `worker::summary`).
fn worker_summaries(session: &SessionDir) -> std::collections::BTreeMap<String, WorkerSummary> {
    crate::cli::lookup::worker_names(session)
        .into_iter()
        .filter_map(|name| {
            let summary =
                WorkerSummary::load(&session.summary_path(&name), &session.events_path(&name))
                    .ok()?;
            Some((name, summary))
        })
        .collect()
}

/// When the session and each worker began: the first line of the coordinator's journal (one
/// short read, so opening stays fast on any history) and each summary's first event.
fn journal_origins(
    session: &SessionDir,
    summaries: &std::collections::BTreeMap<String, WorkerSummary>,
) -> std::collections::BTreeMap<String, Timestamp> {
    use std::io::BufRead;
    let mut origins: std::collections::BTreeMap<String, Timestamp> = summaries
        .iter()
        .filter_map(|(name, s)| Some((name.clone(), s.first_at?)))
        .collect();
    let mut line = Vec::new();
    let first = std::fs::File::open(session.orchestrator_journal())
        .ok()
        .and_then(|file| {
            std::io::BufReader::new(file)
                .take(1 << 20)
                .read_until(b'\n', &mut line)
                .ok()?;
            serde_json::from_slice::<crate::event::AgentEvent>(&line).ok()
        });
    if let Some(first) = first {
        origins.insert(
            crate::coordinator::journal::COORDINATOR.to_string(),
            first.timestamp,
        );
    }
    origins
}

/// The journals' events, into a bounded queue: the tailer's thread waits while it is full.
fn follow_journals(
    session: &SessionDir,
    tx: mpsc::Sender<crate::event::AgentEvent>,
) -> Result<Tailer> {
    follow_session(session, Some(BACKLOG_BYTES), move |event| {
        let _ = tx.blocking_send(event);
    })
    .context("cannot watch the session's journals")
}

/// Once a second: the time (elapsed counters), whether the coordinator is alive, and the
/// workers' resource samples (read-only from the database the coordinator keeps).
fn spawn_clock(
    tx: UnboundedSender<Msg>,
    lock_path: std::path::PathBuf,
    db: std::path::PathBuf,
    session: String,
) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        // Opened once: opening SQLite every second was most of an idle dashboard's work.
        let mut store = None;
        loop {
            interval.tick().await;
            let alive = lock::holder(&lock_path).is_some();
            if store.is_none() {
                store = crate::session::Store::open_read_only(&db).ok();
            }
            let usage = match store.as_ref().map(|s| s.worker_usage(&session)) {
                Some(Ok(usage)) => usage,
                Some(Err(_)) => {
                    store = None;
                    Default::default()
                }
                None => Default::default(),
            };
            // Before the coordinator has made the database there is only a stand-in: look
            // again next time rather than keep reading nothing.
            if store.as_ref().is_some_and(|s| !s.reads_the_file()) {
                store = None;
            }
            if tx.send(Msg::Liveness(alive)).is_err()
                || tx.send(Msg::Tick(Timestamp::now())).is_err()
                || tx.send(Msg::Usage(usage)).is_err()
            {
                return;
            }
        }
    });
}

fn send_control(session: &SessionDir, request: control::ControlRequest, tx: UnboundedSender<Msg>) {
    let (socket, id) = (session.control_socket(), session.id.clone());
    std::thread::spawn(move || {
        let reply = control::send(&socket, &id, &request)
            .unwrap_or_else(|e| ControlReply::refused(e.to_string()));
        let _ = tx.send(Msg::Reply(reply));
    });
}

/// Feeds a worker's raw output to the zoomed screen until another screen is watched.
fn watch_screen(
    session: &SessionDir,
    worker: String,
    tx: UnboundedSender<Msg>,
    current: Arc<AtomicU64>,
    generation: u64,
) {
    let path = session.raw_path(&worker);
    std::thread::spawn(move || {
        let Ok(mut file) = std::fs::File::open(&path) else {
            return;
        };
        let len = file.metadata().map_or(0, |m| m.len());
        let mut offset = len.saturating_sub(SCREEN_BACKLOG);
        let mut buf = vec![0u8; 64 * 1024];
        while current.load(Ordering::SeqCst) == generation {
            if file.seek(SeekFrom::Start(offset)).is_err() {
                return;
            }
            match file.read(&mut buf) {
                Ok(0) => std::thread::sleep(Duration::from_millis(50)),
                Ok(n) => {
                    offset += n as u64;
                    if tx
                        .send(Msg::Raw {
                            worker: worker.clone(),
                            bytes: buf[..n].to_vec(),
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
    });
}

/// Hands the terminal to `run` (attach, an editor, a shell) and takes it back, whatever
/// `run` returns.
fn suspended<T>(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    input: &InputGate,
    run: impl FnOnce() -> T,
) -> Result<T> {
    input.paused.store(true, Ordering::SeqCst);
    // Wait for the key reader to leave its poll (at most one poll interval).
    while !input.parked.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(5));
    }
    restore_terminal();
    let result = run();
    terminal::enable_raw_mode()?;
    execute!(io::stdout(), EnterAlternateScreen, cursor::Hide)?;
    terminal.clear()?;
    input.paused.store(false, Ordering::SeqCst);
    Ok(result)
}

/// The operator's editor (`$VISUAL`, `$EDITOR`, else vi) or shell (`$SHELL`, else sh) in
/// `dir`. The program may carry arguments (`EDITOR="code -w"`).
fn open_in(with: OpenWith, dir: &str) -> Result<()> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let line = match with {
        OpenWith::Editor => var("VISUAL")
            .or_else(|| var("EDITOR"))
            .unwrap_or("vi".into()),
        OpenWith::Shell => var("SHELL").unwrap_or("sh".into()),
    };
    let mut words = line.split_whitespace();
    let program = words.next().unwrap_or("sh");
    let mut cmd = std::process::Command::new(program);
    cmd.args(words).current_dir(dir);
    if with == OpenWith::Editor {
        cmd.arg(".");
    } else {
        println!("{dir}: a shell in the worker's directory; `exit` goes back to the dashboard");
    }
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {program} in {dir}"))?;
    if !status.success() && with == OpenWith::Editor {
        anyhow::bail!("{program} ended with {status}");
    }
    Ok(())
}

/// Starts the dead coordinator again (running `retry` anew), off the loop: it may take
/// seconds to hold its lock.
fn resume_session(
    workspace: &Workspace,
    session: &SessionDir,
    retry: Vec<String>,
    tx: UnboundedSender<Msg>,
) {
    let (workspace, session) = (workspace.clone(), session.clone());
    std::thread::spawn(move || {
        let reply =
            match crate::coordinator::daemon::spawn_detached(&workspace, &session, true, &retry) {
                Ok(pid) => ControlReply::done(format!("session resumed (coordinator pid {pid})")),
                Err(e) => ControlReply::refused(format!("{e:#}")),
            };
        let _ = tx.send(Msg::Reply(reply));
    });
}
