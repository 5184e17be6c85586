//! The sandbox policy's evaluator: command lines per second, on a mix of everyday commands
//! (allowed), evasions (blocked) and pushes (confirm), as the hook asks about them.
//!
//! Run: `cargo bench --bench sandbox`

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput};
use orchestrate::safety::{SandboxConfig, SandboxPolicy, ToolCall};

const MIX: [&str; 12] = [
    "cargo test --workspace",
    "git add -A && git commit -m 'add health endpoint'",
    "ls -la src | grep rs | wc -l",
    "cat README.md",
    "npm run build > build.log 2>&1",
    "find . -name '*.rs' -exec grep -n TODO {} \\;",
    "bash -lc 'cd /work && cargo fmt && cargo clippy'",
    "sudo rm -fr /var/lib/app",
    "echo \"$(rm -rf target)\"",
    "env -i PATH=/bin timeout 5 nice rm -rf build",
    "git push origin HEAD",
    "python -m pip install requests",
];

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let policy =
        SandboxPolicy::new(&SandboxConfig::default(), &[PathBuf::from("/work/run")]).unwrap();
    let calls: Vec<ToolCall> = MIX
        .iter()
        .map(|c| ToolCall::Shell {
            command: c.to_string(),
            cwd: PathBuf::from("/work/run"),
        })
        .collect();
    let mut group = c.benchmark_group("sandbox");
    group.throughput(Throughput::Elements(calls.len() as u64));
    group.bench_function("evaluate_mix", |b| {
        b.iter(|| {
            for call in &calls {
                black_box(policy.evaluate(black_box(call)));
            }
        })
    });
    group.finish();
    c.final_summary();
}
