//! The I/O-free domain of spool.
//!
//! Everything a run *is* lives here, and nothing here touches a socket, a file
//! or a clock it was not handed, so all of it is testable in microseconds.
//!
//! # Layout
//! - [`ids`]: the id newtypes (`resp_…`, `msg_…`, …), their parsing, and the
//!   [`ids::IdSource`] a run draws fresh ids from.
//! - [`clock`]: the [`clock::Clock`] passed to code that reads the time.
//! - [`item`]: conversation items (messages, function calls, their outputs,
//!   reasoning) in the normalized form spool stores and serves.
//! - [`request`]: a validated `POST /v1/responses` body ([`request::RunRequest`]),
//!   parsed as typed serde whose errors name the full parameter path.
//! - [`run`]: what a run is in every dialect: the header fixed at its
//!   creation, usage, errors and incomplete reasons.
//! - [`status`]: the run state machine (queued → in_progress → terminal).
//! - [`event`]: the canonical events of the log (runs, steps, items, tool
//!   calls, agent status), the one storage format that every dialect is
//!   projected from; [`event::legacy`] reads what older builds logged.
//! - [`fold`]: folds events into a run's state and rejects events that
//!   arrive in an order the protocol forbids.
//! - [`projection`]: pure projections of the log into wire dialects; the
//!   Responses API stream and response object are the first.
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
pub mod clock;
pub mod emit;
pub mod event;
pub mod fold;
pub mod ids;
pub mod item;
pub mod projection;
pub mod request;
pub mod run;
pub mod status;
pub mod tool;

#[cfg(test)]
mod replay_props;
