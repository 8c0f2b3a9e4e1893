//! Threads and turns (the Codex dialect) as Responses requests.
//!
//! A thread is a conversation with a few defaults of its own (a model or a
//! named agent, instructions), and a turn is one run on it. A turn's body
//! (`POST /v1/threads/{id}/turns`) is turned into the [`CreateResponseBody`]
//! that the Responses path validates, so a turn is checked, run and logged
//! exactly as a response is.

use super::{CreateResponseBody, RequestError};
use crate::ids::ConversationId;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The schema name a turn's `output_schema` is given, as codex names it.
pub const OUTPUT_SCHEMA_NAME: &str = "codex_output_schema";

/// The metadata keys a thread keeps its defaults under, in its
/// conversation's metadata; they are not shown as the thread's metadata.
pub const THREAD_KEY_PREFIX: &str = "spool.thread.";
const MODEL_KEY: &str = "spool.thread.model";
const AGENT_KEY: &str = "spool.thread.agent";
const INSTRUCTIONS_KEY: &str = "spool.thread.instructions";

/// What a thread's turns default to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadDefaults {
    pub model: Option<String>,
    /// A named agent the turns run.
    pub agent: Option<String>,
    pub instructions: Option<String>,
}

impl ThreadDefaults {
    /// Reads the defaults out of a conversation's metadata.
    pub fn from_metadata(metadata: &BTreeMap<String, String>) -> Self {
        Self {
            model: metadata.get(MODEL_KEY).cloned(),
            agent: metadata.get(AGENT_KEY).cloned(),
            instructions: metadata.get(INSTRUCTIONS_KEY).cloned(),
        }
    }

    /// Writes the defaults into a conversation's metadata.
    pub fn write_metadata(&self, metadata: &mut BTreeMap<String, String>) {
        for (key, value) in [
            (MODEL_KEY, &self.model),
            (AGENT_KEY, &self.agent),
            (INSTRUCTIONS_KEY, &self.instructions),
        ] {
            if let Some(value) = value {
                metadata.insert(key.to_owned(), value.clone());
            }
        }
    }

    /// The metadata a caller set, without the thread's own keys.
    pub fn caller_metadata(metadata: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        metadata
            .iter()
            .filter(|(k, _)| !k.starts_with(THREAD_KEY_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// The body of `POST /v1/threads`.
#[derive(Debug, Default, Deserialize)]
pub struct CreateThreadBody {
    pub model: Option<String>,
    /// The named agent the thread's turns run: its name, or
    /// `{"type": "agent_reference", "name": …}`.
    pub agent: Option<Value>,
    pub instructions: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

impl CreateThreadBody {
    /// The thread's defaults and its caller metadata, checked.
    pub fn parse(self) -> Result<(ThreadDefaults, BTreeMap<String, String>), RequestError> {
        let metadata = self.metadata.unwrap_or_default();
        super::check_metadata(&metadata)?;
        if metadata.keys().any(|k| k.starts_with(THREAD_KEY_PREFIX)) {
            return Err(RequestError::invalid(
                "metadata",
                format!("metadata keys starting with '{THREAD_KEY_PREFIX}' are reserved."),
            ));
        }
        let agent = match self.agent {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(name),
            Some(reference) => match reference.get("name").and_then(Value::as_str) {
                Some(name) => Some(name.to_owned()),
                None => {
                    return Err(RequestError::invalid(
                        "agent",
                        "agent must be a name or {\"type\": \"agent_reference\", \"name\": …}.",
                    ));
                }
            },
        };
        let defaults = ThreadDefaults {
            model: self.model,
            agent,
            instructions: self.instructions,
        };
        Ok((defaults, metadata))
    }
}

/// The body of `POST /v1/threads/{id}/turns`.
#[derive(Debug, Default, Deserialize)]
pub struct CreateTurnBody {
    /// A prompt, or a list of input parts: `{"type": "text", "text"}` and
    /// `{"type": "image", "image_url"}` (also spelled `input_text`,
    /// `input_image`).
    pub input: Option<Value>,
    pub model: Option<String>,
    /// A JSON schema the final answer must follow.
    pub output_schema: Option<Value>,
    /// `false` to get the finished turn instead of its events.
    pub stream: Option<bool>,
}

impl CreateTurnBody {
    /// Whether the turn's events are streamed (the default).
    pub fn streams(&self) -> bool {
        self.stream.unwrap_or(true)
    }

    /// The Responses request this turn is, on `thread` with `defaults`.
    pub fn into_response_body(
        self,
        thread: &ConversationId,
        defaults: &ThreadDefaults,
    ) -> Result<CreateResponseBody, RequestError> {
        let input = turn_input(self.input)?;
        let text = match self.output_schema {
            None | Some(Value::Null) => None,
            Some(schema @ Value::Object(_)) => Some(json!({"format": {
                "type": "json_schema",
                "name": OUTPUT_SCHEMA_NAME,
                "schema": schema,
                "strict": true,
            }})),
            Some(_) => {
                return Err(RequestError::invalid(
                    "output_schema",
                    "output_schema must be a JSON schema object.",
                ));
            }
        };
        Ok(CreateResponseBody {
            model: self.model.or_else(|| defaults.model.clone()),
            agent: defaults
                .agent
                .as_ref()
                .map(|name| json!({"type": "agent_reference", "name": name})),
            instructions: defaults.instructions.clone(),
            input: Some(input),
            text,
            conversation: Some(Value::String(thread.as_str().to_owned())),
            store: Some(true),
            stream: Some(true),
            ..CreateResponseBody::default()
        })
    }
}

/// A turn's input as Responses input: a prompt as is, parts as one user
/// message.
fn turn_input(input: Option<Value>) -> Result<Value, RequestError> {
    let parts = match input {
        None | Some(Value::Null) => return Err(RequestError::missing("input")),
        Some(Value::String(prompt)) => return Ok(Value::String(prompt)),
        Some(Value::Array(parts)) if !parts.is_empty() => parts,
        Some(_) => {
            return Err(RequestError::invalid(
                "input",
                "input must be a string or a non-empty list of input parts.",
            ));
        }
    };
    let content = parts
        .into_iter()
        .enumerate()
        .map(|(i, part)| input_part(i, part))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!([{"type": "message", "role": "user", "content": content}]))
}

fn input_part(i: usize, part: Value) -> Result<Value, RequestError> {
    let kind = part.get("type").and_then(Value::as_str).unwrap_or_default();
    let text = part.get("text").and_then(Value::as_str);
    let image_url = part.get("image_url").and_then(Value::as_str);
    match (kind, text, image_url) {
        ("text" | "input_text", Some(text), _) => Ok(json!({"type": "input_text", "text": text})),
        ("image" | "input_image", _, Some(url)) => {
            Ok(json!({"type": "input_image", "image_url": url, "detail": "auto"}))
        }
        ("local_image", _, _) => Err(RequestError::invalid(
            format!("input[{i}]"),
            "local_image paths are not readable by the server; send the image as an image_url.",
        )),
        _ => Err(RequestError::invalid(
            format!("input[{i}]"),
            "an input part must be {\"type\": \"text\", \"text\"} or {\"type\": \"image\", \"image_url\"}.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::SequentialIds;

    fn thread() -> ConversationId {
        ConversationId::generate(&SequentialIds::default())
    }

    #[test]
    fn a_turn_runs_on_its_thread_with_the_thread_defaults() {
        let defaults = ThreadDefaults {
            model: Some("m".into()),
            agent: None,
            instructions: Some("be brief".into()),
        };
        let body = CreateTurnBody {
            input: Some(json!("hi")),
            ..Default::default()
        };
        let id = thread();
        let r = body.into_response_body(&id, &defaults).unwrap();
        assert_eq!(r.model.as_deref(), Some("m"));
        assert_eq!(r.instructions.as_deref(), Some("be brief"));
        assert_eq!(r.conversation, Some(json!(id.as_str())));
    }

    #[test]
    fn an_output_schema_becomes_a_strict_json_schema_format() {
        let body = CreateTurnBody {
            input: Some(json!([{"type": "text", "text": "hi"}])),
            output_schema: Some(json!({"type": "object"})),
            ..Default::default()
        };
        let r = body
            .into_response_body(&thread(), &ThreadDefaults::default())
            .unwrap();
        assert_eq!(r.text.unwrap()["format"]["name"], OUTPUT_SCHEMA_NAME);
        assert_eq!(
            r.input.unwrap()[0]["content"][0],
            json!({"type": "input_text", "text": "hi"})
        );
    }

    #[test]
    fn a_turn_without_input_or_with_a_bad_part_is_refused() {
        let e = CreateTurnBody::default()
            .into_response_body(&thread(), &ThreadDefaults::default())
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input"));
        let e = CreateTurnBody {
            input: Some(json!([{"type": "local_image", "path": "/x.png"}])),
            ..Default::default()
        }
        .into_response_body(&thread(), &ThreadDefaults::default())
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input[0]"));
    }

    #[test]
    fn thread_defaults_round_trip_through_metadata_and_stay_hidden() {
        let defaults = ThreadDefaults {
            model: Some("m".into()),
            agent: Some("helper".into()),
            instructions: None,
        };
        let mut metadata = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
        defaults.write_metadata(&mut metadata);
        assert_eq!(ThreadDefaults::from_metadata(&metadata), defaults);
        assert_eq!(
            ThreadDefaults::caller_metadata(&metadata),
            BTreeMap::from([("k".to_owned(), "v".to_owned())])
        );
    }
}
