//! The shared backend: Redis, for coordinators on several machines (`REDIS_URL` or `[meta]
//! store = "redis://..."`). Works with Redis 7 (Debian's): plain commands and Lua only.
//!
//! Keys, as in the seeds: `session:<id>` (SETEX), `lock:<resource>` (a JSON lease with `PX`
//! expiry), plus `lockfence:<resource>` (the fencing counter, never expiring) and
//! `orchestrate:resolutions` (the last 10 000 resolutions). Acquire and release are Lua
//! scripts, so deciding and writing are one step on the server; a session update is a WATCH
//! transaction retried on contention.
//!
//! One connection per store, behind a mutex. A dropped connection is reopened on the next
//! call (once, at once); while the server is down every call fails with a clear error and
//! nothing is granted.

use std::sync::Mutex;
use std::time::Duration;

use redis::{Client, Connection, RedisError, Script, Value as RedisValue};
use serde::Deserialize;
use serde_json::Value;

use super::conflicts::Resolution;
use super::locks::{Lock, LockRefusal};
use super::sessions::UserSession;
use super::store::{MetaStore, MetaStoreError, ttl_millis};
use crate::timestamp::Timestamp;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const RESOLUTIONS: &str = "orchestrate:resolutions";
const RESOLUTIONS_KEPT: i64 = 10_000;

/// KEYS: lock, fence. ARGV: holder, ttl ms, now ms.
/// Returns {1, lease} when granted or extended, {0, lease} when another holder has it.
const ACQUIRE: &str = r#"
local current = redis.call('GET', KEYS[1])
local acquired_at, token
if current then
  local lease = cjson.decode(current)
  if lease.holder ~= ARGV[1] then
    return {0, current}
  end
  acquired_at = string.format('%d', lease.acquired_at)
  token = string.format('%d', lease.token)
else
  acquired_at = ARGV[3]
  token = tostring(redis.call('INCR', KEYS[2]))
end
local expires_at = string.format('%d', tonumber(ARGV[3]) + tonumber(ARGV[2]))
local value = '{"holder":' .. cjson.encode(ARGV[1]) .. ',"acquired_at":' .. acquired_at ..
  ',"expires_at":' .. expires_at .. ',"token":' .. token .. '}'
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
return {1, value}
"#;

/// KEYS: lock, release receipt. ARGV: holder, the release's nonce.
/// Returns {1, lease} when released, {0, lease or nothing}. A release whose answer was lost
/// (the connection dropped) and is sent again finds its receipt: released, not "free".
const RELEASE: &str = r#"
local current = redis.call('GET', KEYS[1])
if not current then
  local receipt = redis.call('GET', KEYS[2])
  local mark = ARGV[2] .. ' '
  if receipt and string.sub(receipt, 1, #mark) == mark then
    local lease = string.sub(receipt, #mark + 1)
    if cjson.decode(lease).holder == ARGV[1] then
      return {1, lease}
    end
  end
  return {0}
end
if cjson.decode(current).holder ~= ARGV[1] then
  return {0, current}
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. current, 'PX', 60000)
return {1, current}
"#;

/// Names one release, so the same release sent twice is known as one.
fn release_nonce() -> String {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// A lease as stored under `lock:<resource>`.
#[derive(Deserialize)]
struct Lease {
    holder: String,
    acquired_at: i64,
    expires_at: i64,
    token: u64,
}

impl Lease {
    fn into_lock(self, resource: &str) -> Lock {
        Lock {
            resource: resource.to_string(),
            holder: self.holder,
            acquired_at: Timestamp(self.acquired_at),
            expires_at: Timestamp(self.expires_at),
            token: self.token,
        }
    }
}

pub struct RedisStore {
    client: Client,
    conn: Mutex<Option<Connection>>,
    described: String,
    acquire: Script,
    release: Script,
}

impl RedisStore {
    /// Checks the URL; connects on first use (a server not up yet is not an error here).
    pub fn open(url: &str) -> Result<RedisStore, MetaStoreError> {
        let described = without_password(url);
        let client = Client::open(url).map_err(|e| MetaStoreError::Unavailable {
            store: described.clone(),
            reason: format!("not a usable Redis URL: {e}"),
        })?;
        Ok(RedisStore {
            client,
            conn: Mutex::new(None),
            described,
            acquire: Script::new(ACQUIRE),
            release: Script::new(RELEASE),
        })
    }

    /// Runs `f` on the connection, opening it if needed; a connection that broke is dropped
    /// and `f` tried once more on a new one.
    fn with<T>(
        &self,
        mut f: impl FnMut(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, MetaStoreError> {
        let mut slot = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = None;
        for _ in 0..2 {
            if slot.is_none() {
                match self.connect() {
                    Ok(conn) => *slot = Some(conn),
                    Err(e) => return Err(self.unavailable(&e)),
                }
            }
            let conn = slot.as_mut().expect("connected above");
            match f(conn) {
                Ok(value) => return Ok(value),
                Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
                    *slot = None;
                    last = Some(e);
                }
                Err(e) => return Err(self.unavailable(&e)),
            }
        }
        Err(self.unavailable(&last.expect("a failure was kept")))
    }

    /// One release, named by `nonce`: sent again with the same nonce (its answer was lost),
    /// it answers as the first did.
    #[doc(hidden)]
    pub fn release_once(
        &self,
        resource: &str,
        holder: &str,
        nonce: &str,
    ) -> Result<Result<Lock, LockRefusal>, MetaStoreError> {
        let value = self.with(|c| {
            self.release
                .key(lock_key(resource))
                .key(format!("lockreleased:{resource}"))
                .arg(holder)
                .arg(nonce)
                .invoke::<RedisValue>(c)
        })?;
        let (released, lease) = self.answer(value)?;
        let lock = lease.map(|l| self.lease(resource, &l)).transpose()?;
        Ok(match (released, lock) {
            (true, Some(lock)) => Ok(lock),
            (_, lock) => Err(LockRefusal::NotHolder {
                resource: resource.to_string(),
                holder: holder.to_string(),
                held_by: lock.map(|l| l.holder),
            }),
        })
    }

    fn connect(&self) -> redis::RedisResult<Connection> {
        let conn = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(conn)
    }

    fn unavailable(&self, e: &RedisError) -> MetaStoreError {
        MetaStoreError::Unavailable {
            store: self.described.clone(),
            reason: e.to_string(),
        }
    }

    fn damaged(&self, key: &str, reason: impl ToString) -> MetaStoreError {
        MetaStoreError::Damaged {
            store: self.described.clone(),
            key: key.to_string(),
            reason: reason.to_string(),
        }
    }

    fn lease(&self, resource: &str, value: &[u8]) -> Result<Lock, MetaStoreError> {
        serde_json::from_slice::<Lease>(value)
            .map(|l| l.into_lock(resource))
            .map_err(|e| self.damaged(&lock_key(resource), e))
    }

    fn session(
        &self,
        id: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Option<UserSession>, MetaStoreError> {
        body.map(|b| serde_json::from_slice(&b).map_err(|e| self.damaged(&session_key(id), e)))
            .transpose()
    }

    /// A script's `{flag, lease?}` answer.
    fn answer(&self, value: RedisValue) -> Result<(bool, Option<Vec<u8>>), MetaStoreError> {
        let RedisValue::Array(items) = value else {
            return Err(self.damaged("script answer", format!("{value:?}")));
        };
        let flag = matches!(items.first(), Some(RedisValue::Int(1)));
        let lease = match items.get(1) {
            Some(RedisValue::BulkString(bytes)) => Some(bytes.clone()),
            _ => None,
        };
        Ok((flag, lease))
    }
}

fn session_key(id: &str) -> String {
    format!("session:{id}")
}

fn lock_key(resource: &str) -> String {
    format!("lock:{resource}")
}

fn fence_key(resource: &str) -> String {
    format!("lockfence:{resource}")
}

/// The URL as it may be shown: any password replaced.
fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// Whole seconds of `ttl`, at least one (what SETEX takes).
fn ttl_secs(ttl: Duration) -> u64 {
    ttl.as_secs().max(1) + u64::from(ttl.subsec_nanos() > 0 && ttl.as_secs() > 0)
}

impl MetaStore for RedisStore {
    fn describe(&self) -> String {
        self.described.clone()
    }

    fn create_session(&self, session: &UserSession, ttl: Duration) -> Result<(), MetaStoreError> {
        let body = serde_json::to_string(session).expect("a session serialises");
        let key = session_key(&session.id);
        self.with(|c| {
            redis::cmd("SETEX")
                .arg(&key)
                .arg(ttl_secs(ttl))
                .arg(&body)
                .query::<()>(c)
        })
    }

    fn get_session(
        &self,
        id: &str,
        _now: Timestamp,
    ) -> Result<Option<UserSession>, MetaStoreError> {
        let key = session_key(id);
        let body = self.with(|c| redis::cmd("GET").arg(&key).query::<Option<Vec<u8>>>(c))?;
        self.session(id, body)
    }

    fn update_session(
        &self,
        id: &str,
        change: &mut dyn FnMut(&mut UserSession),
        ttl: Duration,
        _now: Timestamp,
    ) -> Result<Option<UserSession>, MetaStoreError> {
        let key = session_key(id);
        let mut damaged = None;
        let updated = self.with(|c| {
            redis::transaction(c, &[&key], |c, pipe| {
                let body: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query(c)?;
                let Some(body) = body else {
                    return Ok(Some(None));
                };
                let mut session: UserSession = match serde_json::from_slice(&body) {
                    Ok(s) => s,
                    Err(e) => {
                        damaged = Some(e.to_string());
                        return Ok(Some(None));
                    }
                };
                change(&mut session);
                let body = serde_json::to_string(&session).expect("a session serialises");
                // Nil when the session changed since WATCH: try again.
                let done: Option<()> = pipe
                    .cmd("SETEX")
                    .arg(&key)
                    .arg(ttl_secs(ttl))
                    .arg(body)
                    .ignore()
                    .query(c)?;
                Ok(done.map(|()| Some(session)))
            })
        })?;
        match damaged {
            Some(reason) => Err(self.damaged(&key, reason)),
            None => Ok(updated),
        }
    }

    fn acquire(
        &self,
        resource: &str,
        holder: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Result<Lock, LockRefusal>, MetaStoreError> {
        let value = self.with(|c| {
            self.acquire
                .key(lock_key(resource))
                .key(fence_key(resource))
                .arg(holder)
                .arg(ttl_millis(ttl))
                .arg(now.millis())
                .invoke::<RedisValue>(c)
        })?;
        let (granted, lease) = self.answer(value)?;
        let lease = lease.ok_or_else(|| self.damaged(&lock_key(resource), "no lease answered"))?;
        let lock = self.lease(resource, &lease)?;
        Ok(if granted {
            Ok(lock)
        } else {
            Err(LockRefusal::HeldByOther {
                resource: resource.to_string(),
                holder: lock.holder,
                expires_at: lock.expires_at,
            })
        })
    }

    fn release(
        &self,
        resource: &str,
        holder: &str,
        _now: Timestamp,
    ) -> Result<Result<Lock, LockRefusal>, MetaStoreError> {
        self.release_once(resource, holder, &release_nonce())
    }

    fn check(&self, resource: &str, _now: Timestamp) -> Result<Option<Lock>, MetaStoreError> {
        let key = lock_key(resource);
        let value = self.with(|c| redis::cmd("GET").arg(&key).query::<Option<Vec<u8>>>(c))?;
        value.map(|v| self.lease(resource, &v)).transpose()
    }

    fn locks(&self, prefix: &str, _now: Timestamp) -> Result<Vec<Lock>, MetaStoreError> {
        let keys: Vec<String> = self.with(|c| {
            let mut keys = Vec::new();
            let mut cursor: u64 = 0;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg("lock:*")
                    .arg("COUNT")
                    .arg(1000)
                    .query(c)?;
                keys.extend(batch);
                if next == 0 {
                    return Ok(keys);
                }
                cursor = next;
            }
        })?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<Vec<u8>>> = self.with(|c| redis::cmd("MGET").arg(&keys).query(c))?;
        let mut locks = Vec::new();
        for (key, value) in keys.iter().zip(values) {
            // Gone since the scan (released or expired), or another prefix.
            let Some(value) = value.filter(|_| key["lock:".len()..].starts_with(prefix)) else {
                continue;
            };
            let lock = self.lease(&key["lock:".len()..], &value)?;
            locks.push(lock);
        }
        locks.sort_by(|a, b| a.resource.cmp(&b.resource));
        Ok(locks)
    }

    fn record_resolution(
        &self,
        resolution: &Resolution,
        context: &Value,
    ) -> Result<(), MetaStoreError> {
        let mut record = serde_json::to_value(resolution).expect("a resolution serialises");
        record["context"] = context.clone();
        let record = record.to_string();
        self.with(|c| {
            redis::pipe()
                .atomic()
                .cmd("LPUSH")
                .arg(RESOLUTIONS)
                .arg(&record)
                .ignore()
                .cmd("LTRIM")
                .arg(RESOLUTIONS)
                .arg(0)
                .arg(RESOLUTIONS_KEPT - 1)
                .ignore()
                .query::<()>(c)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_url_hides_its_password() {
        assert_eq!(
            without_password("redis://user:secret@db.example:6379/0"),
            "redis://***@db.example:6379/0"
        );
        assert_eq!(
            without_password("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn a_ttl_rounds_up_to_whole_seconds() {
        assert_eq!(ttl_secs(Duration::from_millis(10)), 1);
        assert_eq!(ttl_secs(Duration::from_secs(60)), 60);
        assert_eq!(ttl_secs(Duration::from_millis(60_500)), 61);
    }
}
