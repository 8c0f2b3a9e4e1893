//! The request's generation parameters (sampling ranges, `text.format`,
//! `reasoning`), its `metadata` limits, and the fields spool does not act
//! on but echoes back in the response object.

use super::RequestError;
use super::deserialize::{deserialize_at, deserialize_tagged, take_tag};
use super::tools::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub(super) const METADATA_MAX_PAIRS: usize = 16;
pub(super) const METADATA_MAX_KEY: usize = 64;
pub(super) const METADATA_MAX_VALUE: usize = 512;
pub(super) const MIN_MAX_OUTPUT_TOKENS: u64 = 16;
pub(super) const MAX_INFER_ITERS: u32 = 100;

/// The output format asked for in `text.format`.
#[derive(Debug, Clone, PartialEq)]
pub enum TextFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        schema: Value,
        description: Option<String>,
        strict: Option<bool>,
    },
}

/// Request fields spool does not act on but must echo back.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Echo {
    pub(super) truncation: String,
    pub(super) text: Value,
    pub(super) reasoning: Value,
    pub(super) top_logprobs: u32,
    pub(super) service_tier: String,
    pub(super) safety_identifier: Option<String>,
    pub(super) prompt_cache_key: Option<String>,
    pub(super) user: Option<String>,
    pub(super) tools: Vec<Value>,
    pub(super) tools_not_offered: Vec<String>,
    pub(super) tool_choice: Value,
}

/// `text.format` as the request gives it, by its `type`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TextFormatParam {
    Text {},
    JsonObject {},
    JsonSchema {
        name: String,
        schema: JsonSchema,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        strict: Option<bool>,
    },
}

pub(super) fn check_range(
    param: &str,
    v: Option<f64>,
    lo: f64,
    hi: f64,
) -> Result<(), RequestError> {
    match v {
        Some(x) if !(lo..=hi).contains(&x) => Err(RequestError::invalid(
            param,
            format!("{param} must be between {lo} and {hi}, got {x}."),
        )),
        _ => Ok(()),
    }
}

/// Checks `metadata` against the API's limits (16 pairs, 64-character keys,
/// 512-character values).
pub fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), RequestError> {
    if metadata.len() > METADATA_MAX_PAIRS {
        return Err(RequestError::invalid(
            "metadata",
            format!("metadata may hold at most {METADATA_MAX_PAIRS} pairs."),
        ));
    }
    for (k, v) in metadata {
        if k.chars().count() > METADATA_MAX_KEY {
            return Err(RequestError::invalid(
                "metadata",
                format!("metadata keys may be at most {METADATA_MAX_KEY} characters."),
            ));
        }
        if v.chars().count() > METADATA_MAX_VALUE {
            return Err(RequestError::invalid(
                format!("metadata.{k}"),
                format!("metadata values may be at most {METADATA_MAX_VALUE} characters."),
            ));
        }
    }
    Ok(())
}

/// Parses `text`; returns the format with the echo (the object as given,
/// its format in full and a default verbosity).
pub(super) fn parse_text(text: Option<Value>) -> Result<(TextFormat, Value), RequestError> {
    let default_echo = json!({"format": {"type": "text"}, "verbosity": "medium"});
    let Some(text) = text else {
        return Ok((TextFormat::Text, default_echo));
    };
    let Value::Object(mut echo) = text else {
        return Err(RequestError::invalid("text", "text must be an object."));
    };
    // Read from a copy: the echo keeps the caller's keys where they are.
    let format = match echo.get("format").cloned() {
        None | Some(Value::Null) => TextFormat::Text,
        Some(Value::Object(mut fields)) => {
            let at = "text.format";
            let tag = take_tag(&mut fields, at, None)?;
            match deserialize_tagged::<TextFormatParam>(&tag, fields, at)? {
                Some(TextFormatParam::Text {}) => TextFormat::Text,
                Some(TextFormatParam::JsonObject {}) => TextFormat::JsonObject,
                Some(TextFormatParam::JsonSchema {
                    name,
                    schema: JsonSchema(schema),
                    description,
                    strict,
                }) => TextFormat::JsonSchema {
                    name,
                    schema: Value::Object(schema),
                    description,
                    strict,
                },
                None => {
                    return Err(RequestError::invalid(
                        "text.format.type",
                        "text.format.type must be text, json_object or json_schema.",
                    ));
                }
            }
        }
        Some(_) => {
            return Err(RequestError::invalid(
                "text.format",
                "text.format must be an object.",
            ));
        }
    };
    // The format is echoed in its full form, every key present.
    let format_echo = match &format {
        TextFormat::Text => json!({"type": "text"}),
        TextFormat::JsonObject => json!({"type": "json_object"}),
        TextFormat::JsonSchema {
            name,
            schema,
            description,
            strict,
        } => json!({"type": "json_schema", "name": name, "schema": schema,
                    "description": description, "strict": strict}),
    };
    echo.insert("format".into(), format_echo);
    echo.entry("verbosity").or_insert_with(|| json!("medium"));
    Ok((format, Value::Object(echo)))
}

/// `reasoning` as the request gives it; its other keys are only echoed.
#[derive(Debug, Deserialize)]
struct ReasoningParam {
    #[serde(default)]
    effort: Option<String>,
}

/// Parses `reasoning`; returns its effort with the echo.
pub(super) fn parse_reasoning(
    reasoning: Option<Value>,
) -> Result<(Option<String>, Value), RequestError> {
    match reasoning {
        None | Some(Value::Null) => Ok((None, json!({"effort": null, "summary": null}))),
        Some(Value::Object(mut echo)) => {
            let ReasoningParam { effort } =
                deserialize_at(Value::Object(echo.clone()), "reasoning")?;
            echo.entry("effort").or_insert(Value::Null);
            echo.entry("summary").or_insert(Value::Null);
            Ok((effort, Value::Object(echo)))
        }
        Some(_) => Err(RequestError::invalid(
            "reasoning",
            "reasoning must be an object.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_error(text: Value) -> RequestError {
        parse_text(Some(text)).unwrap_err()
    }

    #[test]
    fn a_bad_json_schema_format_is_named_by_its_field() {
        let e = text_error(json!({"format": {"type": "json_schema", "schema": {}}}));
        assert_eq!(e.param.as_deref(), Some("text.format.name"));
        assert_eq!(e.code, "missing_required_parameter");
        let e = text_error(json!({"format": {"type": "json_schema", "name": "n", "schema": []}}));
        assert_eq!(e.param.as_deref(), Some("text.format.schema"));
        let e = text_error(json!({"format": {"type": "json_schema", "name": "n",
            "schema": {}, "strict": "yes"}}));
        assert_eq!(e.param.as_deref(), Some("text.format.strict"));
        let e = text_error(json!({"format": {"type": "yaml"}}));
        assert_eq!(e.param.as_deref(), Some("text.format.type"));
        let e = text_error(json!({"format": "json"}));
        assert_eq!(e.param.as_deref(), Some("text.format"));
    }

    #[test]
    fn reasoning_effort_must_be_a_string_and_the_echo_is_completed() {
        let e = parse_reasoning(Some(json!({"effort": 1}))).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("reasoning.effort"));
        let (effort, echo) = parse_reasoning(Some(json!({"effort": "low"}))).unwrap();
        assert_eq!(effort.as_deref(), Some("low"));
        assert_eq!(echo, json!({"effort": "low", "summary": null}));
        let e = parse_reasoning(Some(json!("low"))).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("reasoning"));
    }

    #[test]
    fn the_text_echo_keeps_unknown_keys_and_fills_defaults() {
        let (format, echo) =
            parse_text(Some(json!({"format": {"type": "json_object"}, "extra": 1}))).unwrap();
        assert_eq!(format, TextFormat::JsonObject);
        assert_eq!(
            echo,
            json!({"format": {"type": "json_object"}, "extra": 1, "verbosity": "medium"})
        );
    }
}
