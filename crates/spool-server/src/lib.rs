//! The spool server.
//!
//! # Layout
//! - [`config`]: `spool serve` flags and `SPOOL_*` variables.
//! - [`app`]: building the server (store, recovery, runtime, listener) and
//!   running it until stopped.
//! - [`runtime`]: the run manager, the group-commit writer, the live bus,
//!   subscriptions and recovery.
//! - [`http`]: routes, one file per endpoint action, errors and SSE.
//! - [`cli`]: `spool exec`, the Codex command line as a client of a server.

pub mod app;
pub mod cli;
pub mod compaction;
pub mod config;
pub mod http;
pub mod runtime;

pub use app::App;
pub use config::ServeConfig;
pub use runtime::Agents;
