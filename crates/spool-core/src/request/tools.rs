//! The request's `tools` and `tool_choice`: function tools the caller runs,
//! MCP servers spool calls (parsed in [`super::mcp`]), how the model may use
//! them, and the echo of each in the response object.

use super::RequestError;
use super::deserialize::{deserialize_tagged, take_tag};
use super::mcp::McpToolParam;
use crate::tool::McpServerSpec;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// How the model may use tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    None,
    Auto,
    Required,
    /// Must call this function.
    Function(String),
}

/// A function tool the caller offers the model; the caller runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionTool {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub parameters: Option<Value>,
    pub strict: Option<bool>,
}

/// The tools of a request: function tools, MCP servers, and the echo.
#[derive(Debug, Default)]
pub(super) struct Tools {
    pub(super) functions: Vec<FunctionTool>,
    pub(super) mcp: Vec<McpServerSpec>,
    pub(super) echoed: Vec<Value>,
}

/// One tool as the request gives it, by its `type`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ToolParam {
    Function(FunctionToolParam),
    Mcp(McpToolParam),
}

#[derive(Debug, Deserialize)]
struct FunctionToolParam {
    name: FunctionName,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<JsonSchema>,
    #[serde(default)]
    strict: Option<bool>,
}

/// A function's name: 1 to 64 characters of `a-z A-Z 0-9 _ -`, as the
/// models' APIs require.
#[derive(Debug)]
struct FunctionName(String);

impl<'de> Deserialize<'de> for FunctionName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        if is_identifier(&name) {
            Ok(FunctionName(name))
        } else {
            Err(serde::de::Error::custom(
                "a function name must be 1 to 64 characters of a-z, A-Z, 0-9, '_' and '-'",
            ))
        }
    }
}

/// A JSON Schema: an object.
#[derive(Debug)]
pub(super) struct JsonSchema(pub(super) Map<String, Value>);

impl<'de> Deserialize<'de> for JsonSchema {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Object(schema) => Ok(JsonSchema(schema)),
            _ => Err(serde::de::Error::custom("expected a JSON Schema object")),
        }
    }
}

/// Whether `s` is 1 to 64 characters of `a-z A-Z 0-9 _ -`: the form of
/// function names and MCP server labels.
pub(super) fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Adds `tools` to `out`. `trusted` tools come from the operator's config
/// (a named agent's MCP servers) and may start a command; they are MCP
/// servers only.
pub(super) fn parse_tools(
    tools: Vec<Value>,
    trusted: bool,
    out: &mut Tools,
) -> Result<(), RequestError> {
    for (i, tool) in tools.into_iter().enumerate() {
        let at = format!("tools[{i}]");
        let Value::Object(mut fields) = tool else {
            return Err(RequestError::invalid(
                at.clone(),
                format!("{at} must be an object."),
            ));
        };
        let tag = take_tag(&mut fields, &at, None)?;
        match deserialize_tagged::<ToolParam>(&tag, fields, &at)? {
            Some(ToolParam::Mcp(param)) => {
                let (spec, echo) = param.into_spec(&at, trusted)?;
                if out.mcp.iter().any(|s| s.server_label == spec.server_label) {
                    return Err(RequestError::invalid(
                        format!("{at}.server_label"),
                        format!("Two MCP servers are labelled '{}'.", spec.server_label),
                    ));
                }
                out.mcp.push(spec);
                out.echoed.push(echo);
            }
            Some(ToolParam::Function(param)) if !trusted => {
                let FunctionToolParam {
                    name: FunctionName(name),
                    description,
                    parameters,
                    strict,
                } = param;
                let parameters = parameters.map(|JsonSchema(schema)| Value::Object(schema));
                out.echoed.push(json!({
                    "type": "function",
                    "name": name,
                    "description": description,
                    "parameters": parameters,
                    "strict": strict,
                }));
                out.functions.push(FunctionTool {
                    name,
                    description,
                    parameters,
                    strict,
                });
            }
            Some(ToolParam::Function(_)) | None => {
                return Err(RequestError::unsupported(
                    format!("{at}.type"),
                    format!(
                        "Tools of type '{tag}' are not supported by this server; 'function' and 'mcp' tools are."
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `tool_choice` given as an object, by its `type`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ToolChoiceParam {
    Function { name: String },
}

/// Parses `tool_choice` against the tools offered (the function tools, and
/// whether any MCP server offers more); returns it with its echo (as given).
pub(super) fn parse_tool_choice(
    choice: Option<Value>,
    tools: &[FunctionTool],
    has_mcp_tools: bool,
) -> Result<(ToolChoice, Value), RequestError> {
    let Some(choice) = choice else {
        return Ok((ToolChoice::Auto, json!("auto")));
    };
    let unsupported = || {
        RequestError::unsupported(
            "tool_choice",
            "tool_choice must be 'none', 'auto', 'required' or {\"type\":\"function\",\"name\":…}.",
        )
    };
    let parsed = match &choice {
        Value::String(s) => match s.as_str() {
            "none" => ToolChoice::None,
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            other => {
                return Err(RequestError::invalid(
                    "tool_choice",
                    format!(
                        "Invalid tool_choice '{other}': expected none, auto, required or a function."
                    ),
                ));
            }
        },
        Value::Object(fields) => {
            let mut fields = fields.clone();
            let tag = take_tag(&mut fields, "tool_choice", None)?;
            match deserialize_tagged::<ToolChoiceParam>(&tag, fields, "tool_choice")? {
                Some(ToolChoiceParam::Function { name }) => {
                    if !tools.iter().any(|t| t.name == name) {
                        return Err(RequestError::invalid(
                            "tool_choice",
                            format!("tool_choice names function '{name}', which is not in tools."),
                        ));
                    }
                    ToolChoice::Function(name)
                }
                None => return Err(unsupported()),
            }
        }
        _ => return Err(unsupported()),
    };
    // `required` is met by a call of any tool, MCP tools included; a named
    // function must be one of the function tools.
    let no_tools = match parsed {
        ToolChoice::Required => tools.is_empty() && !has_mcp_tools,
        ToolChoice::Function(_) => tools.is_empty(),
        ToolChoice::None | ToolChoice::Auto => false,
    };
    if no_tools {
        return Err(RequestError::invalid(
            "tool_choice",
            "tool_choice requires a tool call, but no tools were given.",
        ));
    }
    Ok((parsed, choice))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(tools: Value) -> RequestError {
        let Value::Array(tools) = tools else {
            panic!("an array")
        };
        parse_tools(tools, false, &mut Tools::default()).unwrap_err()
    }

    #[test]
    fn a_bad_field_of_a_function_tool_is_named_by_its_path() {
        let e = error(json!([
            {"type": "function", "name": "ok"},
            {"type": "function", "name": "f", "parameters": "{}"}
        ]));
        assert_eq!(e.param.as_deref(), Some("tools[1].parameters"));
        assert!(e.message.contains("JSON Schema object"), "{}", e.message);
        let e = error(json!([{"type": "function", "name": "bad name"}]));
        assert_eq!(e.param.as_deref(), Some("tools[0].name"));
        assert!(e.message.contains("1 to 64 characters"), "{}", e.message);
        let e = error(json!([{"type": "function", "name": "f", "strict": "yes"}]));
        assert_eq!(e.param.as_deref(), Some("tools[0].strict"));
    }

    #[test]
    fn a_tool_without_a_usable_type_is_named() {
        let e = error(json!([{"name": "f"}]));
        assert_eq!(e.param.as_deref(), Some("tools[0].type"));
        assert_eq!(e.code, "missing_required_parameter");
        let e = error(json!([{"type": 1}]));
        assert_eq!(e.param.as_deref(), Some("tools[0].type"));
        assert_eq!(error(json!(["f"])).param.as_deref(), Some("tools[0]"));
    }

    #[test]
    fn tool_choice_errors_name_their_field() {
        let f = [FunctionTool {
            name: "f".into(),
            description: None,
            parameters: None,
            strict: None,
        }];
        let param = |choice: Value| {
            parse_tool_choice(Some(choice), &f, false)
                .unwrap_err()
                .param
        };
        assert_eq!(
            param(json!({"type": "function"})).as_deref(),
            Some("tool_choice.name")
        );
        assert_eq!(
            param(json!({"type": "function", "name": 1})).as_deref(),
            Some("tool_choice.name")
        );
        assert_eq!(
            param(json!({"name": "f"})).as_deref(),
            Some("tool_choice.type")
        );
        let e = parse_tool_choice(Some(json!({"type": "file_search"})), &f, false).unwrap_err();
        assert_eq!(e.code, "unsupported_parameter");
        assert_eq!(
            parse_tool_choice(Some(json!({"type": "function", "name": "f"})), &f, false)
                .unwrap()
                .0,
            ToolChoice::Function("f".into())
        );
        assert_eq!(param(json!("maybe")).as_deref(), Some("tool_choice"));
        let none: [FunctionTool; 0] = [];
        let e = parse_tool_choice(Some(json!("required")), &none, false).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tool_choice"));
    }

    #[test]
    fn trusted_tools_are_mcp_servers_only() {
        let e = parse_tools(
            vec![json!({"type": "function", "name": "f"})],
            true,
            &mut Tools::default(),
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[0].type"));
    }
}
