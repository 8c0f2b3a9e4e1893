//! Why the run manager refuses a request: starting, cancelling or deleting
//! a run. Each maps to one HTTP answer in `http/error.rs`.

use spool_core::ids::{ConversationId, ResponseId};
use spool_core::status::RunStatus;
use spool_provider::ModelUnavailable;
use spool_store::StoreError;
use std::time::Duration;

/// Longest a cancel request waits for the run to record its end.
pub(super) const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// Why a run could not start. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    ModelUnavailable(#[from] ModelUnavailable),
    #[error("Previous response with id '{0}' not found.")]
    PreviousNotFound(ResponseId),
    #[error(
        "Previous response with id '{0}' is still in progress; wait for it to end before continuing from it."
    )]
    PreviousInProgress(ResponseId),
    #[error("Conversation with id '{0}' not found.")]
    ConversationNotFound(ConversationId),
    #[error(
        "Conversation '{0}' already has a response in progress ({1}); wait for it to end, or cancel it."
    )]
    ConversationBusy(ConversationId, ResponseId),
    #[error("An item with id '{1}' is already in conversation '{0}'.")]
    DuplicateItem(ConversationId, String),
    #[error(
        "MCP server '{label}' at {url} is not allowed: this server reaches only the MCP URLs its operator allows (SPOOL_MCP_ALLOWED_URLS)."
    )]
    McpNotAllowed { label: String, url: String },
    /// An `item_reference` naming no item earlier in the conversation.
    #[error(
        "input[{index}] references item '{id}', which is not earlier in this conversation (its previous responses, the conversation, or this input)."
    )]
    UnresolvedReference { index: usize, id: String },
    /// A tool result whose call was made nowhere before it.
    #[error(
        "No tool call found for the tool output with call_id '{call_id}' (input[{index}]): its call is not earlier in this conversation (its previous responses, the conversation, or this input)."
    )]
    UnansweredCall { index: usize, call_id: String },
    /// A `compaction` item this server did not seal, or one altered.
    #[error(
        "input[{index}] is a compaction item this server did not make, or one that was altered: its encrypted_content does not open."
    )]
    SealedContentInvalid { index: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the server is shutting down")]
    ShuttingDown,
    /// A request over one of the server's limits (`param` names it).
    #[error("{message}")]
    OverLimit {
        param: &'static str,
        code: &'static str,
        message: String,
    },
    /// The server already runs as many runs as it may.
    #[error("This server is running as many responses as it may at once ({0}); retry shortly.")]
    TooManyRuns(usize),
}

/// Why a cancel was refused.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("Response with id '{0}' not found.")]
    NotFound(ResponseId),
    #[error("Only responses created with background=true can be cancelled.")]
    NotBackground,
    #[error("Cannot cancel a {0} response.")]
    AlreadyEnded(RunStatus),
    #[error("the run did not record its end within {} seconds", CANCEL_WAIT.as_secs())]
    NotStopped,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a delete was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error("Response with id '{0}' not found.")]
    NotFound(ResponseId),
    #[error("Cannot delete an in-flight response; cancel it or wait for it to end.")]
    InFlight,
    #[error(transparent)]
    Store(#[from] StoreError),
}
