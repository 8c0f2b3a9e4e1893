//! Pure projections of a run's canonical log into wire dialects.
//!
//! A projection is a fold: it is fed the log's envelopes in order and yields
//! zero or more wire events for each. Live streaming and replay run the same
//! projection over the same log, so a replayed stream is byte-identical to
//! the live one, and a cursor such as `starting_after` is applied by
//! projecting from the start and skipping what the client already has.

pub mod responses;

pub use responses::{ResponsesProjection, WireEvent};
