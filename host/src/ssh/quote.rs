//! POSIX shell quoting of argv lists.
//!
//! SSH sends one command string that the remote login shell parses, so the
//! host must quote. Single quotes are the one POSIX quoting with no special
//! characters inside; a `'` itself is written `'\''` (close, escaped quote,
//! reopen). Newlines, `$()`, `;`, backslashes and non-ASCII pass unchanged.

use super::SshError;

/// Quotes one argument for a POSIX shell. Words made only of characters that
/// no shell treats specially are left bare, for readable commands.
pub fn quote_arg(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./=:@%+,".contains(&b));
    if plain {
        return arg.to_string();
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('\'');
    for c in arg.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quotes an argv list into one command line. Refuses an empty list and NUL
/// bytes (a C string, hence a program argument, cannot hold one).
pub fn quote_argv(argv: &[String]) -> Result<String, SshError> {
    if argv.is_empty() || argv[0].is_empty() {
        return Err(SshError::Invalid(
            "argv must name a program in argv[0]".to_string(),
        ));
    }
    if let Some(i) = argv.iter().position(|a| a.contains('\0')) {
        return Err(SshError::Invalid(format!(
            "argv[{i}] contains a NUL byte, which no program argument can hold"
        )));
    }
    Ok(argv
        .iter()
        .map(|a| quote_arg(a))
        .collect::<Vec<_>>()
        .join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_bare_and_specials_are_single_quoted() {
        assert_eq!(quote_arg("ls"), "ls");
        assert_eq!(quote_arg("-la"), "-la");
        assert_eq!(quote_arg(""), "''");
        assert_eq!(quote_arg("a b"), "'a b'");
        assert_eq!(quote_arg("it's"), "'it'\\''s'");
        assert_eq!(quote_arg("$(id);x"), "'$(id);x'");
        assert_eq!(quote_arg("~"), "'~'");
    }

    #[test]
    fn empty_argv_and_nul_bytes_are_invalid() {
        assert!(matches!(quote_argv(&[]), Err(SshError::Invalid(_))));
        assert!(matches!(
            quote_argv(&["".to_string()]),
            Err(SshError::Invalid(_))
        ));
        assert!(matches!(
            quote_argv(&["echo".to_string(), "a\0b".to_string()]),
            Err(SshError::Invalid(_))
        ));
    }
}
