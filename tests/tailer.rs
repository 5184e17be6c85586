//! The JSONL tailer against real files written by this process and by another one.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use orchestrate::session::tailer::{DEFAULT_POLL, TailEvent, TailSpec, Tailer, jsonl_files};

const LIMIT: Duration = Duration::from_secs(20);

fn follow(dir: &Path) -> (Tailer, Receiver<TailEvent>) {
    let (tx, rx) = channel();
    let spec = TailSpec {
        dirs: vec![dir.to_path_buf()],
        accept: jsonl_files,
        poll: DEFAULT_POLL,
        backlog: None,
    };
    let tailer = Tailer::spawn(spec, move |e| {
        let _ = tx.send(e);
    })
    .unwrap();
    (tailer, rx)
}

fn next(rx: &Receiver<TailEvent>) -> TailEvent {
    rx.recv_timeout(LIMIT)
        .expect("the tailer delivered nothing in time")
}

fn line_of(event: TailEvent) -> String {
    match event {
        TailEvent::Line { line, .. } => String::from_utf8(line).unwrap(),
        other => panic!("expected a line, got {other:?}"),
    }
}

fn append(path: &PathBuf, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn a_line_written_in_two_halves_arrives_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.jsonl");
    let (_tailer, rx) = follow(dir.path());
    append(&path, br#"{"type":"progress","#);
    // Give the tailer every chance to (wrongly) hand over the half line.
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    append(&path, b"\"seq\":1}\n");
    assert_eq!(line_of(next(&rx)), r#"{"type":"progress","seq":1}"#);
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "exactly once"
    );
}

#[test]
fn ten_thousand_lines_from_another_process_arrive_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("burst.jsonl");
    let (_tailer, rx) = follow(dir.path());
    let script = format!(
        "i=0; while [ $i -lt 10000 ]; do echo \"{{\\\"n\\\":$i}}\"; i=$((i+1)); done >> '{}'",
        path.display()
    );
    let status = std::process::Command::new("sh")
        .args(["-c", &script])
        .status()
        .unwrap();
    assert!(status.success());
    for n in 0..10_000 {
        assert_eq!(line_of(next(&rx)), format!("{{\"n\":{n}}}"));
    }
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "no line twice"
    );
}

#[test]
fn truncation_is_detected_and_the_file_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    append(&path, b"a\nb\n");
    let (_tailer, rx) = follow(dir.path());
    assert_eq!(line_of(next(&rx)), "a");
    assert_eq!(line_of(next(&rx)), "b");
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, b"c\n");
    assert_eq!(next(&rx), TailEvent::Truncated { path: path.clone() });
    assert_eq!(line_of(next(&rx)), "c");
}

#[test]
fn files_created_later_and_replaced_files_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let (_tailer, rx) = follow(dir.path());
    let path = dir.path().join("late.jsonl");
    append(&dir.path().join("ignored.log"), b"not followed\n");
    append(&path, b"first\n");
    assert_eq!(line_of(next(&rx)), "first");
    let tmp = dir.path().join("late.tmp");
    std::fs::write(&tmp, b"second\n").unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    assert_eq!(next(&rx), TailEvent::Replaced { path: path.clone() });
    assert_eq!(line_of(next(&rx)), "second");
}

#[test]
fn a_relative_directory_is_followed_through_notifications() {
    // Relative to the test's working directory (the crate root); the poll is set so long that
    // only notifications can deliver in time.
    let relative = PathBuf::from(format!("target/tailer-relative-{}", std::process::id()));
    std::fs::create_dir_all(&relative).unwrap();
    let (tx, rx) = channel();
    let spec = TailSpec {
        dirs: vec![relative.clone()],
        accept: jsonl_files,
        poll: Duration::from_secs(600),
        backlog: None,
    };
    let tailer = Tailer::spawn(spec, move |e| {
        let _ = tx.send(e);
    })
    .unwrap();
    for n in 0..3 {
        append(&relative.join("w.jsonl"), format!("line {n}\n").as_bytes());
        assert_eq!(line_of(next(&rx)), format!("line {n}"));
    }
    tailer.stop();
    std::fs::remove_dir_all(&relative).unwrap();
}
