//! The I/O-free domain of spool.
//!
//! Everything a run *is* lives here, and nothing here touches a socket, a file
//! or a clock it was not handed, so all of it is testable in microseconds.
//!
//! # Layout
//! - [`ids`]: the id newtypes (`resp_…`, `msg_…`, …) and their parsing.
//! - [`item`]: conversation items (messages, function calls, their outputs,
//!   reasoning) in the normalized form spool stores and serves.
//! - [`request`]: a validated `POST /v1/responses` body ([`request::RunRequest`]),
//!   parsed as typed serde whose errors name the full parameter path.
//! - [`response`]: the response header fixed at creation, and the wire
//!   response object assembled from it.
//! - [`status`]: the run state machine (queued → in_progress → terminal).
//! - [`event`]: the canonical events of the log, the one storage format that
//!   every dialect is projected from.
//! - [`fold`]: folds events into a response snapshot and rejects events that
//!   arrive in an order the protocol forbids.
//! - [`projection`]: pure projections of the log into wire dialects; the
//!   Responses API stream is the first.
//! - [`emit`]: the typed writer through which agents emit events, and the
//!   [`emit::EventSink`] trait that the runtime implements.
//! - [`agent_config`]: named agents (model, instructions, tools, defaults)
//!   and how a request selects one.
//! - [`agent`]: the [`agent::Agent`] trait through which Rust code hosts its
//!   own agent logic.
//! - [`tool`]: server-side tools, the agent status vocabulary and tool
//!   execution records.

pub mod agent;
pub mod agent_config;
pub mod emit;
pub mod event;
pub mod fold;
pub mod ids;
pub mod item;
pub mod projection;
pub mod request;
pub mod response;
pub mod status;
pub mod tool;

#[cfg(test)]
mod replay_props;
