//! Decoding chat-completions stream chunks into [`ModelDelta`]s.
//!
//! Fields are optional everywhere because servers differ: vLLM and others
//! stream reasoning as `reasoning_content`, Ollama and OpenRouter as
//! `reasoning`; usage may come in its own chunk with no choices.

use crate::{FinishReason, ModelDelta, ProviderError};
use serde::Deserialize;
use serde_json::Value;
use spool_core::run::{InputTokensDetails, OutputTokensDetails, Usage};

#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<ChatUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    logprobs: Option<ChoiceLogprobs>,
    #[serde(default)]
    finish_reason: Option<String>,
}

/// `choices[].logprobs`: one entry per token of the content delta, in the
/// shape the Responses API also uses (`token`, `logprob`, `bytes`,
/// `top_logprobs`).
#[derive(Debug, Deserialize)]
struct ChoiceLogprobs {
    #[serde(default)]
    content: Option<Vec<Value>>,
}

#[derive(Debug, Default, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChatUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    total_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

/// Decodes one chunk's JSON, pushing its deltas in order. Only choice 0 is
/// read: spool asks for one completion.
pub fn decode_chunk(data: &[u8], out: &mut impl Extend<ModelDelta>) -> Result<(), ProviderError> {
    let chunk: Chunk = serde_json::from_slice(data).map_err(|e| {
        let shown = String::from_utf8_lossy(&data[..data.len().min(200)]).into_owned();
        ProviderError::Protocol(format!("a chunk is not valid JSON ({e}): {shown}"))
    })?;
    if let Some(error) = chunk.error {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| error.to_string());
        return Err(ProviderError::Upstream(message));
    }
    for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
        if let Some(delta) = choice.delta {
            let reasoning = delta.reasoning_content.or(delta.reasoning);
            if let Some(r) = reasoning.filter(|r| !r.is_empty()) {
                out.extend([ModelDelta::Reasoning(r)]);
            }
            if let Some(t) = delta.content.filter(|t| !t.is_empty()) {
                let logprobs = choice.logprobs.and_then(|l| l.content);
                if let Some(logprobs) = logprobs.filter(|l| !l.is_empty()) {
                    out.extend([ModelDelta::TextLogprobs(logprobs)]);
                }
                out.extend([ModelDelta::Text(t)]);
            }
            if let Some(r) = delta.refusal.filter(|r| !r.is_empty()) {
                out.extend([ModelDelta::Refusal(r)]);
            }
            for (position, call) in delta.tool_calls.into_iter().flatten().enumerate() {
                let function = call.function;
                out.extend([ModelDelta::ToolCall {
                    index: call.index.unwrap_or(position as u32),
                    id: call.id.filter(|s| !s.is_empty()),
                    name: function
                        .as_ref()
                        .and_then(|f| f.name.clone())
                        .filter(|s| !s.is_empty()),
                    arguments: function.and_then(|f| f.arguments).unwrap_or_default(),
                }]);
            }
        }
        if let Some(reason) = choice.finish_reason {
            out.extend([ModelDelta::Finish(FinishReason::parse(&reason))]);
        }
    }
    if let Some(u) = chunk.usage {
        out.extend([ModelDelta::Usage(Usage {
            input_tokens: u.prompt_tokens,
            input_tokens_details: InputTokensDetails {
                cached_tokens: u
                    .prompt_tokens_details
                    .and_then(|d| d.cached_tokens)
                    .unwrap_or(0),
            },
            output_tokens: u.completion_tokens,
            output_tokens_details: OutputTokensDetails {
                reasoning_tokens: u
                    .completion_tokens_details
                    .and_then(|d| d.reasoning_tokens)
                    .unwrap_or(0),
            },
            total_tokens: u
                .total_tokens
                .unwrap_or(u.prompt_tokens + u.completion_tokens),
        })]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> Result<Vec<ModelDelta>, ProviderError> {
        let mut out = Vec::new();
        decode_chunk(s.as_bytes(), &mut out).map(|()| out)
    }

    #[test]
    fn text_and_finish_are_decoded() {
        let d =
            decode(r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}"#)
                .unwrap();
        assert_eq!(
            d,
            [
                ModelDelta::Text("Hi".into()),
                ModelDelta::Finish(FinishReason::Stop)
            ]
        );
    }

    #[test]
    fn tool_call_fragments_keep_their_index() {
        let d = decode(r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_9","type":"function","function":{"name":"f","arguments":"{\"a"}}]}}]}"#).unwrap();
        assert_eq!(
            d,
            [ModelDelta::ToolCall {
                index: 1,
                id: Some("call_9".into()),
                name: Some("f".into()),
                arguments: "{\"a".into()
            }]
        );
    }

    #[test]
    fn a_texts_logprobs_come_just_before_it() {
        let lp = r#"[{"token":"Hi","logprob":-0.1,"bytes":[72,105],"top_logprobs":[]}]"#;
        let chunk = format!(
            r#"{{"choices":[{{"delta":{{"content":"Hi"}},"logprobs":{{"content":{lp}}}}}]}}"#
        );
        assert_eq!(
            decode(&chunk).unwrap(),
            [
                ModelDelta::TextLogprobs(serde_json::from_str(lp).unwrap()),
                ModelDelta::Text("Hi".into())
            ]
        );
        let none = r#"{"choices":[{"delta":{"content":"Hi"},"logprobs":null}]}"#;
        assert_eq!(decode(none).unwrap(), [ModelDelta::Text("Hi".into())]);
    }

    #[test]
    fn reasoning_comes_in_either_field() {
        assert_eq!(
            decode(r#"{"choices":[{"delta":{"reasoning_content":"hm"}}]}"#).unwrap(),
            [ModelDelta::Reasoning("hm".into())]
        );
        assert_eq!(
            decode(r#"{"choices":[{"delta":{"reasoning":"hm"}}]}"#).unwrap(),
            [ModelDelta::Reasoning("hm".into())]
        );
    }

    #[test]
    fn usage_carries_cached_and_reasoning_tokens() {
        let d = decode(r#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,
            "prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}}"#).unwrap();
        let ModelDelta::Usage(u) = d[0] else { panic!() };
        assert_eq!(
            (
                u.input_tokens,
                u.input_tokens_details.cached_tokens,
                u.output_tokens_details.reasoning_tokens
            ),
            (10, 4, 2)
        );
    }

    #[test]
    fn malformed_json_and_in_stream_errors_are_errors() {
        assert!(matches!(
            decode("{not json"),
            Err(ProviderError::Protocol(_))
        ));
        assert_eq!(
            decode(r#"{"error":{"message":"overloaded"}}"#),
            Err(ProviderError::Upstream("overloaded".into()))
        );
    }
}
