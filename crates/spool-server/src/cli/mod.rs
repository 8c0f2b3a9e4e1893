//! Subcommands of the `spool` binary besides `serve`: clients of a running
//! spool server.

pub mod exec;
