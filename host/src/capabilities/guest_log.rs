//! The host side of the `log` import, written for a hostile guest: every
//! record is cut to fixed caps (message, field count, key and value length,
//! total), every call has a token bucket of records (a flood is dropped and
//! counted, and the drop is logged), and guest text is escaped so it can never
//! start a line of its own: control characters, Unicode line separators and
//! bidi overrides become `\u{..}`. A guest's words therefore only ever appear
//! inside one `bpr::provider` line, never as a forged `bpr::audit::http` one.

use std::sync::Arc;
use std::time::Instant;

use super::ProviderEnv;

/// Longest message kept, in bytes after escaping (the WIT promises 4 KiB).
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Fields kept per record; the rest are counted, not shown.
pub const MAX_FIELDS: usize = 32;
/// Longest field key kept, in bytes after escaping.
pub const MAX_KEY_BYTES: usize = 64;
/// Longest field value kept, in bytes after escaping.
pub const MAX_VALUE_BYTES: usize = 1024;
/// Longest record (message and all fields) kept, in bytes after escaping.
pub const MAX_RECORD_BYTES: usize = 8192;

/// Marks text cut at a cap.
const CUT: char = '…';

/// How many records one call may log: a burst, then a steady rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Records a call may log at once. Default: 200.
    pub burst: u32,
    /// Records per second a call may log after its burst. Default: 20.
    pub per_second: u32,
}

impl Default for LogLimits {
    fn default() -> Self {
        Self {
            burst: 200,
            per_second: 20,
        }
    }
}

/// One call's token bucket. Dropping it (at the end of the call) logs how
/// many records were dropped, if any.
pub struct LogGate {
    env: Arc<ProviderEnv>,
    tokens: f64,
    /// When `tokens` was last refilled; `None` until the first record.
    last: Option<Instant>,
    dropped: u64,
}

impl std::fmt::Debug for LogGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGate")
            .field("provider", &self.env.name)
            .field("tokens", &self.tokens)
            .field("dropped", &self.dropped)
            .finish()
    }
}

impl LogGate {
    /// A full bucket for one call of the provider of `env`.
    pub fn new(env: Arc<ProviderEnv>) -> Self {
        Self {
            tokens: f64::from(env.log.burst),
            env,
            last: None,
            dropped: 0,
        }
    }

    /// Whether the next record may be logged; counts it as dropped if not.
    pub fn admit(&mut self) -> bool {
        let limits = self.env.log;
        let now = Instant::now();
        if let Some(last) = self.last {
            let refill = now.duration_since(last).as_secs_f64() * f64::from(limits.per_second);
            self.tokens = (self.tokens + refill).min(f64::from(limits.burst));
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return true;
        }
        if self.dropped == 0 {
            tracing::warn!(
                target: "bpr::provider",
                provider = %self.env.name,
                "log rate limit reached ({} records at once, then {} per second); further records of this call are dropped and counted",
                limits.burst,
                limits.per_second,
            );
        }
        self.dropped += 1;
        false
    }
}

impl Drop for LogGate {
    fn drop(&mut self) {
        if self.dropped > 0 {
            let limits = self.env.log;
            tracing::warn!(
                target: "bpr::provider",
                provider = %self.env.name,
                dropped = self.dropped,
                "{} log records dropped: the call logged more than {} records at once or {} per second",
                self.dropped,
                limits.burst,
                limits.per_second,
            );
        }
    }
}

/// A record made safe to log: escaped and within every cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeRecord {
    /// The message.
    pub message: String,
    /// The fields as `key="value" ...`.
    pub fields: String,
}

/// Escape and cut a guest's record.
pub fn render(message: &str, fields: &[(String, String)]) -> SafeRecord {
    let mut safe_message = String::new();
    escape_into(
        &mut safe_message,
        message,
        MAX_MESSAGE_BYTES,
        Style::Message,
    );
    let mut budget = MAX_RECORD_BYTES.saturating_sub(safe_message.len());
    let mut out = String::new();
    let mut shown = 0;
    for (key, value) in fields.iter().take(MAX_FIELDS) {
        let mut one = String::new();
        escape_into(&mut one, key, MAX_KEY_BYTES, Style::Key);
        one.push_str("=\"");
        escape_into(&mut one, value, MAX_VALUE_BYTES, Style::Quoted);
        one.push('"');
        let need = one.len() + usize::from(!out.is_empty());
        if need > budget {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&one);
        budget -= need;
        shown += 1;
    }
    if shown < fields.len() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&format!(
            "{CUT}{} more field(s) not shown",
            fields.len() - shown
        ));
    }
    SafeRecord {
        message: safe_message,
        fields: out,
    }
}

/// Where escaped text goes, which decides what else is escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// Free text: only what could break or disguise the line.
    Message,
    /// Inside double quotes: also `"`.
    Quoted,
    /// A field key: anything but `[A-Za-z0-9_.:-]`.
    Key,
}

/// Append `text` to `out` escaped, using at most `max` bytes of `out`; text
/// past the cap is replaced by `…`.
fn escape_into(out: &mut String, text: &str, max: usize, style: Style) {
    let limit = out.len() + max;
    for c in text.chars() {
        let piece = Piece::of(c, style);
        if out.len() + piece.len() + CUT.len_utf8() > limit {
            out.push(CUT);
            return;
        }
        piece.push_to(out);
    }
}

/// How one character is written.
enum Piece {
    /// As itself.
    Plain(char),
    /// As a fixed escape (`\n`, `\\`...).
    Escape(&'static str),
    /// As `\u{XXXX}`.
    Code(char),
}

impl Piece {
    fn of(c: char, style: Style) -> Self {
        match c {
            '\\' => Self::Escape("\\\\"),
            '\n' => Self::Escape("\\n"),
            '\r' => Self::Escape("\\r"),
            '\t' => Self::Escape("\\t"),
            '"' if style != Style::Message => Self::Escape("\\\""),
            c if breaks_or_disguises(c) => Self::Code(c),
            c if style == Style::Key
                && !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')) =>
            {
                Self::Code(c)
            }
            c => Self::Plain(c),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Plain(c) => c.len_utf8(),
            Self::Escape(s) => s.len(),
            // `\u{` + at least 4 hex digits + `}`.
            Self::Code(c) => 4 + format!("{:04x}", *c as u32).len(),
        }
    }

    fn push_to(&self, out: &mut String) {
        match self {
            Self::Plain(c) => out.push(*c),
            Self::Escape(s) => out.push_str(s),
            Self::Code(c) => out.push_str(&format!("\\u{{{:04x}}}", *c as u32)),
        }
    }
}

/// Control characters, Unicode line and paragraph separators, and the
/// invisible formatting characters that reorder or hide text on a terminal.
fn breaks_or_disguises(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(burst: u32, per_second: u32) -> Arc<ProviderEnv> {
        Arc::new(ProviderEnv {
            name: "p".into(),
            settings: Default::default(),
            ssh: None,
            log: LogLimits { burst, per_second },
        })
    }

    #[test]
    fn newlines_and_escapes_cannot_start_a_line() {
        let r = render(
            "a\nb\r\x1b[2K\u{2028}\u{202e}c\\",
            &[("k\ney".into(), "v\"\n".into())],
        );
        assert_eq!(r.message, "a\\nb\\r\\u{001b}[2K\\u{2028}\\u{202e}c\\\\");
        assert_eq!(r.fields, "k\\ney=\"v\\\"\\n\"");
        assert!(!r.message.chars().any(char::is_control));
    }

    #[test]
    fn a_long_message_is_cut_at_its_cap_on_a_char_boundary() {
        let r = render(&"é".repeat(10_000), &[]);
        assert!(r.message.len() <= MAX_MESSAGE_BYTES, "{}", r.message.len());
        assert!(r.message.ends_with(CUT));
    }

    #[test]
    fn fields_are_capped_in_count_length_and_total() {
        let fields: Vec<(String, String)> = (0..1000)
            .map(|i| (format!("key{i}{}", "k".repeat(500)), "v".repeat(100_000)))
            .collect();
        let r = render("m", &fields);
        assert!(
            r.message.len() + r.fields.len() <= MAX_RECORD_BYTES + 64,
            "{}",
            r.fields.len()
        );
        assert!(r.fields.contains("more field(s) not shown"), "{}", r.fields);
        let first = r.fields.split(' ').next().unwrap();
        let (key, value) = first.split_once('=').unwrap();
        assert!(key.len() <= MAX_KEY_BYTES);
        assert!(value.len() <= MAX_VALUE_BYTES + 2);
    }

    #[test]
    fn a_key_keeps_only_identifier_characters() {
        let r = render("m", &[("a b=c".into(), "v".into())]);
        assert_eq!(r.fields, "a\\u{0020}b\\u{003d}c=\"v\"");
    }

    #[test]
    fn the_gate_admits_a_burst_then_drops_and_counts() {
        let mut gate = LogGate::new(env(3, 0));
        assert!((0..3).all(|_| gate.admit()));
        assert!(!gate.admit());
        assert!(!gate.admit());
        assert_eq!(gate.dropped, 2);
    }

    #[test]
    fn the_gate_refills_at_its_rate() {
        let mut gate = LogGate::new(env(1, 1000));
        assert!(gate.admit());
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(gate.admit(), "20 ms at 1000/s refills a token");
    }
}
