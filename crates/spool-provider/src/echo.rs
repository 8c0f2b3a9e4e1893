//! The built-in `echo` model: a way to try spool, not a model.
//!
//! It streams the last user message back word by word (each word with the
//! whitespace before it, so the deltas join to the original text), reports
//! usage as word counts, and finishes. It needs no upstream, so spool's quick
//! start works on a machine with nothing else installed.

use crate::{DeltaStream, FinishReason, ModelDelta, ModelProvider, ModelRequest, ProviderError};
use async_trait::async_trait;
use futures::StreamExt;
use spool_core::item::{Item, Role};
use spool_core::run::Usage;

/// The model name that selects the echo model.
pub const ECHO_MODEL: &str = "echo";

/// The echo model.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

/// What the echo model repeats: the last user message's text, or the last
/// function call output when a tool round trip continues the conversation.
fn echoed_text(items: &[Item]) -> String {
    items
        .iter()
        .rev()
        .find_map(|item| match item {
            Item::Message(m) if m.role == Role::User => Some(m.text()),
            Item::FunctionCallOutput(o) => Some(o.output_text()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Splits text into words that keep their leading whitespace.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_space = true;
    for ch in text.chars() {
        if ch.is_whitespace() {
            if !in_space && !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            in_space = true;
        } else {
            in_space = false;
        }
        current.push(ch);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[async_trait]
impl ModelProvider for Echo {
    async fn stream(&self, request: ModelRequest) -> Result<DeltaStream, ProviderError> {
        let input_words: u64 = request
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Message(m) => Some(m.text().split_whitespace().count() as u64),
                _ => None,
            })
            .sum();
        let words = words(&echoed_text(&request.items));
        let output_tokens = words.len() as u64;
        let deltas = words
            .into_iter()
            .map(ModelDelta::Text)
            .chain([
                ModelDelta::Finish(FinishReason::Stop),
                ModelDelta::Usage(Usage {
                    input_tokens: input_words,
                    output_tokens,
                    total_tokens: input_words + output_tokens,
                    ..Usage::default()
                }),
            ])
            .map(Ok);
        Ok(futures::stream::iter(deltas).boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_their_spacing_so_they_join_back() {
        let text = "hello  brave\nnew world ";
        let w = words(text);
        assert_eq!(w, ["hello", "  brave", "\nnew", " world", " "]);
        assert_eq!(w.concat(), text);
    }
}
