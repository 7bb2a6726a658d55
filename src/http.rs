//! The HTTP token rule (RFC 9110 §5.6.2), written once: header names, cookie names
//! (RFC 6265 uses the same rule) and the command line's `--header NAME: VALUE` are checked
//! with [`is_token`], and the JSON Schema states it with [`token_class`].

/// The punctuation a token may hold besides ASCII letters, digits and `-`.
const TOKEN_PUNCTUATION: &str = "!#$%&'*+.^_`|~";

/// Whether `byte` may appear in a token.
pub fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || TOKEN_PUNCTUATION.as_bytes().contains(&byte)
}

/// Whether `text` is a token: one or more token bytes.
pub fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_token_byte)
}

/// One token byte as a regular-expression character class (`-` last, where it is literal).
pub fn token_class() -> String {
    format!("[{TOKEN_PUNCTUATION}0-9A-Za-z-]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_character_class_states_the_byte_rule() {
        let class = regex::bytes::RegexBuilder::new(&format!("^{}$", token_class()))
            .unicode(false)
            .build()
            .unwrap();
        for byte in 0..=u8::MAX {
            assert_eq!(
                class.is_match(&[byte]),
                is_token_byte(byte),
                "byte {byte:#04x}"
            );
        }
    }

    #[test]
    fn tokens() {
        assert!(is_token("x-canary-version"));
        assert!(is_token("!#$%&'*+-.^_`|~09AZaz"));
        for not_token in ["", "a b", "a:b", "a;b", "a,b", "a\"b", "a/b", "é"] {
            assert!(!is_token(not_token), "{not_token:?}");
        }
    }
}
