//! Property-based fuzzing of what clients send: request bodies of the
//! Responses and chat dialects, and ids from paths. Bodies are generated
//! from the fields clients really send, with values of every JSON shape, so
//! most get past serde and exercise the validation behind it. Whatever
//! arrives, parsing returns (never panics), and a refusal names what is
//! wrong. Cases proptest finds are kept under `proptest-regressions/` and
//! replayed first on every run.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use spool_core::ids::{ConversationId, ResponseId, SequentialIds};
use spool_core::request::chat::ChatCompletionBody;
use spool_core::request::{CreateResponseBody, RunRequest};

/// Field names the Responses and chat dialects read, and a few they do not.
const FIELDS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "temperature",
    "top_p",
    "max_output_tokens",
    "metadata",
    "stream",
    "background",
    "store",
    "previous_response_id",
    "conversation",
    "text",
    "reasoning",
    "include",
    "parallel_tool_calls",
    "max_tool_calls",
    "truncation",
    "stream_options",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "n",
    "logprobs",
    "top_logprobs",
    "user",
    "agent",
    "role",
    "content",
    "type",
    "name",
    "parameters",
    "arguments",
    "call_id",
    "output",
    "id",
    "format",
    "effort",
    "strict",
    "server_label",
    "server_url",
    "require_approval",
    "allowed_tools",
    "x",
];

/// Strings clients send, and ones meant to break things.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "up", "echo", "user", "assistant", "system", "developer", "tool", "function",
            "message", "input_text", "output_text", "function_call", "function_call_output",
            "mcp", "auto", "required", "none", "json_schema", "json_object", "resp_1",
            "conv_1", "item_reference", "compaction", "custom", "local_shell", "web_search",
            "object", "string", "disabled", "high", "", "\u{0}", "\u{FEFF}",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// A JSON value of any shape, nested a few levels, with real field names.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..6).prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<String, Value>>(),
                )
            }),
        ]
    })
}

/// A request body: an object of real fields with values of any shape.
fn body() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(FIELDS), value()), 0..10).prop_map(|pairs| {
        let mut object: Map<String, Value> =
            pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        // Most bodies carry a model, as real ones do, to get further.
        object.entry("model").or_insert_with(|| json!("up"));
        Value::Object(object)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_responses_body_parses_or_is_refused_with_a_reason(body in body()) {
        if let Ok(body) = serde_json::from_value::<CreateResponseBody>(body)
            && let Err(e) = RunRequest::parse(body, &SequentialIds::default())
        {
            prop_assert!(!e.message.is_empty());
            prop_assert!(!e.code.is_empty());
        }
    }

    #[test]
    fn a_chat_body_parses_or_is_refused_with_a_reason(body in body()) {
        if let Ok(body) = serde_json::from_value::<ChatCompletionBody>(body) {
            match body.parse() {
                Ok(chat) => {
                    // The chat request's Responses form parses too, or is
                    // refused with a reason.
                    if let Err(e) = RunRequest::parse(chat.body, &SequentialIds::default()) {
                        prop_assert!(!e.message.is_empty());
                    }
                }
                Err(e) => prop_assert!(!e.message.is_empty()),
            }
        }
    }

    #[test]
    fn ids_from_paths_parse_only_when_well_formed(s in any::<String>()) {
        if let Ok(id) = ResponseId::parse(&s) {
            prop_assert_eq!(id.as_str(), s.as_str());
            prop_assert!(s.starts_with("resp_"));
        }
        if let Ok(id) = ConversationId::parse(&s) {
            prop_assert_eq!(id.as_str(), s.as_str());
        }
    }
}
