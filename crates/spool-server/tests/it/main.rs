//! Integration tests: spool on a loopback port, talking HTTP to a scripted
//! OpenAI-compatible upstream, so the real provider code runs.

mod agents;
mod browser_access;
mod cancel;
mod chaining;
mod chat;
mod client_tools;
mod compaction;
mod conversations;
mod crash_matrix;
mod custom_agent;
mod drain;
mod errors;
mod exec;
mod faulty_store;
mod helpers;
mod hostile_corpus;
mod instances;
mod limits;
mod llama_stack;
mod mcp;
mod recovery;
mod replay;
mod request_fields;
mod responses_list;
mod restart;
mod roboto;
mod run_bounds;
mod shutdown;
mod storage_failure;
mod streaming;
mod threads;
mod tool_loop;
mod upstream;
mod upstream_failures;
mod websocket;
