//! Lock acquire + release pairs per second through the meta store, one client, on SQLite (a
//! fresh orchestrate.db) and on a redis-server started here on a loopback port; beside it,
//! `redis-benchmark -t set` on the same server for what Redis itself does with one client.
//!
//! Run: `cargo bench --bench meta_locks` (Redis parts skipped when redis-server is missing).
//! Aims (issue 13): 20 000 pairs/s on SQLite; Redis within 1.5x of redis-benchmark's SET
//! rate, counting a pair as two round trips as redis-benchmark counts one SET as one.

use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orchestrate::meta::redis::RedisStore;
use orchestrate::meta::sqlite::SqliteStore;
use orchestrate::meta::store::MetaStore;
use orchestrate::timestamp::Timestamp;

const PAIRS: usize = 20_000;

/// Pairs per second over `PAIRS` acquire + release on four resources; best of three.
fn pairs_per_second(store: &dyn MetaStore) -> f64 {
    let resources = ["src/a.rs", "src/b.rs", "docs/c.md", "Cargo.toml"];
    let mut best = 0.0f64;
    for _ in 0..3 {
        let start = Instant::now();
        for i in 0..PAIRS {
            let r = resources[i % resources.len()];
            store
                .acquire(r, "bench", Duration::from_secs(60), Timestamp::now())
                .unwrap()
                .unwrap();
            store
                .release(r, "bench", Timestamp::now())
                .unwrap()
                .unwrap();
        }
        best = best.max(PAIRS as f64 / start.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("orchestrate.db")).unwrap();
    let rate = pairs_per_second(&sqlite);
    println!("sqlite  acquire+release pairs/s: {rate:>9.0}   (aim 20000)");

    let Ok(server) = Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            "6391",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
    else {
        println!("redis   skipped: redis-server is not installed");
        return;
    };
    let mut server = server;
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect("127.0.0.1:6391").is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let redis = RedisStore::open("redis://127.0.0.1:6391/").unwrap();
    // Alternated, three rounds: this machine's neighbours come and go, and a ratio taken
    // from one moment each would measure them.
    let mut ratios = Vec::new();
    for round in 1..=3 {
        let rate = pairs_per_second(&redis);
        let output = Command::new("redis-benchmark")
            .args(["-p", "6391", "-t", "set", "-n", "60000", "-c", "1", "-q"])
            .output();
        // Progress lines end in \r; the last says `SET: 11761.94 requests per second, ...`.
        let set_rate = output.ok().and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split(['\r', '\n'])
                .find(|l| l.contains("requests per second"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<f64>().ok())
        });
        let Some(set) = set_rate else {
            println!("redis   acquire+release pairs/s: {rate:>9.0}; redis-benchmark not available");
            break;
        };
        let ratio = set / (rate * 2.0);
        ratios.push(ratio);
        println!(
            "redis   round {round}: acquire+release pairs/s {rate:>7.0} ({:.0} round trips/s), redis-benchmark SET/s {set:>7.0}, ratio {ratio:.2}x",
            rate * 2.0
        );
    }
    if !ratios.is_empty() {
        ratios.sort_by(f64::total_cmp);
        println!(
            "redis   median ratio to redis-benchmark -t set -c 1: {:.2}x (aim within 1.5x)",
            ratios[ratios.len() / 2]
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}
