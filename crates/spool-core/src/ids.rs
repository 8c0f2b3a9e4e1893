//! Identifier newtypes.
//!
//! Ids are a kind prefix and a unique part (`resp_…`, `msg_…`), like the
//! hosted API's. Fresh ones come from an [`IdSource`] that the caller passes
//! in (the server's draws UUIDv7s, so ids sort by creation time; tests use
//! [`SequentialIds`]): the domain draws no randomness itself. Ids that
//! arrive from outside are parsed once into these types, so code past the
//! HTTP edge never sees an unchecked string.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest id spool accepts from a client; longer strings cannot be ours.
const MAX_ID_LEN: usize = 128;

/// Where a run's fresh ids come from. The runtime passes one in, so code
/// that builds a log draws no randomness of its own and a scripted run
/// writes the same log every time.
pub trait IdSource: Send + Sync {
    /// A fresh id with the given prefix, e.g. `msg_…`.
    fn new_id(&self, prefix: &str) -> String;
}

/// Ids `prefix_0001`, `prefix_0002`, … counted per prefix, so the same calls
/// give the same ids every time and adding ids of one kind leaves the
/// others unchanged: for fixtures and tests.
#[derive(Debug, Default)]
pub struct SequentialIds {
    counters: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl IdSource for SequentialIds {
    fn new_id(&self, prefix: &str) -> String {
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = counters.entry(prefix.to_owned()).or_insert(0);
        *n += 1;
        format!("{prefix}_{n:04}")
    }
}

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("id is empty")]
    Empty,
    #[error("id is longer than {MAX_ID_LEN} characters")]
    TooLong,
    #[error("id may contain only ASCII letters, digits, '_' and '-'")]
    BadCharacter,
    #[error("id must start with '{0}_'")]
    WrongPrefix(&'static str),
}

fn check_id_chars(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(IdError::BadCharacter);
    }
    Ok(())
}

/// The id of one response (one run): `resp_…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResponseId(String);

impl ResponseId {
    pub const PREFIX: &'static str = "resp";

    /// A new response id from `ids`.
    pub fn generate(ids: &dyn IdSource) -> Self {
        Self(ids.new_id(Self::PREFIX))
    }

    /// Parses an id that came from outside the process.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        check_id_chars(s)?;
        if !s.starts_with("resp_") {
            return Err(IdError::WrongPrefix(Self::PREFIX));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResponseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ResponseId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The id of a conversation: `conv_…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConversationId(String);

impl ConversationId {
    pub const PREFIX: &'static str = "conv";

    /// A new conversation id from `ids`.
    pub fn generate(ids: &dyn IdSource) -> Self {
        Self(ids.new_id(Self::PREFIX))
    }

    /// Parses an id that came from outside the process.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        check_id_chars(s)?;
        if !s.starts_with("conv_") {
            return Err(IdError::WrongPrefix(Self::PREFIX));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConversationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses an item id from outside (`after`/`before` cursors, item references).
/// Item ids have several prefixes (`msg_`, `fc_`, …) and clients may send
/// their own, so only the character set and length are checked.
pub fn parse_item_id(s: &str) -> Result<String, IdError> {
    check_id_chars(s)?;
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_response_ids_parse_back() {
        let id = ResponseId::generate(&SequentialIds::default());
        assert_eq!(ResponseId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn sequential_ids_count_per_prefix() {
        let ids = SequentialIds::default();
        assert_eq!(ids.new_id("msg"), "msg_0001");
        assert_eq!(ids.new_id("step"), "step_0001");
        assert_eq!(ids.new_id("msg"), "msg_0002");
    }

    #[test]
    fn a_response_id_without_its_prefix_is_rejected() {
        assert_eq!(
            ResponseId::parse("msg_123"),
            Err(IdError::WrongPrefix("resp"))
        );
    }

    #[test]
    fn path_characters_are_rejected() {
        assert_eq!(ResponseId::parse("resp_../x"), Err(IdError::BadCharacter));
        assert_eq!(parse_item_id(""), Err(IdError::Empty));
        assert_eq!(parse_item_id(&"a".repeat(129)), Err(IdError::TooLong));
    }
}
