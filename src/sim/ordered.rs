//! A JSON object written with its fields in the order given. A `serde_json::Value` writes an
//! object's keys sorted; the real CLIs write theirs in the order their structs declare them
//! (Codex: `{"type":"item.completed","item":{"id":...,"type":...}}`), and a sim prints what its
//! real CLI prints.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Object(Vec<(&'static str, Field)>);

#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Value(Value),
    Object(Object),
    Objects(Vec<Object>),
}

impl Object {
    pub fn new() -> Self {
        Object::default()
    }

    /// `key` last, or in its place if it is there already.
    pub fn with(mut self, key: &'static str, value: impl Into<Field>) -> Self {
        self.set(key, value);
        self
    }

    pub fn set(&mut self, key: &'static str, value: impl Into<Field>) {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, field)) => *field = value,
            None => self.0.push((key, value)),
        }
    }

    /// As a `Value` (whose keys are sorted), for what is kept rather than printed.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl<T: Into<Value>> From<T> for Field {
    fn from(value: T) -> Self {
        Field::Value(value.into())
    }
}

impl From<Object> for Field {
    fn from(object: Object) -> Self {
        Field::Object(object)
    }
}

impl Serialize for Object {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, field) in &self.0 {
            map.serialize_entry(key, field)?;
        }
        map.end()
    }
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Value(value) => value.serialize(serializer),
            Field::Object(object) => object.serialize(serializer),
            Field::Objects(objects) => {
                let mut seq = serializer.serialize_seq(Some(objects.len()))?;
                for object in objects {
                    seq.serialize_element(object)?;
                }
                seq.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_written_in_the_order_given() {
        let mut item = Object::new()
            .with("id", "item_0")
            .with("type", "command_execution")
            .with("exit_code", Value::Null);
        item.set("exit_code", 0);
        let line = Object::new()
            .with("type", "item.completed")
            .with("item", item)
            .with(
                "changes",
                Field::Objects(vec![Object::new().with("path", "a").with("kind", "add")]),
            );
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"type":"item.completed","item":{"id":"item_0","type":"command_execution","exit_code":0},"changes":[{"path":"a","kind":"add"}]}"#
        );
        assert_eq!(line.to_value()["item"]["exit_code"], json!(0));
    }
}
