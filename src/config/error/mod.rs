//! Why a configuration was rejected, as data: an [`ErrorKind`] at a [`JsonPath`]. The
//! compiler, the serde boundary (`dto::parse_dto`) and the schema validator all report
//! through these types, and `impl Display for ErrorKind` (in [`message`]) is the one place
//! that turns them into the text an operator reads.
//!
//! This file holds the types; [`path`] the JSON path, [`message`] the text.

mod message;
mod path;

use std::fmt;

use serde_json::Number;

use crate::net::CidrError;
use crate::ramp::TimeError;
use crate::signing::KeysProblem;

/// What is wrong with the signing keys' environment variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SigningKeysProblem {
    NotSet,
    NotUnicode,
    /// Set, but not `KID:BASE64,...` with valid ids and long enough keys.
    Keys(KeysProblem),
}

pub use message::closest_name;
pub use path::{JsonPath, PathSegment};

// ---------------------------------------------------------------------------- errors

/// One reason a configuration was rejected, at one JSON path.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    pub path: JsonPath,
    pub kind: ErrorKind,
}

impl ConfigError {
    pub fn new(path: JsonPath, kind: ErrorKind) -> ConfigError {
        ConfigError { path, kind }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.kind)
    }
}

/// Every reason a configuration was rejected (never empty).
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// What is wrong with the value at an error's path.
#[derive(Clone, Debug, PartialEq)]
pub enum ErrorKind {
    // ---- the document's structure (serde's checks, and the schema walk's same checks)
    /// Nothing but white space.
    EmptyDocument,
    /// Not JSON; the parser's own message, with its line and column.
    InvalidJson(String),
    /// The path names the missing field.
    MissingField,
    /// Reported at the object; `known` are the fields it may have.
    UnknownField {
        field: String,
        known: Vec<String>,
    },
    DuplicateField(String),
    InvalidType {
        found: Found,
        expected: Expected,
    },
    /// The right type, but out of range (a negative or too large integer).
    InvalidValue {
        found: Found,
        expected: Expected,
    },
    UnknownVariant {
        found: String,
        expected: Vec<String>,
    },
    /// A structural error serde reports in a form [`crate::config`] does not classify,
    /// in serde's words.
    Unclassified(String),

    // ---- the compiler's checks
    UnsupportedSchema(u64),
    /// An empty string where a name belongs.
    Empty,
    EmptyList(ListOf),
    /// `choices` names the options (`header`, `cookie`, ...), `found` those given; `noun`
    /// is what the options are (`operator`), where the message says.
    ExactlyOne {
        noun: Option<&'static str>,
        choices: Vec<String>,
        found: Vec<String>,
    },
    InvalidVersionName(String),
    DuplicateVersion(String),
    UnknownVersion {
        name: String,
        versions: Vec<String>,
    },
    /// A version listed twice in one split.
    VersionListedTwice(String),
    EmptyHeaderName,
    InvalidHeaderName(String),
    PseudoHeaderNotAllowed(String),
    UnknownPseudoHeader(String),
    InvalidCookieName(String),
    EmptyQueryName,
    /// `normalize` would rewrite the tag header.
    NormalizesTagHeader,
    /// A condition reads the tag header, which the filter writes.
    MatchesTagHeader,
    /// `version_from` or a split key reads the tag header.
    TagHeaderAsSource,
    TrustedHopsWithoutXff,
    InvalidCidr {
        text: String,
        error: CidrError,
    },
    TooManyNormalize(usize),
    /// A `normalize` default that is not in its `allowed` list.
    DefaultNotAllowed(String),
    InvalidRuleName(String),
    DuplicateRuleName(String),
    /// Operators given to a condition kind that takes none (`source_ip`).
    OperatorsDoNotApply(&'static str),
    /// `ignore_case` where it means nothing.
    DoesNotApply(&'static str),
    /// The matcher's message (`invalid regex: unclosed group`).
    InvalidRegex(String),
    PercentOutOfRange(f64),
    PercentTooPrecise(f64),
    /// The weights of a split cover this many buckets (0.01 % each) instead of 10000.
    PercentSum(u32),
    /// `allowed` are the `KIND:NAME` forms the value may take; `source_ip` whether it may
    /// also be `source_ip`.
    InvalidValueSource {
        text: String,
        allowed: &'static [&'static str],
        source_ip: bool,
    },
    /// `header:` with no name.
    SourceNamesNothing {
        text: String,
        kind: String,
    },
    ZeroMaxAge,
    /// `sticky_cookie.signing.keys_env` is not an environment variable name.
    InvalidEnvName(String),
    /// The keys variable of `sticky_cookie.signing` is missing or malformed. Never holds
    /// key material: entries by position, keys by their id.
    SigningKeys {
        env: String,
        problem: SigningKeysProblem,
    },
    /// A field of the other mode (SPEC §8); the mode it belongs to.
    OnlyInMode(&'static str),
    /// A `restore` source named twice.
    ListedTwice(&'static str),
    /// An integer outside its bounds (inclusive).
    OutOfRange {
        value: u64,
        min: u64,
        max: u64,
    },
    /// `split.ramp.start` is not an RFC 3339 time in UTC.
    InvalidTime {
        text: String,
        error: TimeError,
    },
    /// `split.ramp.duration_s` is 0.
    ZeroRampDuration,
    /// `split.ramp.to` is below the first weight's percent (both as written).
    RampBelowFirstWeight {
        to: f64,
        first: f64,
    },

    /// A JSON Schema keyword the value fails (`canary-tagger validate`, the schema tests;
    /// never the filter, so not in the module).
    #[cfg(all(feature = "schema", not(target_arch = "wasm32")))]
    Schema(SchemaKeyword),
}

/// The JSON Schema keywords [`crate::schema::validate`] checks beyond serde's view.
#[cfg(all(feature = "schema", not(target_arch = "wasm32")))]
#[derive(Clone, Debug, PartialEq)]
pub enum SchemaKeyword {
    /// The schema is `false` here.
    NoValueAllowed,
    /// `const`: the JSON text of the only value allowed.
    NotConst(String),
    TooShort(u64),
    TooLong(u64),
    PatternMismatch {
        text: String,
        pattern: String,
    },
    InvalidSchemaPattern {
        pattern: String,
        error: String,
    },
    BelowMinimum {
        value: Number,
        minimum: f64,
    },
    AboveMaximum {
        value: Number,
        maximum: f64,
    },
    TooFewItems(u64),
    TooManyItems(u64),
    /// `uniqueItems`: item `index` (JSON text `item`) repeats an earlier one.
    ListedTwice {
        index: usize,
        item: String,
    },
    /// `anyOf`: what each alternative asks for.
    NoneOf(Vec<String>),
    /// `not`: what the value must not have.
    MustNotHave(String),
}

#[cfg(all(feature = "schema", not(target_arch = "wasm32")))]
impl From<SchemaKeyword> for ErrorKind {
    fn from(keyword: SchemaKeyword) -> ErrorKind {
        ErrorKind::Schema(keyword)
    }
}

/// What a list must hold at least one of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListOf {
    Version,
    Value,
    AddressOrRange,
    Condition,
    RestoreSource,
}

/// The JSON value an error found, described as serde describes it.
#[derive(Clone, Debug, PartialEq)]
pub enum Found {
    Null,
    Boolean(bool),
    Number(Number),
    String(String),
    Array,
    Object,
    /// serde's words for a value it describes in a way this enum does not model.
    Other(String),
}

/// What the value should have been.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    String,
    Boolean,
    Array,
    Object,
    Number,
    Integer,
    NonNegativeInteger,
    Null,
    Value,
    /// One of these enum variants.
    OneOf(Vec<String>),
    /// serde's words for an expectation this enum does not model.
    Other(String),
}

impl From<&serde_json::Value> for Found {
    fn from(value: &serde_json::Value) -> Found {
        match value {
            serde_json::Value::Null => Found::Null,
            serde_json::Value::Bool(b) => Found::Boolean(*b),
            serde_json::Value::Number(n) => Found::Number(n.clone()),
            serde_json::Value::String(s) => Found::String(s.clone()),
            serde_json::Value::Array(_) => Found::Array,
            serde_json::Value::Object(_) => Found::Object,
        }
    }
}
