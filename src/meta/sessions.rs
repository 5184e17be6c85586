//! User sessions (the seeds' `Session`): who is working, on what, with what context, and the
//! last 100 things they asked. Pure: the store keeps them with a TTL refreshed on every write.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::timestamp::Timestamp;

/// The seeds' cap on a session's history.
pub const HISTORY_CAP: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserSession {
    pub id: String,
    pub user_id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub context: Map<String, Value>,
    pub current_project: Option<String>,
    pub current_task: Option<String>,
    /// Oldest first; at most [`HISTORY_CAP`] entries.
    pub history: Vec<Value>,
}

/// The fields `update` may change (the seed's PATCH body). `None` leaves a field alone; the
/// context given is merged key by key over the current one (a `null` value removes its key).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_project: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_task: Option<String>,
}

impl UserSession {
    pub fn new(id: String, user_id: String, now: Timestamp) -> UserSession {
        UserSession {
            id,
            user_id,
            created_at: now,
            updated_at: now,
            context: Map::new(),
            current_project: None,
            current_task: None,
            history: Vec::new(),
        }
    }

    pub fn apply(&mut self, update: &SessionUpdate, now: Timestamp) {
        if let Some(context) = &update.context {
            for (key, value) in context {
                if value.is_null() {
                    self.context.remove(key);
                } else {
                    self.context.insert(key.clone(), value.clone());
                }
            }
        }
        if let Some(project) = &update.current_project {
            self.current_project = Some(project.clone()).filter(|p| !p.is_empty());
        }
        if let Some(task) = &update.current_task {
            self.current_task = Some(task.clone()).filter(|t| !t.is_empty());
        }
        self.updated_at = now;
    }

    /// Appends to the history, dropping the oldest entries past the cap.
    pub fn remember(&mut self, entry: Value, now: Timestamp) {
        self.history.push(entry);
        let excess = self.history.len().saturating_sub(HISTORY_CAP);
        self.history.drain(..excess);
        self.updated_at = now;
    }
}

/// A random (version 4) UUID for a new session: from the kernel, so ids are not guessable.
pub fn new_session_id() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_err()
    {
        // No /dev/urandom: the clock and the pid still make ids differ.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mixed = nanos ^ (u128::from(std::process::id()) << 64);
        bytes = mixed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
            .to_le_bytes();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn history_keeps_the_last_hundred_entries() {
        let mut s = UserSession::new("s".into(), "u".into(), Timestamp(0));
        for i in 0..150 {
            s.remember(json!({"n": i}), Timestamp(i));
        }
        assert_eq!(s.history.len(), HISTORY_CAP);
        assert_eq!(s.history[0], json!({"n": 50}));
        assert_eq!(s.history[99], json!({"n": 149}));
        assert_eq!(s.updated_at, Timestamp(149));
        assert_eq!(s.created_at, Timestamp(0));
    }

    #[test]
    fn an_update_merges_the_context_and_sets_only_what_it_names() {
        let mut s = UserSession::new("s".into(), "u".into(), Timestamp(0));
        s.current_task = Some("t1".into());
        let update: SessionUpdate =
            serde_json::from_value(json!({"context": {"a": 1, "b": 2}, "current_project": "p"}))
                .unwrap();
        s.apply(&update, Timestamp(5));
        let update: SessionUpdate =
            serde_json::from_value(json!({"context": {"a": null, "c": 3}})).unwrap();
        s.apply(&update, Timestamp(9));
        assert_eq!(Value::Object(s.context.clone()), json!({"b": 2, "c": 3}));
        assert_eq!(s.current_project.as_deref(), Some("p"));
        assert_eq!(s.current_task.as_deref(), Some("t1"));
        assert_eq!(s.updated_at, Timestamp(9));
        // An unknown field is refused, not ignored.
        assert!(serde_json::from_value::<SessionUpdate>(json!({"user_id": "x"})).is_err());
    }

    #[test]
    fn session_ids_are_version_4_uuids_and_differ() {
        let a = new_session_id();
        let b = new_session_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]), "{a}");
    }
}
