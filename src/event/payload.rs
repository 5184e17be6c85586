//! `Payload`: an event's fields. A small map, always written in key order, so it writes exactly
//! the bytes a `serde_json::Map` (a `BTreeMap`) wrote, but one vector instead of a tree, and its keys
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

/// Up to this many fields a payload keeps them in the order they were set, and sorts them
/// only to write them out; past it, in key order (found by halves).
const SMALL: usize = 16;
// A small payload's order is sorted as `u8` indexes.
const _: () = assert!(SMALL <= 256);

#[derive(Clone, Default)]
pub struct Payload {
    /// No key twice. In the order set while there are at most `SMALL` (sorting each field into
    /// place as it came was 8 % of a Codex stream's time), else sorted by key, so that setting a
    /// field of a large payload (a custom agent's line is up to 8 MiB) never walks the others.
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

    /// Whether the entries are kept in key order: a matter of size, not of what was set.
    fn kept_sorted(&self) -> bool {
        self.entries.len() > SMALL
    }

    /// Where `key` is: Ok, or Err with where to put it (its place in key order when the
    /// entries are kept sorted, the end otherwise).
    fn position(&self, key: &str) -> Result<usize, usize> {
        if self.kept_sorted() {
            self.entries.binary_search_by(|(k, _)| compare_keys(k, key))
        } else {
            self.entries
                .iter()
                .position(|(k, _)| same_key(k, key))
                .ok_or(self.entries.len())
        }
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
        match self.position(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) if self.kept_sorted() => {
                self.entries.insert(at, (key, value));
                None
            }
            Err(_) => {
                self.entries.push((key, value));
                if self.kept_sorted() {
                    // Just past `SMALL`: sorted once, kept sorted from now on.
                    self.entries = in_key_order(std::mem::take(&mut self.entries));
                }
                None
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        // `Vec::remove` keeps the order, sorted or not.
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
        self.in_key_order().map(|(k, _)| k.as_ref())
    }

    /// The fields in key order: a small payload's sorted through a few indexes on the stack.
    fn in_key_order(&self) -> impl Iterator<Item = &(Key, Value)> {
        let mut order = [0u8; SMALL];
        let sorted = self.kept_sorted();
        if !sorted {
            let order = &mut order[..self.entries.len()];
            for (at, slot) in order.iter_mut().enumerate() {
                *slot = at as u8;
            }
            order.sort_unstable_by(|&a, &b| {
                compare_keys(&self.entries[a as usize].0, &self.entries[b as usize].0)
            });
        }
        (0..self.entries.len()).map(move |at| {
            let at = if sorted { at } else { order[at] as usize };
            &self.entries[at]
        })
    }
}

/// Whether two keys are the same, mostly told by their length or first byte, inline.
fn same_key(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.as_bytes().first() == b.as_bytes().first() && a == b
}

/// Equal when they have the same fields, in whatever order they were set.
impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.entries.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.in_key_order().map(|(k, v)| (k, v)))
            .finish()
    }
}

/// `entries` in key order, no key twice: a key given twice keeps its last value, as
/// `serde_json::Map` does. Entries in order already (a journal line's, a `Map`'s) pass as they
/// are.
fn in_key_order(mut entries: Vec<(Key, Value)>) -> Vec<(Key, Value)> {
    if entries.is_sorted_by(|(a, _), (b, _)| compare_keys(a, b) == Ordering::Less) {
        return entries;
    }
    entries.sort_by(|(a, _), (b, _)| compare_keys(a, b));
    entries.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            std::mem::swap(&mut later.1, &mut kept.1);
        }
        same
    });
    entries
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

/// The fields in key order.
impl IntoIterator for Payload {
    type Item = (Key, Value);
    type IntoIter = std::vec::IntoIter<(Key, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        in_key_order(self.entries).into_iter()
    }
}

impl From<Map<String, Value>> for Payload {
    fn from(map: Map<String, Value>) -> Self {
        // A `Map` (a `BTreeMap` while serde_json's `preserve_order` is off) iterates in key
        // order already; sorted only if a dependency ever turns that feature on.
        Payload {
            entries: in_key_order(
                map.into_iter()
                    .map(|(k, v)| (shared_key(Cow::Owned(k)), v))
                    .collect(),
            ),
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
        for (key, value) in self.in_key_order() {
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
        let mut entries: Vec<(Key, Value)> =
            Vec::with_capacity(access.size_hint().unwrap_or(8).min(32));
        while let Some(key) = access.next_key_seed(KeySeed)? {
            let value: Value = access.next_value()?;
            entries.push((key, value));
        }
        // Sorted once, not field by field: setting fields one by one would walk the others
        // for each, and a hostile 8 MiB line has a million.
        Ok(Payload {
            entries: in_key_order(entries),
        })
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

    /// Past `SMALL` fields a payload keeps them sorted; below, in the order set. Either way
    /// it reads, compares and writes as a map does.
    #[test]
    fn small_and_large_payloads_behave_as_a_map() {
        for count in [0, 3, SMALL - 1, SMALL, SMALL + 1, 3 * SMALL, 5000] {
            let mut payload = Payload::new();
            let mut map = Map::new();
            // In no key order, and each key set twice.
            for round in 0..2 {
                for i in (0..count).rev().chain(0..count).step_by(2) {
                    let key = format!("k{}", (i * 7919) % count.max(1));
                    payload.insert(key.clone(), json!([round, i]));
                    map.insert(key, json!([round, i]));
                }
            }
            assert_eq!(payload.len(), map.len(), "{count}");
            let written = serde_json::to_string(&payload).unwrap();
            assert_eq!(written, serde_json::to_string(&map).unwrap(), "{count}");
            assert!(payload.keys().is_sorted(), "{count}");
            for (key, value) in &map {
                assert_eq!(payload.get(key), Some(value), "{count} {key}");
            }
            // Read back from the sorted line, or from it with its fields reversed and one of
            // them given twice (the first value lost): the same payload.
            assert_eq!(serde_json::from_str::<Payload>(&written).unwrap(), payload);
            let mut fields: Vec<String> = map
                .iter()
                .rev()
                .map(|(k, v)| format!("{}:{v}", json!(k)))
                .collect();
            if let Some(key) = map.keys().next() {
                fields.insert(0, format!("{}:\"lost\"", json!(key)));
            }
            fields.extend([r#""dup":1"#.into(), r#""dup":2"#.into()]);
            let mut reversed: Payload =
                serde_json::from_str(&format!("{{{}}}", fields.join(","))).unwrap();
            assert_eq!(reversed.remove("dup"), Some(json!(2)), "{count}");
            assert_eq!(reversed, payload, "{count}");
            assert_eq!(Map::from(reversed), map, "{count}");
            // Removing fields down past `SMALL` keeps every other; setting them again (back
            // past it) gives the whole payload back.
            for key in map.keys().step_by(2) {
                assert!(payload.remove(key).is_some());
            }
            for (at, (key, value)) in map.iter().enumerate() {
                assert_eq!(payload.get(key), (at % 2 == 1).then_some(value), "{count}");
            }
            for (key, value) in map.iter().step_by(2) {
                assert_eq!(payload.insert(key.clone(), value.clone()), None);
            }
            assert_eq!(serde_json::to_string(&payload).unwrap(), written, "{count}");
        }
    }

    #[test]
    fn payloads_with_the_same_fields_set_in_another_order_are_equal() {
        let mut a = Payload::new();
        a.insert("text", json!("t"));
        a.insert("kind", json!("k"));
        let mut b = Payload::new();
        b.insert("kind", json!("k"));
        b.insert("text", json!("t"));
        assert_eq!(a, b);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        b.insert("text", json!("other"));
        assert_ne!(a, b);
        b.insert("extra", json!(1));
        assert_ne!(b, a);
        assert_ne!(a, b);
    }

    #[test]
    fn known_keys_are_shared_not_copied() {
        assert!(KNOWN_KEYS.is_sorted(), "binary search needs them sorted");
        let payload: Payload = serde_json::from_str(r#"{"text":"a","custom":1}"#).unwrap();
        let shared = |key: &str| {
            payload
                .entries
                .iter()
                .any(|(k, _)| k == key && matches!(k, Cow::Borrowed(_)))
        };
        assert!(shared("text"));
        assert!(!shared("custom"));
    }
}
