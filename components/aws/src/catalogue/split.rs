//! Cutting a JSON array into its elements as the bytes stream in, without
//! parsing them: each element's bytes are handed over whole, so it can be
//! parsed from a slice (fast, strings borrowed) while the array as a whole
//! never sits in memory.

use std::io::Read;

/// Why the stream is not an array of elements this reader accepts.
#[derive(Debug)]
pub enum SplitError {
    /// Reading the stream failed (transport, size cap).
    Io(std::io::Error),
    /// The first non-blank byte is not `[`.
    NotAnArray,
    /// The stream ended inside the array.
    Truncated,
    /// One element is larger than the cap.
    ElementTooLarge(usize),
    /// Something other than blanks follows the closing `]`.
    TrailingData,
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SplitError::Io(e) => write!(f, "{e}"),
            SplitError::NotAnArray => f.write_str("the document is not a JSON array"),
            SplitError::Truncated => f.write_str("the document ends inside the array"),
            SplitError::ElementTooLarge(cap) => {
                write!(f, "one array element is larger than {cap} bytes")
            }
            SplitError::TrailingData => f.write_str("data follows the array"),
        }
    }
}

/// Where the scanner is between bytes.
#[derive(Clone, Copy, PartialEq)]
enum State {
    /// Before the opening `[`.
    Start,
    /// Between elements (blanks and commas).
    Between,
    /// Inside an element, outside strings; `depth` counts open brackets.
    Element,
    /// Inside a string of an element.
    String,
    /// Just after a backslash in a string.
    Escape,
    /// After the closing `]`.
    Done,
}

/// Calls `each` with the bytes of every element of the JSON array read from
/// `reader`, in order. Reads in chunks of 64 KiB; holds one element at a
/// time, at most `max_element` bytes. Stops at the first error of `each`.
///
/// Only brackets and strings are tracked: an element is whatever lies between
/// two commas at the array's level. Whether it is valid JSON is for `each`'s
/// parser to say.
pub fn for_each_element<R: Read, E>(
    mut reader: R,
    max_element: usize,
    mut each: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), SplitOr<E>> {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut element: Vec<u8> = Vec::new();
    let mut state = State::Start;
    let mut depth = 0usize;
    loop {
        let n = loop {
            match reader.read(&mut chunk) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SplitOr::Split(SplitError::Io(e))),
            }
        };
        if n == 0 {
            return match state {
                State::Done => Ok(()),
                State::Start => Err(SplitOr::Split(SplitError::NotAnArray)),
                _ => Err(SplitOr::Split(SplitError::Truncated)),
            };
        }
        let bytes = &chunk[..n];
        // Start of the current element's bytes within this chunk.
        let mut from = 0usize;
        let mut i = 0usize;
        while i < bytes.len() {
            let b = bytes[i];
            match state {
                State::Start => {
                    if b == b'[' {
                        state = State::Between;
                    } else if !b.is_ascii_whitespace() {
                        return Err(SplitOr::Split(SplitError::NotAnArray));
                    }
                }
                State::Between => match b {
                    b']' => state = State::Done,
                    b',' => {}
                    b if b.is_ascii_whitespace() => {}
                    _ => {
                        from = i;
                        depth = 0;
                        state = State::Element;
                        // Re-read this byte as part of the element.
                        continue;
                    }
                },
                State::Element => match b {
                    b'"' => state = State::String,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth > 0 => {
                        depth -= 1;
                        if depth == 0 {
                            flush(&mut element, &bytes[from..=i], max_element)?;
                            each(&element).map_err(SplitOr::Element)?;
                            element.clear();
                            state = State::Between;
                        }
                    }
                    // A scalar element ends at the array's next comma or at
                    // its closing bracket.
                    b',' | b']' if depth == 0 => {
                        flush(&mut element, &bytes[from..i], max_element)?;
                        each(&element).map_err(SplitOr::Element)?;
                        element.clear();
                        state = if b == b']' {
                            State::Done
                        } else {
                            State::Between
                        };
                    }
                    _ => {}
                },
                State::String => match b {
                    b'"' => state = State::Element,
                    b'\\' => state = State::Escape,
                    _ => {
                        // Skip the plain run of the string in one go.
                        let run = bytes[i..]
                            .iter()
                            .position(|&c| c == b'"' || c == b'\\')
                            .unwrap_or(bytes.len() - i);
                        i += run;
                        continue;
                    }
                },
                State::Escape => state = State::String,
                State::Done => {
                    if !b.is_ascii_whitespace() {
                        return Err(SplitOr::Split(SplitError::TrailingData));
                    }
                }
            }
            i += 1;
        }
        // Keep the unfinished element's part of this chunk.
        if matches!(state, State::Element | State::String | State::Escape) {
            flush(&mut element, &bytes[from..], max_element)?;
        }
    }
}

/// Appends `part` to the element, within the cap.
fn flush<E>(element: &mut Vec<u8>, part: &[u8], max: usize) -> Result<(), SplitOr<E>> {
    if element.len() + part.len() > max {
        return Err(SplitOr::Split(SplitError::ElementTooLarge(max)));
    }
    element.extend_from_slice(part);
    Ok(())
}

/// An error of the splitting or of the caller's handling of one element.
#[derive(Debug)]
pub enum SplitOr<E> {
    /// The stream is not a well-formed array.
    Split(SplitError),
    /// The caller refused an element.
    Element(E),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `doc`, feeding it `step` bytes per read.
    fn split(doc: &str, step: usize) -> Result<Vec<String>, SplitOr<()>> {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        for_each_element(Trickle(doc.as_bytes(), step), 1 << 20, |e| {
            out.push(String::from_utf8(e.to_vec()).unwrap());
            Ok::<(), ()>(())
        })?;
        Ok(out)
    }

    #[test]
    fn elements_come_out_whole_whatever_the_read_sizes() {
        let doc = r#" [ {"a": "x,}]\"{", "b": [1, {"c": 2}]}, {"d": null} ,"s",3 ] "#;
        for step in [1, 2, 3, 7, 64, 4096] {
            assert_eq!(
                split(doc, step).unwrap(),
                vec![
                    r#"{"a": "x,}]\"{", "b": [1, {"c": 2}]}"#,
                    r#"{"d": null}"#,
                    r#""s""#,
                    "3 "
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn an_empty_array_has_no_elements() {
        assert!(split("[]", 1).unwrap().is_empty());
        assert!(split(" [ \n ] ", 3).unwrap().is_empty());
    }

    #[test]
    fn what_is_not_one_whole_array_is_refused() {
        assert!(matches!(
            split("{\"a\": 1}", 5),
            Err(SplitOr::Split(SplitError::NotAnArray))
        ));
        assert!(matches!(
            split("", 5),
            Err(SplitOr::Split(SplitError::NotAnArray))
        ));
        assert!(matches!(
            split("[{\"a\": 1}", 5),
            Err(SplitOr::Split(SplitError::Truncated))
        ));
        assert!(matches!(
            split("[{\"a\": \"1}]", 5),
            Err(SplitOr::Split(SplitError::Truncated))
        ));
        assert!(matches!(
            split("[1] x", 5),
            Err(SplitOr::Split(SplitError::TrailingData))
        ));
    }

    #[test]
    fn an_element_over_the_cap_is_refused() {
        let big = format!("[{{\"a\": \"{}\"}}]", "x".repeat(100));
        let r = for_each_element(big.as_bytes(), 50, |_| Ok::<(), ()>(()));
        assert!(matches!(
            r,
            Err(SplitOr::Split(SplitError::ElementTooLarge(50)))
        ));
    }

    #[test]
    fn the_callers_error_stops_the_reading() {
        let mut seen = 0;
        let r = for_each_element("[1,2,3]".as_bytes(), 10, |_| {
            seen += 1;
            if seen == 2 { Err("stop") } else { Ok(()) }
        });
        assert!(matches!(r, Err(SplitOr::Element("stop"))));
        assert_eq!(seen, 2);
    }
}
