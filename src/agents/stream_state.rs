//! Bookkeeping an adapter keeps across lines of one stream: tool calls waiting for their
//! results, and streamed text deltas waiting to become one readable event.

use std::collections::HashMap;

use serde_json::Value;

use super::draft::Draft;
use crate::event::EventType;

/// Calls waiting for their results are forgotten past this many, so memory stays bounded even
/// when a stream never closes its calls.
const MAX_PENDING: usize = 4096;

/// Streamed text is released per line or per this many bytes.
const DELTA_FLUSH_BYTES: usize = 200;

/// Tool calls by id, until their result arrives.
#[derive(Default)]
pub struct PendingTools {
    calls: HashMap<String, (String, Value)>,
}

impl PendingTools {
    pub fn insert(&mut self, id: &str, name: &str, input: Value) {
        if self.calls.len() >= MAX_PENDING {
            self.calls.clear();
        }
        self.calls.insert(id.to_string(), (name.to_string(), input));
    }

    /// The call's name and input; an unknown id gives `("tool", null)`.
    pub fn take(&mut self, id: &str) -> (String, Value) {
        self.calls
            .remove(id)
            .unwrap_or_else(|| ("tool".to_string(), Value::Null))
    }
}

/// Text deltas coalesced into `progress` events: one per line or per ~200 bytes, not one per
/// token.
#[derive(Default)]
pub struct TextDeltas {
    text: String,
}

impl TextDeltas {
    pub fn push(&mut self, delta: &str, native: &str, out: &mut Vec<Draft>) {
        self.text.push_str(delta);
        if self.text.contains('\n') || self.text.len() >= DELTA_FLUSH_BYTES {
            self.flush(native, out);
        }
    }

    pub fn flush(&mut self, native: &str, out: &mut Vec<Draft>) {
        if self.text.trim().is_empty() {
            self.text.clear();
            return;
        }
        let text = std::mem::take(&mut self.text);
        out.push(
            Draft::new(EventType::Progress, text.trim())
                .native(native)
                .with("kind", "message")
                .with("delta", true),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_flush_per_line_or_size() {
        let mut d = TextDeltas::default();
        let mut out = Vec::new();
        d.push("Hello ", "n", &mut out);
        assert!(out.is_empty());
        d.push("world\n", "n", &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text(), "Hello world");
        d.push(&"x".repeat(DELTA_FLUSH_BYTES), "n", &mut out);
        assert_eq!(out.len(), 2);
        d.push("   ", "n", &mut out);
        d.flush("n", &mut out);
        assert_eq!(out.len(), 2, "blank text is not an event");
    }

    #[test]
    fn pending_tools_stay_bounded() {
        let mut p = PendingTools::default();
        for i in 0..MAX_PENDING + 10 {
            p.insert(&i.to_string(), "Bash", Value::Null);
        }
        assert!(p.calls.len() <= MAX_PENDING);
        assert_eq!(p.take("nope").0, "tool");
    }
}
