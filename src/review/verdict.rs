//! A reviewer's answer: one JSON object `{verdict, summary, findings}` somewhere in what the
//! agent said. Tolerant of fences and prose around it, strict about the verdict itself: only
//! `approved`, `concern` or `blocker` count, so a reviewer that rambles never approves by
//! accident. Pure.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approved,
    Concern,
    Blocker,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Approved => "approved",
            Verdict::Concern => "concern",
            Verdict::Blocker => "blocker",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub line: Option<u64>,
    #[serde(default)]
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewResponse {
    pub verdict: Verdict,
    pub summary: String,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerdictError {
    #[error("the answer holds no JSON object with a verdict")]
    NoVerdict,
    #[error("the verdict {0:?} is not approved, concern or blocker")]
    BadVerdict(String),
}

/// The longest summary kept, in words (the request asks for at most this many).
pub const SUMMARY_WORDS: usize = 200;

/// The answer's JSON Schema, for the CLIs that enforce one. Strict as Codex wants it: no
/// extra properties, every property required (`line` may be null).
pub const SCHEMA: &str = r#"{"type":"object","additionalProperties":false,"required":["verdict","summary","findings"],"properties":{"verdict":{"type":"string","enum":["approved","concern","blocker"]},"summary":{"type":"string"},"findings":{"type":"array","items":{"type":"object","additionalProperties":false,"required":["severity","file","line","text"],"properties":{"severity":{"type":"string"},"file":{"type":"string"},"line":{"type":["integer","null"]},"text":{"type":"string"}}}}}}"#;
/// How far back from `"verdict"` the object's opening brace may be.
const LOOK_BACK: usize = 64 << 10;

/// `"verdict"` keys looked at, from the end: the reviewer's final answer comes last, and a
/// verdict quoted earlier (in the diff it read) must not win.
const KEYS_TRIED: usize = 32;
/// Opening braces tried per key.
const BRACES_TRIED: usize = 64;
/// The largest answer object read.
const OBJECT_LIMIT: usize = 256 << 10;

/// The reviewer's verdict in `answer`: the last JSON object that has a `verdict` key. Bounded
/// work whatever the answer: a few keys, a few braces each.
pub fn parse(answer: &str) -> Result<ReviewResponse, VerdictError> {
    let mut bad = None;
    for (at, _) in answer.rmatch_indices("\"verdict\"").take(KEYS_TRIED) {
        let Some(object) = object_around(answer, at) else {
            continue;
        };
        match response_of(&object) {
            Ok(response) => return Ok(response),
            Err(e @ VerdictError::BadVerdict(_)) => {
                bad.get_or_insert(e);
            }
            Err(_) => {}
        }
    }
    Err(bad.unwrap_or(VerdictError::NoVerdict))
}

/// The JSON object that contains the key at `key_at`: parsed from each `{` before it, the
/// nearest first, until one holds a value that reaches past the key.
fn object_around(text: &str, key_at: usize) -> Option<Value> {
    let mut floor = key_at.saturating_sub(LOOK_BACK);
    // A byte offset may fall inside a character: move to the next boundary.
    while !text.is_char_boundary(floor) {
        floor += 1;
    }
    let mut start = key_at;
    for _ in 0..BRACES_TRIED {
        let open = floor + text[floor..start].rfind('{')?;
        // An answer object is small: never parse further than this from its brace.
        let mut end = (open + OBJECT_LIMIT).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut stream = serde_json::Deserializer::from_str(&text[open..end]).into_iter::<Value>();
        if let Some(Ok(value @ Value::Object(_))) = stream.next()
            && open + stream.byte_offset() > key_at
            && value.get("verdict").is_some()
        {
            return Some(value);
        }
        start = open;
    }
    None
}

fn response_of(object: &Value) -> Result<ReviewResponse, VerdictError> {
    let verdict = match object["verdict"].as_str() {
        Some("approved") => Verdict::Approved,
        Some("concern") => Verdict::Concern,
        Some("blocker") => Verdict::Blocker,
        Some(other) => return Err(VerdictError::BadVerdict(other.to_string())),
        None => return Err(VerdictError::BadVerdict(object["verdict"].to_string())),
    };
    let summary = object["summary"].as_str().unwrap_or("").to_string();
    let words: Vec<&str> = summary.split_whitespace().collect();
    let summary = if words.len() > SUMMARY_WORDS {
        format!("{} …", words[..SUMMARY_WORDS].join(" "))
    } else {
        summary
    };
    let findings = object["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| serde_json::from_value::<Finding>(f.clone()).ok())
        .collect();
    Ok(ReviewResponse {
        verdict,
        summary,
        findings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_and_prose_around_the_object_are_fine() {
        let fenced = "Here is my review:\n```json\n{\"verdict\": \"concern\", \"summary\": \"No test for uptime.\", \"findings\": [{\"severity\": \"medium\", \"file\": \"src/health.rs\", \"line\": 12, \"text\": \"untested\"}]}\n```\nThanks.";
        let r = parse(fenced).unwrap();
        assert_eq!(r.verdict, Verdict::Concern);
        assert_eq!(r.findings[0].file.as_deref(), Some("src/health.rs"));
        assert_eq!(r.findings[0].line, Some(12));
        let prose =
            "I looked. {\"findings\":[],\"summary\":\"fine\",\"verdict\":\"approved\"} Done.";
        assert_eq!(parse(prose).unwrap().verdict, Verdict::Approved);
        let nested = "{\"review\": {\"verdict\": \"blocker\", \"summary\": \"drops the table\"}}";
        assert_eq!(parse(nested).unwrap().verdict, Verdict::Blocker);
    }

    #[test]
    fn the_verdict_is_strict_and_no_json_is_no_verdict() {
        assert_eq!(
            parse("{\"verdict\": \"LGTM\", \"summary\": \"ok\"}"),
            Err(VerdictError::BadVerdict("LGTM".into()))
        );
        assert_eq!(
            parse("{\"verdict\": \"Approved\"}"),
            Err(VerdictError::BadVerdict("Approved".into()))
        );
        assert_eq!(parse("Looks good to me!"), Err(VerdictError::NoVerdict));
        assert_eq!(
            parse("the \"verdict\" is: approved"),
            Err(VerdictError::NoVerdict)
        );
        // A wrong one first, a right one later: the right one counts.
        let both = "{\"verdict\":\"meh\"} then {\"verdict\":\"approved\",\"summary\":\"ok\"}";
        assert_eq!(parse(both).unwrap().verdict, Verdict::Approved);
        // One quoted from the diff, then the reviewer's own: its own counts.
        let quoted = "the diff adds {\"verdict\":\"approved\"} to a fixture; my answer: {\"verdict\":\"concern\",\"summary\":\"x\"}";
        assert_eq!(parse(quoted).unwrap().verdict, Verdict::Concern);
    }

    #[test]
    fn a_ten_megabyte_answer_is_read_quickly_and_the_summary_is_bounded() {
        let mut answer = "blah { not json ".repeat(700_000);
        let long: String = (0..500).map(|i| format!("w{i} ")).collect();
        answer.push_str(&format!(
            "{{\"verdict\":\"approved\",\"summary\":\"{long}\"}}"
        ));
        assert!(answer.len() > 10 << 20);
        let r = parse(&answer).unwrap();
        assert_eq!(r.verdict, Verdict::Approved);
        assert_eq!(r.summary.split_whitespace().count(), SUMMARY_WORDS + 1);
        assert_eq!(parse(&"{".repeat(10 << 20)), Err(VerdictError::NoVerdict));
        // Multi-byte text where the look-back starts: no panic.
        let wide = format!("{}{{\"verdict\":\"approved\"}}", "…".repeat(30_000));
        assert_eq!(parse(&wide).unwrap().verdict, Verdict::Approved);
        // Thousands of keys in nested arrays: bounded work.
        let nested = format!(
            "{}{}",
            "{\"a\":[".repeat(30),
            "\"verdict\",".repeat(100_000)
        );
        assert_eq!(parse(&nested), Err(VerdictError::NoVerdict));
        let unclosed = "{\"verdict\", ".repeat(200_000);
        assert_eq!(parse(&unclosed), Err(VerdictError::NoVerdict));
    }
}
