//! `/v1/chat/completions`: one file per action.
//!
//! Chat runs are spool runs: the request is read into a Responses body, the
//! run is logged like any other, and its stream is the `chat` or `wxo`
//! projection of the log. spool itself takes no credentials, so the
//! `Authorization: Bearer` and `X-API-Key` headers Orchestrate sends are
//! accepted as they come.

pub mod create;
