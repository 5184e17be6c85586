//! `orchestrate events normalize`: a native stream in, AgentEvent JSON lines out.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, Result};

use crate::agents::{AgentKind, Normalizer};
use crate::timestamp::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Claude,
    Codex,
    Gemini,
    Events,
}

impl From<Format> for AgentKind {
    fn from(f: Format) -> Self {
        match f {
            Format::Claude => AgentKind::Claude,
            Format::Codex => AgentKind::Codex,
            Format::Gemini => AgentKind::Gemini,
            Format::Events => AgentKind::Events,
        }
    }
}

pub fn normalize(
    format: Format,
    file: Option<&Path>,
    worker: &str,
    task: Option<&str>,
) -> Result<u8> {
    let (mut input, name): (Box<dyn Read>, String) = match file {
        None => (Box::new(io::stdin().lock()), "<stdin>".into()),
        Some(p) if p == Path::new("-") => (Box::new(io::stdin().lock()), "<stdin>".into()),
        Some(p) => {
            let f = File::open(p).with_context(|| format!("cannot read {}", p.display()))?;
            (Box::new(f), p.display().to_string())
        }
    };
    let mut normalizer = Normalizer::new(format.into(), worker, task);
    let mut reports = IssueReports::default();
    let mut stdout = BufWriter::new(io::stdout().lock());
    let mut stderr = io::stderr().lock();
    let (mut events, mut issues) = (Vec::new(), Vec::new());
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {name}")),
        };
        normalizer.push(&buf[..n], Timestamp::now(), &mut events, &mut issues);
        if !emit(
            &mut stdout,
            &mut stderr,
            &name,
            &mut events,
            &mut issues,
            &mut reports,
        )? {
            return Ok(0);
        }
    }
    normalizer.finish(None, Timestamp::now(), &mut events, &mut issues);
    if !emit(
        &mut stdout,
        &mut stderr,
        &name,
        &mut events,
        &mut issues,
        &mut reports,
    )? {
        return Ok(0);
    }
    stdout.flush().ok();
    let stats = normalizer.stats();
    let mut summary = format!("{name}: {} lines, {} events", stats.lines, stats.events);
    if !stats.unknown.is_empty() {
        let kinds: Vec<String> = stats
            .unknown
            .iter()
            .map(|(k, n)| format!("{k} x{n}"))
            .collect();
        summary.push_str(&format!(
            ", {} of unknown type ignored ({})",
            stats.unknown_total(),
            kinds.join(", ")
        ));
    }
    let unreadable = stats.not_json + stats.malformed + stats.oversize;
    if unreadable > 0 {
        summary.push_str(&format!(", {unreadable} not readable as JSON"));
    }
    if reports.unshown > 0 {
        summary.push_str(&format!(
            " ({} more line reports not shown)",
            reports.unshown
        ));
    }
    writeln!(stderr, "{summary}").ok();
    // Lines of the format that the adapter knew: without one, the input was not this format
    // (or was empty), and a script must be able to tell.
    let usable = stats.lines - stats.blank - unreadable - stats.unknown_total();
    if usable == 0 {
        let format = AgentKind::from(format).name();
        writeln!(
            stderr,
            "{name}: nothing usable: no line was a {format} event (exit 2)"
        )
        .ok();
        return Ok(2);
    }
    Ok(0)
}

/// Per-line reports shown on stderr: the first [`IssueReports::SHOWN`], then only counted,
/// so a file of garbage does not bury the summary.
#[derive(Default)]
struct IssueReports {
    shown: usize,
    unshown: u64,
}

impl IssueReports {
    const SHOWN: usize = 20;
}

/// Writes pending events and issues; false when stdout is closed (`| head`), which ends the
/// command quietly.
fn emit(
    stdout: &mut impl Write,
    stderr: &mut impl Write,
    name: &str,
    events: &mut Vec<crate::event::AgentEvent>,
    issues: &mut Vec<crate::agents::LineIssue>,
    reports: &mut IssueReports,
) -> Result<bool> {
    for issue in issues.drain(..) {
        if reports.shown < IssueReports::SHOWN {
            reports.shown += 1;
            writeln!(stderr, "{name}: {issue}").ok();
        } else {
            reports.unshown += 1;
        }
    }
    for event in events.drain(..) {
        match event.write_line(stdout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(false),
            Err(e) => return Err(e).context("cannot write to standard output"),
        }
    }
    Ok(true)
}
