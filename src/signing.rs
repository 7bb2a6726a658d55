//! Signed sticky ids (SPEC §10): a sticky cookie a client cannot mint for itself.
//!
//! The cookie value is `ID.KID.MAC`: ID the 32 lower-case hex digits of the 128-bit sticky
//! id, KID the name of the key that signed it, MAC the lower-case hex of the first 16 bytes
//! of HMAC-SHA256(key, ID). A split hashes the ID only, so rotating keys never moves a user.
//!
//! The keys come from an environment variable of the Wasm VM (`KID:BASE64,KID:BASE64,...`),
//! never from the plugin configuration: [`parse_keys`] reads that text at configure time
//! (its errors never quote key material); the first key signs, every key verifies.
//! Verifying and signing allocate nothing: each key's HMAC state (the key already mixed in)
//! is copied on the stack per use.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Hex digits of a sticky id.
pub const ID_LEN: usize = 32;
/// Bytes of the MAC kept (the first 16 of HMAC-SHA256); its hex is twice as long.
pub const MAC_LEN: usize = 16;
/// A key id is 1 to this many of `A-Z a-z 0-9 _ -`.
pub const MAX_KID_LEN: usize = 16;
/// A key is at least this many bytes after decoding.
pub const MIN_KEY_LEN: usize = 16;
/// The longest cookie value: `ID.KID.MAC`.
pub const MAX_VALUE_LEN: usize = ID_LEN + 1 + MAX_KID_LEN + 1 + 2 * MAC_LEN;

/// Why a sticky cookie's value was not accepted. The request is then treated as having no
/// sticky cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// A bare id, as issued before signing was turned on.
    Unsigned,
    /// Not `ID.KID.MAC` (truncated, upper-case hex, extra parts, garbage).
    Malformed,
    /// Signed with a key id none of the keys has (a dropped key, or a made-up one).
    UnknownKey,
    /// The MAC does not match the ID under that key (forged, or the key changed).
    BadMac,
}

impl Rejection {
    /// The name `explain` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Unsigned => "unsigned",
            Rejection::Malformed => "malformed",
            Rejection::UnknownKey => "unknown_key",
            Rejection::BadMac => "bad_mac",
        }
    }
}

/// One signing key: its id, the key (for equality only) and the HMAC state with the key
/// mixed in.
#[derive(Clone)]
struct SigningKey {
    kid: String,
    key: Vec<u8>,
    mac: HmacSha256,
}

impl PartialEq for SigningKey {
    fn eq(&self, other: &SigningKey) -> bool {
        self.kid == other.kid && self.key == other.key
    }
}

impl SigningKey {
    /// The HMAC of `id` under this key, its first [`MAC_LEN`] bytes.
    fn tag(&self, id: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = self.mac.clone();
        mac.update(id);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; MAC_LEN];
        for (slot, byte) in tag.iter_mut().zip(full.iter()) {
            *slot = *byte;
        }
        tag
    }

    /// Whether `tag` is the first bytes of the HMAC of `id`, compared in constant time.
    fn verifies(&self, id: &[u8], tag: &[u8; MAC_LEN]) -> bool {
        let mut mac = self.mac.clone();
        mac.update(id);
        mac.verify_truncated_left(tag).is_ok()
    }
}

/// The keys of `sticky_cookie.signing`: the first signs, every one verifies. Never empty.
#[derive(Clone, PartialEq)]
pub struct SigningKeys {
    /// The environment variable they came from (for messages; never the keys).
    keys_env: String,
    first: SigningKey,
    rest: Vec<SigningKey>,
}

/// Key ids only: the keys never appear in a log line or a debug dump.
impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys")
            .field("keys_env", &self.keys_env)
            .field("kids", &self.kids().collect::<Vec<_>>())
            .finish()
    }
}

impl SigningKeys {
    /// The keys parsed from `text` (the variable `keys_env`'s value), see [`parse_keys`].
    pub fn from_env_value(keys_env: &str, text: &str) -> Result<SigningKeys, KeysProblem> {
        let mut keys = parse_keys(text)?.into_iter().filter_map(|(kid, key)| {
            // HMAC takes keys of any length; `new_from_slice` never fails for it.
            let mac = HmacSha256::new_from_slice(&key).ok()?;
            Some(SigningKey { kid, key, mac })
        });
        let first = keys.next().ok_or(KeysProblem::NoKeys)?;
        Ok(SigningKeys {
            keys_env: keys_env.to_string(),
            first,
            rest: keys.collect(),
        })
    }

    /// The environment variable the keys came from.
    pub fn keys_env(&self) -> &str {
        &self.keys_env
    }

    /// Key ids, the signing key's first.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&self.first)
            .chain(&self.rest)
            .map(|key| key.kid.as_str())
    }

    /// The cookie value `ID.KID.MAC` for `id` (32 lower-case hex digits), signed with the
    /// first key.
    pub fn sign(&self, id: &[u8]) -> SignedValue {
        let mut value = SignedValue {
            bytes: [0; MAX_VALUE_LEN],
            len: 0,
        };
        value.push(id);
        value.push(b".");
        value.push(self.first.kid.as_bytes());
        value.push(b".");
        for byte in self.first.tag(id) {
            value.push(&hex_pair(byte));
        }
        value
    }

    /// The ID of a cookie value that verifies, and the position of the key that signed it
    /// (0: the signing key).
    pub fn verify<'v>(&self, value: &'v [u8]) -> Result<(&'v [u8], usize), Rejection> {
        if value.len() == ID_LEN && value.iter().all(|&b| is_lower_hex(b)) {
            return Err(Rejection::Unsigned);
        }
        let mut parts = value.splitn(3, |&b| b == b'.');
        let (Some(id), Some(kid), Some(mac)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Rejection::Malformed);
        };
        if id.len() != ID_LEN || !id.iter().all(|&b| is_lower_hex(b)) || !is_kid(kid) {
            return Err(Rejection::Malformed);
        }
        let tag = decode_mac(mac).ok_or(Rejection::Malformed)?;
        let (position, key) = std::iter::once(&self.first)
            .chain(&self.rest)
            .enumerate()
            .find(|(_, key)| key.kid.as_bytes() == kid)
            .ok_or(Rejection::UnknownKey)?;
        if key.verifies(id, &tag) {
            Ok((id, position))
        } else {
            Err(Rejection::BadMac)
        }
    }
}

/// A signed cookie value, on the stack.
#[derive(Clone, Copy)]
pub struct SignedValue {
    bytes: [u8; MAX_VALUE_LEN],
    len: usize,
}

impl SignedValue {
    fn push(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if let Some(slot) = self.bytes.get_mut(self.len) {
                *slot = byte;
                self.len += 1;
            }
        }
    }

    pub fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..self.len).unwrap_or_default();
        std::str::from_utf8(bytes).unwrap_or_default()
    }
}

impl fmt::Debug for SignedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignedValue({})", self.as_str())
    }
}

fn is_lower_hex(byte: u8) -> bool {
    byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)
}

fn hex_pair(byte: u8) -> [u8; 2] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digit = |nibble: u8| HEX.get(usize::from(nibble)).copied().unwrap_or(b'0');
    [digit(byte >> 4), digit(byte & 0xf)]
}

/// 32 lower-case hex digits as 16 bytes.
fn decode_mac(hex: &[u8]) -> Option<[u8; MAC_LEN]> {
    if hex.len() != 2 * MAC_LEN {
        return None;
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    };
    let mut tag = [0u8; MAC_LEN];
    for (slot, pair) in tag.iter_mut().zip(hex.chunks_exact(2)) {
        let (&high, &low) = (pair.first()?, pair.get(1)?);
        *slot = (nibble(high)? << 4) | nibble(low)?;
    }
    Some(tag)
}

/// Whether `kid` is a key id: 1 to [`MAX_KID_LEN`] of `A-Z a-z 0-9 _ -`.
pub fn is_kid(kid: &[u8]) -> bool {
    (1..=MAX_KID_LEN).contains(&kid.len())
        && kid
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// [`is_env_name`] as a regular expression (the JSON Schema's `pattern`).
pub const ENV_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";

/// Whether `name` can name an environment variable: `A-Z a-z 0-9 _`, not starting with a
/// digit (the POSIX portable names, which Kubernetes and Envoy both take).
pub fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What is wrong with the keys variable. Messages name entries by position and keys by
/// their id, never by their bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeysProblem {
    /// Empty, or only white space.
    NoKeys,
    /// Entry `n` (from 1) is not `KID:BASE64`.
    NotKidColonKey(usize),
    /// Entry `n`'s key id is not 1-16 of `A-Z a-z 0-9 _ -` (not quoted: it may be a key).
    InvalidKid(usize),
    DuplicateKid(String),
    InvalidBase64(String),
    KeyTooShort {
        kid: String,
        bytes: usize,
    },
}

impl fmt::Display for KeysProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeysProblem::NoKeys => f.write_str("no keys; expected KID:BASE64,KID:BASE64,..."),
            KeysProblem::NotKidColonKey(entry) => {
                write!(f, "entry {entry} is not KID:BASE64")
            }
            KeysProblem::InvalidKid(entry) => write!(
                f,
                "entry {entry} has an invalid key id (1-{MAX_KID_LEN} of A-Z a-z 0-9 _ -)"
            ),
            KeysProblem::DuplicateKid(kid) => write!(f, "key id \"{kid}\" is listed twice"),
            KeysProblem::InvalidBase64(kid) => write!(f, "key \"{kid}\" is not valid base64"),
            KeysProblem::KeyTooShort { kid, bytes } => write!(
                f,
                "key \"{kid}\" is {bytes} bytes, at least {MIN_KEY_LEN} are required"
            ),
        }
    }
}

/// `KID:BASE64,KID:BASE64,...` as `(kid, key)` pairs in order. White space around the
/// whole value and around each entry is ignored (a Secret's value often ends in a newline).
pub fn parse_keys(text: &str) -> Result<Vec<(String, Vec<u8>)>, KeysProblem> {
    let text = text.trim();
    if text.is_empty() {
        return Err(KeysProblem::NoKeys);
    }
    let mut keys: Vec<(String, Vec<u8>)> = Vec::new();
    for (index, entry) in text.split(',').enumerate() {
        let number = index + 1;
        let Some((kid, key)) = entry.trim().split_once(':') else {
            return Err(KeysProblem::NotKidColonKey(number));
        };
        if !is_kid(kid.as_bytes()) {
            return Err(KeysProblem::InvalidKid(number));
        }
        if keys.iter().any(|(seen, _)| seen == kid) {
            return Err(KeysProblem::DuplicateKid(kid.to_string()));
        }
        let key = decode_base64(key).ok_or_else(|| KeysProblem::InvalidBase64(kid.to_string()))?;
        if key.len() < MIN_KEY_LEN {
            let (kid, bytes) = (kid.to_string(), key.len());
            return Err(KeysProblem::KeyTooShort { kid, bytes });
        }
        keys.push((kid.to_string(), key));
    }
    Ok(keys)
}

/// Base64 (RFC 4648), the standard or the URL-safe alphabet, `=` padding optional.
///
/// Our own 20 lines rather than the `base64` crate: it runs once per configuration on a
/// few dozen bytes, and the crate's engines would only add to the module.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let unpadded = text.trim_end_matches('=');
    let padding = text.len() - unpadded.len();
    if padding > 2 || (padding > 0 && text.len() % 4 != 0) || unpadded.len() % 4 == 1 {
        return None;
    }
    let sextet = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(unpadded.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in unpadded.bytes() {
        buffer = (buffer << 6) | u32::from(sextet(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
        }
    }
    // The bits left over are padding: they must be zero (one encoding per key).
    if buffer & ((1 << bits) - 1) != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "a2V5LWEtMDEyMzQ1Njc4OWFiY2RlZg=="; // "key-a-0123456789abcdef"
    const KEY_B: &str = "a2V5LWItMDEyMzQ1Njc4OWFiY2RlZg=="; // "key-b-0123456789abcdef"

    fn keys(text: &str) -> SigningKeys {
        SigningKeys::from_env_value("K", text).unwrap()
    }

    #[test]
    fn base64_both_alphabets_padding_optional() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbA==").unwrap(), b"hell");
        assert_eq!(decode_base64("").unwrap(), b"");
        assert_eq!(
            decode_base64("+/+/").unwrap(),
            decode_base64("-_-_").unwrap()
        );
        for bad in [
            "a",
            "aGVsbG8==",
            "aGVsbG9=",
            "a===",
            "aGV*",
            "aGVsbG8=x",
            "aGVsbA=="[..7].as_ref(),
        ] {
            assert_eq!(decode_base64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_mac_is_hmac_sha256_of_the_id_truncated_to_16_bytes() {
        // RFC 4231 test case 2 ("Jefe", "what do ya want for nothing?"), full MAC
        // 5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843.
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let key = SigningKey {
            kid: "k".into(),
            key: b"Jefe".to_vec(),
            mac: HmacSha256::new_from_slice(b"Jefe").unwrap(),
        };
        let tag = key.tag(b"what do ya want for nothing?");
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c7");
        assert!(mac.verify_truncated_left(&tag).is_ok());
    }

    #[test]
    fn signed_values_verify_with_every_key_and_only_unchanged() {
        let id = b"0123456789abcdef0123456789abcdef";
        let old = keys(&format!("old:{KEY_A}"));
        let rotated = keys(&format!("new:{KEY_B},old:{KEY_A}"));
        let signed = old.sign(id);
        let value = signed.as_str().as_bytes();
        assert_eq!(value.len(), 32 + 1 + 3 + 1 + 32);
        assert!(signed
            .as_str()
            .starts_with("0123456789abcdef0123456789abcdef.old."));
        assert_eq!(old.verify(value), Ok((&id[..], 0)));
        assert_eq!(rotated.verify(value), Ok((&id[..], 1)));
        assert!(rotated.sign(id).as_str().contains(".new."));
        assert_eq!(
            keys(&format!("new:{KEY_B}")).verify(value),
            Err(Rejection::UnknownKey)
        );
        // Same key id, another key.
        assert_eq!(
            keys(&format!("old:{KEY_B}")).verify(value),
            Err(Rejection::BadMac)
        );

        let text = signed.as_str();
        let mut forged = text.to_string().into_bytes();
        forged[0] = if forged[0] == b'1' { b'2' } else { b'1' };
        assert_eq!(old.verify(&forged), Err(Rejection::BadMac));
        assert_eq!(old.verify(&value[..32]), Err(Rejection::Unsigned));
        for malformed in [
            &text[..text.len() - 1],
            &text[..33],
            &text[..36],
            "",
            "garbage",
            "0123456789ABCDEF0123456789abcdef.old.00000000000000000000000000000000",
        ] {
            assert_eq!(
                old.verify(malformed.as_bytes()),
                Err(Rejection::Malformed),
                "{malformed}"
            );
        }
        let upper = text.to_ascii_uppercase().replace(".OLD.", ".old.");
        assert_eq!(old.verify(upper.as_bytes()), Err(Rejection::Malformed));
        let extra = format!("{text}.x");
        assert_eq!(old.verify(extra.as_bytes()), Err(Rejection::Malformed));
    }

    #[test]
    fn key_problems_name_entries_and_key_ids_never_keys() {
        let problem = |text: &str| parse_keys(text).unwrap_err();
        assert_eq!(problem(" \n"), KeysProblem::NoKeys);
        assert_eq!(
            problem(&format!("a:{KEY_A},{KEY_B}")),
            KeysProblem::NotKidColonKey(2)
        );
        assert_eq!(problem(&format!("a b:{KEY_A}")), KeysProblem::InvalidKid(1));
        assert_eq!(problem(&format!(":{KEY_A}")), KeysProblem::InvalidKid(1));
        assert_eq!(
            problem(&format!("a:{KEY_A},a:{KEY_B}")),
            KeysProblem::DuplicateKid("a".into())
        );
        assert_eq!(
            problem("a:not*base64"),
            KeysProblem::InvalidBase64("a".into())
        );
        assert_eq!(
            problem("a:c2hvcnQ="),
            KeysProblem::KeyTooShort {
                kid: "a".into(),
                bytes: 5
            }
        );
        let parsed = parse_keys(&format!(" new:{KEY_B} , old:{KEY_A}\n")).unwrap();
        let kids: Vec<&str> = parsed.iter().map(|(kid, _)| kid.as_str()).collect();
        assert_eq!(kids, ["new", "old"]);
        assert_eq!(parsed[1].1, b"key-a-0123456789abcdef");
        let debug = format!("{:?}", keys(&format!("new:{KEY_B}")));
        assert_eq!(debug, r#"SigningKeys { keys_env: "K", kids: ["new"] }"#);
    }

    #[test]
    fn env_names() {
        for good in ["CANARY_TAGGER_STICKY_KEYS", "_x", "a1"] {
            assert!(is_env_name(good), "{good}");
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "É"] {
            assert!(!is_env_name(bad), "{bad}");
        }
        let pattern = regex::Regex::new(ENV_NAME_PATTERN).unwrap();
        for name in [
            "CANARY_TAGGER_STICKY_KEYS",
            "_x",
            "a1",
            "",
            "1A",
            "A-B",
            "A B",
            "É",
            "a\n",
        ] {
            assert_eq!(pattern.is_match(name), is_env_name(name), "{name:?}");
        }
    }
}
