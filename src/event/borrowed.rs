//! An optional string field read without copying it out of the line.
//!
//! `#[serde(borrow)]` makes a `Cow<'a, str>` field borrow from the input where it can (no
//! escapes), but not one inside an `Option`: serde builds that one as an owned `String`
//! every time (serde-rs/serde#2016, declined upstream). On the adapters' typed reads that was
//! one allocation and copy per optional field per line, most of them dropped unused.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

/// The one place `borrow` applies: a `Cow` that is the whole of its field.
#[derive(Deserialize)]
struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);

/// For an `Option<Cow<'a, str>>` field, as
/// `#[serde(default, borrow, deserialize_with = "optional_str")]`: absent or null is `None`,
/// a string is borrowed unless it has escapes, anything else is the error a plain
/// `Option<Cow<str>>` gives. `default` is needed: with `deserialize_with`, serde no longer
/// reads a missing field as `None` but fails the whole line.
pub fn optional_str<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cow<'de, str>>, D::Error> {
    Ok(Option::<Borrowed<'de>>::deserialize(deserializer)?.map(|text| text.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Line<'a> {
        #[serde(default, borrow, deserialize_with = "optional_str")]
        text: Option<Cow<'a, str>>,
    }

    fn read(line: &str) -> Option<Cow<'_, str>> {
        serde_json::from_str::<Line<'_>>(line).unwrap().text
    }

    #[test]
    fn an_optional_string_is_borrowed_unless_it_has_escapes() {
        assert!(matches!(
            read(r#"{"text":"plain"}"#),
            Some(Cow::Borrowed("plain"))
        ));
        assert!(matches!(read(r#"{"text":"a\nb"}"#), Some(Cow::Owned(s)) if s == "a\nb"));
        assert!(read(r#"{"text":null}"#).is_none());
        assert!(read("{}").is_none());
        assert!(serde_json::from_str::<Line<'_>>(r#"{"text":5}"#).is_err());
    }
}
