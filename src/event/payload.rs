//! `Payload`: an event's fields. A small map kept in key order, so it writes exactly the bytes
//! a `serde_json::Map` (a `BTreeMap`) wrote, but one vector instead of a tree, and its keys
//! are static strings wherever orchestrate names them: an adapter stamping a few fields on
//! every event allocates for their values only, and a reader of a journal shares the keys it
//! knows instead of copying them from every line.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::ops::Index;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A field name: static when orchestrate wrote it, owned when it came from elsewhere.
pub type Key = Cow<'static, str>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Payload {
    /// Sorted by key, no key twice.
    entries: Vec<(Key, Value)>,
}

impl Payload {
    pub fn new() -> Self {
        Payload::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Payload {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// Where `key` is, or would go. A payload has a handful of fields, and most of its keys
    /// differ in their first byte: a walk comparing that byte inline is cheaper than halving
    /// with a `memcmp` call per step.
    fn position(&self, key: &str) -> Result<usize, usize> {
        for (at, (k, _)) in self.entries.iter().enumerate() {
            match compare_keys(k, key) {
                Ordering::Less => continue,
                Ordering::Equal => return Ok(at),
                Ordering::Greater => return Err(at),
            }
        }
        Err(self.entries.len())
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.position(key).ok().map(|at| &self.entries[at].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key`, returning the value it replaces (the key written first stays, as a map's).
    pub fn insert(&mut self, key: impl Into<Key>, value: Value) -> Option<Value> {
        let key = key.into();
        // Keys read from a journal come in order: each goes at the end.
        if self
            .entries
            .last()
            .is_none_or(|(last, _)| compare_keys(last, &key) == Ordering::Less)
        {
            self.entries.push((key, value));
            return None;
        }
        match self.position(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                // Pushed, then swapped into place: a payload holds a handful of fields, and
                // swapping fixed-size entries stays inline where `Vec::insert` calls memmove
                // (an adapter's fields come in no key order, so this runs for most of them).
                self.entries.push((key, value));
                for i in (at + 1..self.entries.len()).rev() {
                    self.entries.swap(i - 1, i);
                }
                None
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.position(key).ok().map(|at| self.entries.remove(at).1)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The field names in key order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_ref())
    }
}

/// The order of `str` (bytewise), decided by the first bytes when they differ.
fn compare_keys(a: &str, b: &str) -> Ordering {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}

/// A missing field reads as `null`, as indexing a `Value` does.
impl Index<&str> for Payload {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.get(key).unwrap_or(&NULL)
    }
}

impl IntoIterator for Payload {
    type Item = (Key, Value);
    type IntoIter = std::vec::IntoIter<(Key, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl From<Map<String, Value>> for Payload {
    fn from(map: Map<String, Value>) -> Self {
        // A `Map` iterates in key order already, with no key twice.
        Payload {
            entries: map
                .into_iter()
                .map(|(k, v)| (shared_key(Cow::Owned(k)), v))
                .collect(),
        }
    }
}

impl From<Payload> for Map<String, Value> {
    fn from(payload: Payload) -> Self {
        payload
            .entries
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v))
            .collect()
    }
}

impl From<Payload> for Value {
    fn from(payload: Payload) -> Self {
        Value::Object(payload.into())
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (key, value) in &self.entries {
            map.serialize_entry(key.as_ref(), value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(PayloadVisitor)
    }
}

struct PayloadVisitor;

impl<'de> Visitor<'de> for PayloadVisitor {
    type Value = Payload;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Payload, A::Error> {
        let mut payload = Payload::with_capacity(access.size_hint().unwrap_or(8).min(32));
        while let Some(key) = access.next_key_seed(KeySeed)? {
            let value: Value = access.next_value()?;
            // A key given twice keeps its last value, as `serde_json::Map` does.
            payload.insert(key, value);
        }
        Ok(payload)
    }
}

/// Reads a key without copying it when it is one orchestrate writes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(known_key(key).map_or_else(|| Cow::Owned(key.to_string()), Cow::Borrowed))
    }

    fn visit_string<E: de::Error>(self, key: String) -> Result<Key, E> {
        Ok(shared_key(Cow::Owned(key)))
    }
}

/// `key` as a static string when orchestrate knows it, else as it is.
fn shared_key(key: Key) -> Key {
    match known_key(&key) {
        Some(known) => Cow::Borrowed(known),
        None => key,
    }
}

/// `key` as a static string when it is one of `KNOWN_KEYS`.
fn known_key(key: &str) -> Option<&'static str> {
    KNOWN_KEYS.binary_search(&key).ok().map(|at| KNOWN_KEYS[at])
}

/// The field names orchestrate's adapters and coordinator write most, sorted (searched by
/// halves); the rest are owned.
const KNOWN_KEYS: [&str; 48] = [
    "action",
    "agent",
    "attempt",
    "bytes",
    "changed",
    "command",
    "cost_usd",
    "cwd",
    "delta",
    "detail",
    "duration_ms",
    "error",
    "exit_code",
    "fatal",
    "files",
    "final",
    "http_status",
    "input",
    "item_id",
    "kind",
    "line",
    "max_attempts",
    "message",
    "model",
    "native",
    "ok",
    "output",
    "path",
    "paths",
    "phase",
    "pid",
    "progress",
    "reason",
    "reported",
    "result",
    "rule",
    "session_id",
    "severity",
    "source",
    "status",
    "subagent",
    "tentative",
    "text",
    "todos",
    "tool",
    "tool_id",
    "usage",
    "worker",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Parsed as a `Map` and as a `Payload`, the same line writes the same bytes back.
    #[test]
    fn a_payload_reads_and_writes_what_a_json_map_does() {
        let lines = [
            r#"{"text":"a","native":"x","kind":"message","item_id":"i1"}"#,
            r#"{"zeta":1,"alpha":{"b":2,"a":[1,"x"]},"text":"t","Text":"upper","_":null}"#,
            r#"{"text":"first","text":"second"}"#,
            r#"{"tool_id":1,"tool":2,"text":3,"t":4,"tentative":5,"":6,"todos":7}"#,
            r#"{"t\u00e9xt":"escaped key","usage":{"input_tokens":3}}"#,
            r#"{}"#,
        ];
        for line in lines {
            let map: Map<String, Value> = serde_json::from_str(line).unwrap();
            let payload: Payload = serde_json::from_str(line).unwrap();
            assert_eq!(
                serde_json::to_string(&payload).unwrap(),
                serde_json::to_string(&map).unwrap(),
                "{line}"
            );
            assert_eq!(Payload::from(map.clone()), payload, "{line}");
            assert_eq!(Map::from(payload.clone()), map, "{line}");
            for (key, value) in &map {
                assert_eq!(payload.get(key), Some(value), "{line}");
            }
        }
        for bad in [r#"[1]"#, r#"{"a":}"#, r#"{1:2}"#, r#""text""#] {
            assert!(serde_json::from_str::<Payload>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fields_are_set_replaced_and_removed_in_key_order() {
        let mut payload = Payload::new();
        assert_eq!(payload.insert("text", json!("a")), None);
        payload.insert("native", json!("n"));
        payload.insert(String::from("zeta"), json!(1));
        assert_eq!(payload.insert("text", json!("b")), Some(json!("a")));
        assert_eq!(
            payload.keys().collect::<Vec<_>>(),
            ["native", "text", "zeta"]
        );
        assert_eq!(payload["text"], json!("b"));
        assert_eq!(payload["missing"], Value::Null);
        assert_eq!(payload.remove("native"), Some(json!("n")));
        assert!(!payload.contains_key("native"));
        assert_eq!(payload.len(), 2);
        assert_eq!(Value::from(payload), json!({"text": "b", "zeta": 1}),);
    }

    #[test]
    fn known_keys_are_shared_not_copied() {
        assert!(KNOWN_KEYS.is_sorted(), "binary search needs them sorted");
        let payload: Payload = serde_json::from_str(r#"{"text":"a","custom":1}"#).unwrap();
        let kinds: Vec<bool> = payload
            .entries
            .iter()
            .map(|(k, _)| matches!(k, Cow::Borrowed(_)))
            .collect();
        assert_eq!(kinds, [false, true]);
    }
}
