//! Splits a byte stream into lines with bounded memory: a partial line is held until its
//! newline arrives, and a line longer than the limit is dropped and reported once.

/// Claude lines can pass 1 MiB (large tool results); 8 MiB leaves room without letting one
/// runaway line take the machine.
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line, without its `\n` (a `\r` before it is left for the caller).
    Line(&'a [u8]),
    /// A line longer than the limit; `bytes` is its full length. Its content is gone.
    Oversize { bytes: usize },
}

#[derive(Debug)]
pub struct LineFramer {
    carry: Vec<u8>,
    max: usize,
    /// Length so far of an oversize line being skipped.
    skipping: Option<usize>,
}

impl Default for LineFramer {
    fn default() -> Self {
        LineFramer::new(MAX_LINE_BYTES)
    }
}

impl LineFramer {
    pub fn new(max: usize) -> Self {
        LineFramer {
            carry: Vec::new(),
            max: max.max(1),
            skipping: None,
        }
    }

    /// Feeds `chunk`; calls `on_frame` for every line it completes.
    pub fn push(&mut self, mut chunk: &[u8], mut on_frame: impl FnMut(Frame<'_>)) {
        while !chunk.is_empty() {
            let newline = memchr::memchr(b'\n', chunk);
            let (piece, rest) = match newline {
                Some(i) => (&chunk[..i], Some(&chunk[i + 1..])),
                None => (chunk, None),
            };
            match (self.skipping, rest) {
                (Some(skipped), Some(_)) => {
                    self.skipping = None;
                    on_frame(Frame::Oversize {
                        bytes: skipped + piece.len(),
                    });
                }
                (Some(skipped), None) => self.skipping = Some(skipped + piece.len()),
                (None, _) if self.carry.len() + piece.len() > self.max => {
                    let so_far = self.carry.len() + piece.len();
                    self.carry = Vec::new();
                    if rest.is_some() {
                        on_frame(Frame::Oversize { bytes: so_far });
                    } else {
                        self.skipping = Some(so_far);
                    }
                }
                (None, Some(_)) if self.carry.is_empty() => on_frame(Frame::Line(piece)),
                (None, Some(_)) => {
                    self.carry.extend_from_slice(piece);
                    on_frame(Frame::Line(&self.carry));
                    self.carry.clear();
                }
                (None, None) => self.carry.extend_from_slice(piece),
            }
            chunk = rest.unwrap_or(&[]);
        }
    }

    /// The stream ended: a held partial line is delivered as the last line.
    pub fn finish(&mut self, mut on_frame: impl FnMut(Frame<'_>)) {
        if let Some(skipped) = self.skipping.take() {
            on_frame(Frame::Oversize { bytes: skipped });
        } else if !self.carry.is_empty() {
            on_frame(Frame::Line(&self.carry));
        }
        self.carry = Vec::new();
    }

    /// Bytes held for an unfinished line.
    pub fn pending(&self) -> usize {
        self.carry.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(framer: &mut LineFramer, chunks: &[&[u8]], finish: bool) -> Vec<String> {
        let mut out = Vec::new();
        let mut record = |f: Frame<'_>| {
            out.push(match f {
                Frame::Line(l) => String::from_utf8_lossy(l).into_owned(),
                Frame::Oversize { bytes } => format!("<oversize {bytes}>"),
            })
        };
        for chunk in chunks {
            framer.push(chunk, &mut record);
        }
        if finish {
            framer.finish(&mut record);
        }
        out
    }

    #[test]
    fn holds_partial_lines_until_the_newline() {
        let mut f = LineFramer::default();
        assert_eq!(frames(&mut f, &[b"ab", b"c\nde"], false), ["abc"]);
        assert_eq!(f.pending(), 2);
        assert_eq!(frames(&mut f, &[b"f\n\n"], false), ["def", ""]);
        assert_eq!(frames(&mut f, &[b"tail"], true), ["tail"]);
    }

    #[test]
    fn oversize_lines_are_reported_once_and_memory_stays_bounded() {
        let mut f = LineFramer::new(8);
        let out = frames(&mut f, &[b"ok\n0123456", b"789abc", b"def\nnext\n"], false);
        assert_eq!(out, ["ok", "<oversize 16>", "next"]);
        assert!(f.carry.capacity() <= 16);
        let out = frames(&mut f, &[b"0123456789", b"xx"], true);
        assert_eq!(out, ["<oversize 12>"]);
    }

    #[test]
    fn a_line_exactly_at_the_limit_passes() {
        let mut f = LineFramer::new(4);
        assert_eq!(frames(&mut f, &[b"ab", b"cd\n"], false), ["abcd"]);
    }
}
