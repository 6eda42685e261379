//! A small RFC 4180 CSV reader (quoted fields, `""` escapes, CRLF or LF), enough
//! for the SkyPilot catalogue, whose `GpuInfo` column holds quoted text with
//! commas.

/// The rows of `text` (the header included), each a list of fields.
pub fn rows(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                if !(row.len() == 1 && row[0].is_empty()) {
                    out.push(std::mem::take(&mut row));
                }
                row.clear();
            }
            _ => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        out.push(row);
    }
    out
}

/// Column positions by header name.
pub struct Header(Vec<String>);

impl Header {
    /// From the first row.
    pub fn new(first: &[String]) -> Self {
        Header(first.iter().map(|s| s.trim().to_string()).collect())
    }

    /// Index of column `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|h| h == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_with_commas_and_quotes_are_one_field() {
        let r = rows("a,b,c\r\n1,\"x, \"\"y\"\"\",3\n\n,,\n4,5,6");
        assert_eq!(r.len(), 4);
        assert_eq!(r[1], ["1", "x, \"y\"", "3"]);
        assert_eq!(r[2], ["", "", ""]);
        assert_eq!(r[3], ["4", "5", "6"]);
    }
}
