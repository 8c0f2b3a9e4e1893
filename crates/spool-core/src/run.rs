//! What a run is, whatever dialect started it or watches it.
//!
//! [`RunHeader`] is fixed when the run is created (its id, model,
//! conversation, flags and sampling parameters); [`Usage`], [`RunError`] and
//! [`IncompleteReason`] are what its events report. Request fields that only
//! the Responses API echoes back ride along in [`ResponsesEcho`], untouched
//! by every other dialect.

use crate::ids::{ConversationId, ResponseId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// Everything about a run that is fixed when it is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunHeader {
    pub id: ResponseId,
    /// Unix seconds.
    pub created_at: i64,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<ResponseId>,
    /// The conversation (thread) the run continues and appends to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationId>,
    /// The named agent that runs, if one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub store: bool,
    pub background: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub sampling: Sampling,
    /// Request fields only the Responses API echoes back.
    #[serde(default)]
    pub responses: ResponsesEcho,
    /// How the chat-completions dialects show the run.
    #[serde(default, skip_serializing_if = "ChatStreamOptions::is_default")]
    pub chat: ChatStreamOptions,
    /// The run resumes an agent turn that an earlier run began and left
    /// waiting for the caller's tool results (llama-stack's turn resume):
    /// that run's id, which is the turn's id. A turn is the runs from its
    /// first to the one that ends it without waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continues_turn: Option<ResponseId>,
}

/// How the chat-completions dialects (`chat`, `wxo`) show a run. Fixed when
/// the run is created and logged with it, so a replay or a resumed stream
/// numbers its frames exactly as the live stream did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatStreamOptions {
    /// Agent status chunks (seed 001's `delta.metadata.status`).
    #[serde(default = "status_chunks_default")]
    pub status_chunks: bool,
    /// A final chunk with the run's usage (`stream_options.include_usage`).
    #[serde(default)]
    pub include_usage: bool,
}

fn status_chunks_default() -> bool {
    true
}

impl Default for ChatStreamOptions {
    fn default() -> Self {
        Self {
            status_chunks: true,
            include_usage: false,
        }
    }
}

impl ChatStreamOptions {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// How the model is asked to sample; `None` leaves the model's default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Most server-side tool calls the run may make.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tool_calls: Option<u64>,
    pub parallel_tool_calls: bool,
    /// Sequences that end the model's output (Chat Completions `stop`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: None,
            top_p: None,
            presence_penalty: None,
            frequency_penalty: None,
            max_output_tokens: None,
            max_tool_calls: None,
            parallel_tool_calls: true,
            stop: Vec::new(),
        }
    }
}

/// The request fields the Responses API echoes in its response object and
/// no other dialect shows, in their wire form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponsesEcho {
    /// The request's tools, echoed back unchanged.
    pub tools: Vec<Value>,
    /// The types of the hosted tools the caller offered that spool could
    /// not offer the model (no MCP server serves them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools_not_offered: Vec<String>,
    pub tool_choice: Value,
    pub top_logprobs: u32,
    pub truncation: String,
    pub text: Value,
    pub reasoning: Value,
    pub service_tier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl Default for ResponsesEcho {
    /// What a request that sets none of these fields echoes.
    fn default() -> Self {
        Self {
            tools: Vec::new(),
            tools_not_offered: Vec::new(),
            tool_choice: Value::String("auto".into()),
            top_logprobs: 0,
            truncation: "disabled".into(),
            text: serde_json::json!({"format": {"type": "text"}, "verbosity": "medium"}),
            reasoning: serde_json::json!({"effort": null, "summary": null}),
            service_tier: "default".into(),
            safety_identifier: None,
            prompt_cache_key: None,
            user: None,
        }
    }
}

/// Token counts, as the Responses API reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub input_tokens_details: InputTokensDetails,
    pub output_tokens: u64,
    pub output_tokens_details: OutputTokensDetails,
    pub total_tokens: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Adds another model call's usage, for runs that call the model more
    /// than once.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.input_tokens_details.cached_tokens += other.input_tokens_details.cached_tokens;
        self.output_tokens += other.output_tokens;
        self.output_tokens_details.reasoning_tokens += other.output_tokens_details.reasoning_tokens;
        self.total_tokens += other.total_tokens;
    }
}

/// Declares a string enum with known values and a catch-all that keeps any
/// other string (written by an older spool, or chosen by a hosted agent),
/// serialized as the plain string.
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// A value spool does not name.
            Other(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)*
                    Self::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($text => Self::$variant,)*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match Self::from(s.as_str()) {
                    Self::Other(_) => Self::Other(s),
                    known => known,
                }
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(Self::from)
            }
        }
    };
}

string_enum! {
    /// Why a run failed, machine-readable: `error.code` in every dialect.
    ErrorCode {
        ServerError = "server_error",
        /// The server stopped while the run was going.
        ServerShutdown = "server_shutdown",
        /// The run's log could not be stored.
        StorageError = "storage_error",
        /// The run lasted longer than the server's run deadline.
        RunDeadlineExceeded = "run_deadline_exceeded",
        UpstreamUnreachable = "upstream_unreachable",
        UpstreamHttpError = "upstream_http_error",
        RateLimitExceeded = "rate_limit_exceeded",
        UpstreamTimeout = "upstream_timeout",
        UpstreamProtocolError = "upstream_protocol_error",
        UpstreamDisconnected = "upstream_disconnected",
        UpstreamError = "upstream_error",
    }
}

string_enum! {
    /// Why a run stopped early: `incomplete_details.reason`.
    IncompleteReason {
        /// The model ran into `max_output_tokens`.
        MaxOutputTokens = "max_output_tokens",
        /// The model's output was filtered.
        ContentFilter = "content_filter",
        /// The tool loop called the model as often as it may.
        MaxInferIters = "max_infer_iters",
    }
}

/// Why a run failed: `error` on a failed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    pub code: ErrorCode,
    pub message: String,
}

impl RunError {
    pub fn new(code: impl Into<ErrorCode>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn header() -> RunHeader {
        RunHeader {
            id: ResponseId::parse("resp_test").unwrap(),
            created_at: 1_700_000_000,
            model: "echo".into(),
            instructions: None,
            previous_response_id: None,
            conversation: None,
            agent: None,
            store: true,
            background: false,
            metadata: BTreeMap::new(),
            sampling: Sampling::default(),
            responses: ResponsesEcho::default(),
            chat: ChatStreamOptions::default(),
            continues_turn: None,
        }
    }

    #[test]
    fn usage_adds_up_across_model_calls() {
        let mut u = Usage::default();
        let one = Usage {
            input_tokens: 3,
            input_tokens_details: InputTokensDetails { cached_tokens: 1 },
            output_tokens: 2,
            output_tokens_details: OutputTokensDetails {
                reasoning_tokens: 1,
            },
            total_tokens: 5,
        };
        u.add(&one);
        u.add(&one);
        assert_eq!(u.total_tokens, 10);
        assert_eq!(u.input_tokens_details.cached_tokens, 2);
    }

    #[test]
    fn error_codes_are_plain_strings_known_or_not() {
        let known = RunError::new("upstream_timeout", "slow");
        assert_eq!(known.code, ErrorCode::UpstreamTimeout);
        let custom = RunError::new("tool_failed", "x");
        assert_eq!(custom.code, ErrorCode::Other("tool_failed".into()));
        for e in [known, custom] {
            let v = serde_json::to_value(&e).unwrap();
            assert_eq!(v["code"], e.code.as_str());
            assert_eq!(serde_json::from_value::<RunError>(v).unwrap(), e);
        }
    }
}

/// What a shield found wrong with a text (llama-stack's `SafetyViolation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SafetyViolation {
    pub violation_level: ViolationLevel,
    /// What the user is told instead of an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_message: Option<String>,
    /// Why, e.g. the categories a moderation model flagged.
    #[serde(default)]
    pub metadata: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationLevel {
    Info,
    Warn,
    Error,
}
