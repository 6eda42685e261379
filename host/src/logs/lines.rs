//! Splitting bytes from a pod or a remote command into bounded lines: a line
//! longer than [`MAX_LINE`] is cut there (and flagged) and the rest of it is
//! dropped, so whatever a workload prints, the host holds at most one line's
//! worth per source.

/// The longest line kept, in bytes; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 16 * 1024;

/// Accumulates chunks and hands out complete lines.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    buf: Vec<u8>,
    truncated: bool,
}

impl LineSplitter {
    /// Feeds `chunk`; complete lines (without `\n` or `\r\n`) go to `out` with
    /// their truncation flag.
    pub(crate) fn push(&mut self, chunk: &[u8], out: &mut Vec<(String, bool)>) {
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            self.take(&rest[..pos]);
            out.push(self.emit());
            rest = &rest[pos + 1..];
        }
        self.take(rest);
    }

    /// The last line when the input did not end with a newline.
    pub(crate) fn finish(mut self) -> Option<(String, bool)> {
        (!self.buf.is_empty() || self.truncated).then(|| self.emit())
    }

    fn take(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.buf.len());
        if bytes.len() > room {
            self.truncated = true;
        }
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn emit(&mut self) -> (String, bool) {
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        let line = String::from_utf8_lossy(&self.buf).into_owned();
        self.buf.clear();
        (line, std::mem::take(&mut self.truncated))
    }
}

/// Every line of `bytes` (the last one even without a newline).
pub(crate) fn split(bytes: &[u8]) -> Vec<(String, bool)> {
    let mut s = LineSplitter::default();
    let mut out = Vec::new();
    s.push(bytes, &mut out);
    out.extend(s.finish());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_are_joined_and_crlf_is_removed() {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        s.push(b"first li", &mut out);
        assert!(out.is_empty());
        s.push(b"ne\r\nsecond\nthi", &mut out);
        s.push(b"rd", &mut out);
        assert_eq!(
            out,
            vec![("first line".into(), false), ("second".into(), false)]
        );
        assert_eq!(s.finish(), Some(("third".into(), false)));
    }

    #[test]
    fn a_line_longer_than_the_cap_is_cut_flagged_and_the_next_line_is_whole() {
        let mut long = vec![b'x'; MAX_LINE * 3];
        long.extend_from_slice(b"\nnext\n");
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for chunk in long.chunks(1000) {
            s.push(chunk, &mut out);
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0.len(), MAX_LINE);
        assert!(out[0].1);
        assert_eq!(out[1], ("next".into(), false));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        assert_eq!(split(b"a\xffb"), vec![("a\u{fffd}b".into(), false)]);
    }
}
