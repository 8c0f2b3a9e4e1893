//! Model providers for spool.
//!
//! A [`ModelProvider`] turns a [`ModelRequest`] into a stream of
//! [`ModelDelta`]s: text, refusal and reasoning deltas, tool-call fragments,
//! usage and a finish reason. [`openai_chat::OpenAiChat`] speaks to any
//! OpenAI-compatible chat-completions endpoint; [`echo::Echo`] is the
//! built-in `echo` model for trying spool without one. [`ModelAgent`] is the
//! built-in [`Agent`](spool_core::agent::Agent) that turns a provider's deltas
//! into a run's events, and [`ModelRouter`] picks a provider by model name.
//!
//! # Layout
//! - [`sse`]: an incremental `text/event-stream` decoder for upstream bodies.
//! - [`openai_chat`]: the chat-completions client (request mapping in
//!   `request.rs`, chunk decoding in `chunk.rs`).
//! - [`echo`]: the echo model.
//! - [`model_agent`]: deltas → events.

pub mod echo;
pub mod mcp;
pub mod model_agent;
pub mod openai_chat;
pub mod sse;

use async_trait::async_trait;
use futures::stream::BoxStream;
use spool_core::agent::RunContext;
use spool_core::item::Item;
use spool_core::request::{FunctionTool, TextFormat, ToolChoice, UpstreamHints};
use spool_core::run::{ErrorCode, RunError, Usage};
use std::sync::Arc;

pub use model_agent::{LoopLimits, ModelAgent};

/// What a model is asked for one call.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    pub model: String,
    pub instructions: Option<String>,
    /// The conversation, oldest first.
    pub items: Vec<Item>,
    pub tools: Vec<FunctionTool>,
    pub tool_choice: ToolChoice,
    pub parallel_tool_calls: bool,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub max_output_tokens: Option<u64>,
    /// Sequences that end the output.
    pub stop: Vec<String>,
    pub text_format: TextFormat,
    pub reasoning_effort: Option<String>,
    /// Passed to the upstream as they are.
    pub upstream_hints: UpstreamHints,
    /// Log probabilities of the output text are wanted, with this many
    /// most likely alternatives per token.
    pub logprobs: Option<u32>,
}

impl ModelRequest {
    /// The model call a run's context asks for.
    pub fn from_context(ctx: &RunContext) -> Self {
        let r = &ctx.request;
        Self {
            model: r.model.clone(),
            instructions: r.instructions.clone(),
            items: ctx.conversation().cloned().collect(),
            tools: r.tools.clone(),
            tool_choice: r.tool_choice.clone(),
            parallel_tool_calls: r.parallel_tool_calls,
            temperature: r.temperature,
            top_p: r.top_p,
            presence_penalty: r.presence_penalty,
            frequency_penalty: r.frequency_penalty,
            max_output_tokens: r.max_output_tokens,
            stop: r.stop.clone(),
            text_format: r.text_format.clone(),
            reasoning_effort: r.reasoning_effort.clone(),
            upstream_hints: r.upstream_hints.clone(),
            logprobs: r.logprobs,
        }
    }
}

/// One piece of a model's streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelDelta {
    /// The log probabilities of the tokens of the `Text` that follows.
    TextLogprobs(Vec<serde_json::Value>),
    Text(String),
    Refusal(String),
    Reasoning(String),
    /// A fragment of tool call number `index`: the first fragment of a call
    /// usually carries its id and name, later ones more arguments.
    ToolCall {
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    Usage(Usage),
    Finish(FinishReason),
}

impl ModelDelta {
    /// Whether the delta carries output (or ends the answer): what the
    /// no-progress timeout waits for. A tool-call fragment with no id, name
    /// or arguments is an empty chunk, as a keep-alive is.
    pub fn is_progress(&self) -> bool {
        match self {
            Self::TextLogprobs(_) => false,
            Self::Text(t) | Self::Refusal(t) | Self::Reasoning(t) => !t.is_empty(),
            Self::ToolCall {
                id,
                name,
                arguments,
                ..
            } => id.is_some() || name.is_some() || !arguments.is_empty(),
            Self::Usage(_) | Self::Finish(_) => true,
        }
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    ToolCalls,
    /// Ran into `max_output_tokens`.
    Length,
    ContentFilter,
}

impl FinishReason {
    /// Parses a chat-completions `finish_reason`; unknown reasons count as
    /// a normal stop.
    pub fn parse(s: &str) -> Self {
        match s {
            "length" => Self::Length,
            "content_filter" => Self::ContentFilter,
            "tool_calls" | "function_call" => Self::ToolCalls,
            _ => Self::Stop,
        }
    }
}

/// Why a model call failed. Each kind has a stable `error.code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("the model upstream could not be reached: {0}")]
    Unreachable(String),
    #[error("the model upstream answered HTTP {status}: {message}")]
    Http { status: u16, message: String },
    #[error(
        "the model upstream sent no output for {0} seconds (keep-alive comments and empty chunks do not count)"
    )]
    Timeout(u64),
    #[error("the model upstream sent a malformed stream: {0}")]
    Protocol(String),
    #[error("the model upstream closed the stream before it finished: {0}")]
    Disconnected(String),
    #[error("the model upstream reported an error: {0}")]
    Upstream(String),
}

impl ProviderError {
    /// Whether the upstream refused the call because the conversation does
    /// not fit the model's context (OpenAI's `context_length_exceeded`,
    /// vLLM's and llama.cpp's wordings).
    pub fn is_context_too_long(&self) -> bool {
        let Self::Http { status, message } = self else {
            return false;
        };
        let message = message.to_ascii_lowercase();
        matches!(status, 400 | 413)
            && [
                "context_length_exceeded",
                "maximum context length",
                "context size",
                "context window",
                "too many tokens",
            ]
            .iter()
            .any(|m| message.contains(m))
    }

    /// The `error.code` of the failed response.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unreachable(_) => ErrorCode::UpstreamUnreachable,
            Self::Http { status: 429, .. } => ErrorCode::RateLimitExceeded,
            Self::Http { .. } => ErrorCode::UpstreamHttpError,
            Self::Timeout(_) => ErrorCode::UpstreamTimeout,
            Self::Protocol(_) => ErrorCode::UpstreamProtocolError,
            Self::Disconnected(_) => ErrorCode::UpstreamDisconnected,
            Self::Upstream(_) => ErrorCode::UpstreamError,
        }
    }
}

impl From<ProviderError> for RunError {
    fn from(e: ProviderError) -> Self {
        RunError::new(e.code(), e.to_string())
    }
}

/// A stream of deltas from one model call.
pub type DeltaStream = BoxStream<'static, Result<ModelDelta, ProviderError>>;

/// Something that answers model calls.
#[async_trait]
pub trait ModelProvider: Send + Sync + 'static {
    /// Starts a call. Errors before the first delta (connection, HTTP
    /// status) come from here; errors mid-stream come through the stream.
    async fn stream(&self, request: ModelRequest) -> Result<DeltaStream, ProviderError>;

    /// Checks `input` with the moderation model `model` and returns the
    /// categories it flagged (none: the text passed). A provider without a
    /// moderation endpoint (the built-in `echo`) says so as an error.
    async fn moderate(&self, model: &str, input: &str) -> Result<Vec<String>, ProviderError> {
        let _ = input;
        Err(ProviderError::Upstream(format!(
            "moderation model '{model}' is not available: this model has no moderation endpoint"
        )))
    }
}

/// A model name that no provider serves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "The model '{0}' is not available: no model upstream is configured. Set SPOOL_UPSTREAM_URL \
     (or --upstream-url) to an OpenAI-compatible base URL ending in /v1, or use the built-in \
     model 'echo'."
)]
pub struct ModelUnavailable(pub String);

/// Picks the provider for a model name: `echo` is built in, everything else
/// goes to the configured upstream.
#[derive(Clone)]
pub struct ModelRouter {
    echo: Arc<dyn ModelProvider>,
    upstream: Option<Arc<dyn ModelProvider>>,
}

impl ModelRouter {
    pub fn new(upstream: Option<Arc<dyn ModelProvider>>) -> Self {
        Self {
            echo: Arc::new(echo::Echo),
            upstream,
        }
    }

    pub fn resolve(&self, model: &str) -> Result<Arc<dyn ModelProvider>, ModelUnavailable> {
        if model == echo::ECHO_MODEL {
            return Ok(self.echo.clone());
        }
        self.upstream
            .clone()
            .ok_or_else(|| ModelUnavailable(model.to_owned()))
    }
}
