//! One suite, two backends: every test here runs against the SQLite store and against a real
//! redis-server on a loopback port. Locks are never granted to two holders at once, tokens
//! only grow, leases and sessions expire, and a Redis restart gives clear errors while it is
//! down and no double grant after.
//!
//! The concurrent test runs 16 clients, 8 threads and 8 processes (this test binary run
//! again as `client_process`), each doing 10 000 lock operations.

mod common;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::redis::{RedisServer, require_redis};
use orchestrate::meta::locks::LockRefusal;
use orchestrate::meta::redis::RedisStore;
use orchestrate::meta::sessions::{SessionUpdate, UserSession, new_session_id};
use orchestrate::meta::sqlite::SqliteStore;
use orchestrate::meta::store::{MetaStore, MetaStoreError};
use orchestrate::timestamp::Timestamp;

const CLIENT_OPS: usize = 10_000;
const RESOURCES: [&str; 4] = ["src/a.rs", "src/b.rs", "docs/c.md", "Cargo.toml"];

/// A store spec a child process can open: `sqlite:PATH` or a Redis URL.
fn open(spec: &str) -> Box<dyn MetaStore> {
    match spec.strip_prefix("sqlite:") {
        Some(path) => Box::new(SqliteStore::open(Path::new(path)).unwrap()),
        None => Box::new(RedisStore::open(spec).unwrap()),
    }
}

fn now() -> Timestamp {
    Timestamp::now()
}

/// Each test gets a fresh SQLite database, and (when redis-server exists) a fresh server.
fn each_backend(test: &str, run: impl Fn(&str)) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite:{}", dir.path().join("orchestrate.db").display());
    run(&sqlite);
    if let Some(binary) = require_redis(test) {
        let server = RedisServer::start(&binary);
        run(&server.url());
    }
}

#[test]
fn one_holder_at_a_time_its_own_acquire_extends_and_only_it_releases() {
    each_backend("one_holder_at_a_time", |spec| {
        let store = open(spec);
        let ttl = Duration::from_secs(60);
        let first = store.acquire("r", "w1", ttl, now()).unwrap().unwrap();
        assert_eq!((first.holder.as_str(), first.token), ("w1", 1), "{spec}");
        let refused = store.acquire("r", "w2", ttl, now()).unwrap().unwrap_err();
        assert!(
            matches!(&refused, LockRefusal::HeldByOther { holder, .. } if holder == "w1"),
            "{spec}: {refused:?}"
        );
        assert!(
            refused.to_string().contains("locked by w1 until"),
            "{refused}"
        );
        // Extending keeps the token and pushes the expiry.
        std::thread::sleep(Duration::from_millis(5));
        let extended = store.acquire("r", "w1", ttl, now()).unwrap().unwrap();
        assert_eq!(extended.token, 1, "{spec}");
        assert!(extended.expires_at > first.expires_at, "{spec}");
        assert_eq!(extended.acquired_at, first.acquired_at, "{spec}");
        // Only the holder releases.
        let wrong = store.release("r", "w2", now()).unwrap().unwrap_err();
        assert_eq!(
            wrong,
            LockRefusal::NotHolder {
                resource: "r".into(),
                holder: "w2".into(),
                held_by: Some("w1".into())
            },
            "{spec}"
        );
        let check = store.check("r", now()).unwrap().unwrap();
        assert_eq!(check.holder, "w1");
        store.release("r", "w1", now()).unwrap().unwrap();
        assert_eq!(store.check("r", now()).unwrap(), None, "{spec}");
        let freed = store.release("r", "w1", now()).unwrap().unwrap_err();
        assert!(freed.to_string().ends_with("(it is free)"), "{freed}");
        // The next grant takes the next token, whoever takes it.
        let second = store.acquire("r", "w2", ttl, now()).unwrap().unwrap();
        assert_eq!(second.token, 2, "{spec}");
        // Locks are listed by resource prefix.
        store.acquire("s", "w1", ttl, now()).unwrap().unwrap();
        let all: Vec<String> = store
            .locks("", now())
            .unwrap()
            .into_iter()
            .map(|l| l.resource)
            .collect();
        assert_eq!(all, ["r", "s"], "{spec}");
        store
            .acquire("sess:src/x.rs", "w1", ttl, now())
            .unwrap()
            .unwrap();
        let session: Vec<String> = store
            .locks("sess:", now())
            .unwrap()
            .into_iter()
            .map(|l| l.resource)
            .collect();
        assert_eq!(session, ["sess:src/x.rs"], "{spec}");
    });
}

#[test]
fn an_expired_lease_goes_to_the_next_holder_with_a_higher_token() {
    each_backend("an_expired_lease", |spec| {
        let store = open(spec);
        let short = store
            .acquire("r", "w1", Duration::from_millis(150), now())
            .unwrap()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(store.check("r", now()).unwrap(), None, "{spec}");
        let next = store
            .acquire("r", "w2", Duration::from_secs(60), now())
            .unwrap()
            .unwrap();
        assert!(next.token > short.token, "{spec}");
        // The late holder cannot release what it lost.
        assert!(store.release("r", "w1", now()).unwrap().is_err(), "{spec}");
        // Its own expired lease taken again is a new grant, with a new token.
        store.release("r", "w2", now()).unwrap().unwrap();
        let again = store
            .acquire("r", "w1", Duration::from_millis(100), now())
            .unwrap()
            .unwrap();
        std::thread::sleep(Duration::from_millis(250));
        let renewed = store
            .acquire("r", "w1", Duration::from_secs(60), now())
            .unwrap()
            .unwrap();
        assert!(renewed.token > again.token, "{spec}");
    });
}

#[test]
fn sessions_round_trip_update_atomically_and_expire() {
    each_backend("sessions_round_trip", |spec| {
        let store = open(spec);
        let session = UserSession::new(new_session_id(), "alice".into(), now());
        store
            .create_session(&session, Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            store.get_session(&session.id, now()).unwrap().as_ref(),
            Some(&session)
        );
        let update = SessionUpdate {
            current_task: Some("t1".into()),
            ..SessionUpdate::default()
        };
        // Eight threads each add 20 history entries: none is lost.
        std::thread::scope(|scope| {
            for t in 0..8 {
                let (spec, id, update) = (spec.to_string(), session.id.clone(), update.clone());
                scope.spawn(move || {
                    let store = open(&spec);
                    for i in 0..20 {
                        let at = now();
                        store
                            .update_session(
                                &id,
                                &mut |s| {
                                    s.apply(&update, at);
                                    s.remember(serde_json::json!({"t": t, "i": i}), at);
                                },
                                Duration::from_secs(60),
                                at,
                            )
                            .unwrap()
                            .unwrap();
                    }
                });
            }
        });
        let read = store.get_session(&session.id, now()).unwrap().unwrap();
        assert_eq!(read.history.len(), 100, "{spec}: capped at 100 of 160");
        assert_eq!(read.current_task.as_deref(), Some("t1"));
        assert!(
            store
                .update_session("nope", &mut |_| {}, Duration::from_secs(1), now())
                .unwrap()
                .is_none()
        );
        // A short TTL expires; every write refreshes it.
        let brief = UserSession::new(new_session_id(), "bob".into(), now());
        store
            .create_session(&brief, Duration::from_secs(1))
            .unwrap();
        std::thread::sleep(Duration::from_millis(600));
        store
            .update_session(&brief.id, &mut |_| {}, Duration::from_secs(1), now())
            .unwrap()
            .unwrap();
        std::thread::sleep(Duration::from_millis(600));
        assert!(
            store.get_session(&brief.id, now()).unwrap().is_some(),
            "{spec}: refreshed"
        );
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(
            store.get_session(&brief.id, now()).unwrap(),
            None,
            "{spec}: expired"
        );
    });
}

/// What one client saw: each new grant as (resource, token), in order, and the errors
/// it met (only while a server was down).
#[derive(Default)]
struct ClientLog {
    grants: Vec<(String, u64)>,
    errors: usize,
}

/// `ops` lock operations by `holder` over [`RESOURCES`]. While it holds a resource it writes
/// its name in that resource's owner file and checks it is still there before releasing:
/// a second holder at the same time would have overwritten it.
fn client(
    store: &dyn MetaStore,
    holder: &str,
    ops: usize,
    owners: &Path,
    tolerate_errors: bool,
) -> ClientLog {
    let mut log = ClientLog::default();
    let mut done = 0;
    let mut turn = 0;
    let name = format!("{holder:<32}");
    let unavailable = |e: MetaStoreError, log: &mut ClientLog| {
        assert!(tolerate_errors, "{holder}: {e}");
        assert!(e.to_string().starts_with("meta store redis://"), "{e}");
        log.errors += 1;
        std::thread::sleep(Duration::from_millis(10));
    };
    while done < ops {
        let resource = RESOURCES[turn % RESOURCES.len()];
        turn += 1;
        done += 1;
        let lock = match store.acquire(resource, holder, Duration::from_secs(60), now()) {
            Ok(Ok(lock)) => lock,
            Ok(Err(_)) => continue,
            Err(e) => {
                unavailable(e, &mut log);
                continue;
            }
        };
        log.grants.push((resource.to_string(), lock.token));
        let owner = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(owners.join(resource.replace('/', "_")))
            .unwrap();
        owner.write_all_at(name.as_bytes(), 0).unwrap();
        // Its own acquire again only extends: same token.
        done += 1;
        match store.acquire(resource, holder, Duration::from_secs(60), now()) {
            Ok(Ok(again)) => assert_eq!(again.token, lock.token, "{holder}"),
            Ok(Err(refusal)) => panic!("{holder} holds {resource} but was refused: {refusal}"),
            Err(e) => unavailable(e, &mut log),
        }
        std::thread::yield_now();
        let mut seen = vec![0u8; 32];
        owner.read_exact_at(&mut seen, 0).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&seen),
            name,
            "two holders of {resource} at once"
        );
        done += 1;
        let mut failed = false;
        loop {
            match store.release(resource, holder, now()) {
                Ok(Ok(_)) => break,
                // A release that went through as the server stopped, its answer lost: the
                // retry finds the lock no longer ours.
                Ok(Err(LockRefusal::NotHolder { .. })) if failed => break,
                Ok(Err(refusal)) => panic!("{holder} could not release {resource}: {refusal}"),
                Err(e) => {
                    failed = true;
                    unavailable(e, &mut log)
                }
            }
        }
    }
    log
}

/// Run as a child process by `sixteen_clients_never_share_a_lock`; does nothing otherwise.
#[test]
fn client_process() {
    let Ok(spec) = std::env::var("META_CLIENT_STORE") else {
        return;
    };
    let holder = std::env::var("META_CLIENT_HOLDER").unwrap();
    let owners = PathBuf::from(std::env::var("META_CLIENT_OWNERS").unwrap());
    let store = open(&spec);
    let log = client(store.as_ref(), &holder, CLIENT_OPS, &owners, false);
    let grants: Vec<String> = log.grants.iter().map(|(r, t)| format!("{r} {t}")).collect();
    std::fs::write(owners.join(format!("{holder}.grants")), grants.join("\n")).unwrap();
}

/// Every grant's token is new: per resource, the tokens of all clients together never repeat
/// (and, when `contiguous`, are exactly 1..=n), and each client's own tokens only grow.
/// Across a server restart a grant whose answer was lost may never be seen: gaps are allowed.
fn check_tokens(spec: &str, logs: &[Vec<(String, u64)>], contiguous: bool) {
    let mut by_resource: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for log in logs {
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        for (resource, token) in log {
            let previous = last.insert(resource, *token).unwrap_or(0);
            assert!(
                *token > previous,
                "{spec}: {resource} token {token} after {previous}"
            );
            by_resource.entry(resource).or_default().push(*token);
        }
    }
    for (resource, mut tokens) in by_resource {
        tokens.sort_unstable();
        let count = tokens.len();
        tokens.dedup();
        assert_eq!(tokens.len(), count, "{spec}: {resource} tokens repeat");
        if contiguous {
            let expected: Vec<u64> = (1..=count as u64).collect();
            assert_eq!(tokens, expected, "{spec}: {resource} tokens skip");
        }
    }
}

#[test]
fn sixteen_clients_never_share_a_lock() {
    each_backend("sixteen_clients_never_share_a_lock", |spec| {
        let owners = tempfile::tempdir().unwrap();
        let children: Vec<_> = (0..8)
            .map(|i| {
                Command::new(std::env::current_exe().unwrap())
                    .args([
                        "--exact",
                        "client_process",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env("META_CLIENT_STORE", spec)
                    .env("META_CLIENT_HOLDER", format!("process-{i}"))
                    .env("META_CLIENT_OWNERS", owners.path())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut logs: Vec<Vec<(String, u64)>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..8)
                .map(|i| {
                    let owners = owners.path();
                    scope.spawn(move || {
                        let store = open(spec);
                        client(
                            store.as_ref(),
                            &format!("thread-{i}"),
                            CLIENT_OPS,
                            owners,
                            false,
                        )
                        .grants
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for (i, mut child) in children.into_iter().enumerate() {
            assert!(
                child.wait().unwrap().success(),
                "{spec}: client process {i} failed"
            );
            let text =
                std::fs::read_to_string(owners.path().join(format!("process-{i}.grants"))).unwrap();
            logs.push(
                text.lines()
                    .map(|l| {
                        let (r, t) = l.rsplit_once(' ').unwrap();
                        (r.to_string(), t.parse().unwrap())
                    })
                    .collect(),
            );
        }
        let grants: usize = logs.iter().map(Vec::len).sum();
        assert!(grants > 100, "{spec}: only {grants} grants");
        check_tokens(spec, &logs, true);
    });
}

#[test]
fn a_redis_restart_gives_clear_errors_and_no_double_grant_after() {
    let Some(binary) = require_redis("a_redis_restart") else {
        return;
    };
    let mut server = RedisServer::start(&binary);
    let url = server.url();
    let store = open(&url);
    let held = store
        .acquire("r", "w1", Duration::from_secs(60), now())
        .unwrap()
        .unwrap();
    server.stop();
    let down = store
        .acquire("r", "w2", Duration::from_secs(60), now())
        .unwrap_err()
        .to_string();
    assert!(down.starts_with(&format!("meta store {url}:")), "{down}");
    assert!(!down.contains('\n'), "{down}");
    assert!(store.check("r", now()).is_err());
    server.restart(&binary);
    // The lease survived: w2 is still refused, and the next grant's token is higher.
    assert!(matches!(
        store.acquire("r", "w2", Duration::from_secs(60), now()).unwrap(),
        Err(LockRefusal::HeldByOther { holder, .. }) if holder == "w1"
    ));
    store.release("r", "w1", now()).unwrap().unwrap();
    let next = store
        .acquire("r", "w2", Duration::from_secs(60), now())
        .unwrap()
        .unwrap();
    assert!(next.token > held.token);
    store.release("r", "w2", now()).unwrap().unwrap();

    // Four clients run through another restart: errors while it is down, never two holders.
    let owners = tempfile::tempdir().unwrap();
    let (logs, errors) = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4)
            .map(|i| {
                let (url, owners) = (url.clone(), owners.path());
                scope.spawn(move || {
                    client(open(&url).as_ref(), &format!("c{i}"), 4_000, owners, true)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        server.restart(&binary);
        let logs: Vec<ClientLog> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        let errors: usize = logs.iter().map(|l| l.errors).sum();
        (
            logs.into_iter().map(|l| l.grants).collect::<Vec<_>>(),
            errors,
        )
    });
    eprintln!("{errors} errors while the server restarted");
    // Tokens continue from the first part (r had 2 grants): shift them to check them alone.
    let shifted: Vec<Vec<(String, u64)>> = logs
        .into_iter()
        .map(|log| {
            log.into_iter()
                .map(|(r, t)| {
                    let before = if r == "r" { 2 } else { 0 };
                    (r, t - before)
                })
                .collect()
        })
        .collect();
    check_tokens(&url, &shifted, false);
}

/// A release whose answer was lost on a dropped connection is sent again: the store knows it
/// as the same release and says released, not "free" (which would tell the holder it held
/// nothing). Another release of the now free lock is still refused.
#[test]
fn a_redis_release_sent_twice_is_one_release() {
    let Some(binary) = require_redis("a_redis_release_sent_twice") else {
        return;
    };
    let server = RedisServer::start(&binary);
    let store = RedisStore::open(&server.url()).unwrap();
    let held = store
        .acquire("r", "w1", Duration::from_secs(60), now())
        .unwrap()
        .unwrap();
    let first = store.release_once("r", "w1", "n1").unwrap().unwrap();
    let again = store.release_once("r", "w1", "n1").unwrap().unwrap();
    assert_eq!((first.token, again.token), (held.token, held.token));
    assert_eq!(again.holder, "w1");
    assert!(matches!(
        store.release_once("r", "w1", "n2").unwrap(),
        Err(LockRefusal::NotHolder { held_by: None, .. })
    ));
    assert!(matches!(
        store.release_once("r", "w2", "n1").unwrap(),
        Err(LockRefusal::NotHolder { held_by: None, .. })
    ));
}
