//! The request's `tools` and `tool_choice`: tools the caller runs
//! (`function`, the functions of a `namespace`, `custom`, `local_shell`),
//! MCP servers spool calls (parsed in [`super::mcp`]), the hosted tools spool
//! cannot run (left out of what the model sees, or served by the MCP server
//! the operator maps to them), how the model may use them, and the echo of
//! each in the response object.
//!
//! The model sees every caller's tool as a function: a namespaced function
//! as `namespace__name`, a custom tool as a function of one string argument
//! `input`, `local_shell` as a function taking the command. Each such tool
//! has a [`ClientCallShape`] saying how its calls are shown to the caller.

use super::RequestError;
use super::deserialize::{deserialize_tagged, take_tag};
use super::mcp::McpToolParam;
use crate::tool::McpServerSpec;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Hosted tools of the Responses API that spool cannot run itself. Offered
/// by a client, each is served by the MCP server the operator maps to its
/// type, or else not offered to the model (and named in the response's
/// `tools_not_offered`).
pub const HOSTED_TOOL_TYPES: [&str; 6] = [
    "web_search",
    "web_search_preview",
    "file_search",
    "code_interpreter",
    "image_generation",
    "tool_search",
];

/// The name the model knows the tool `name` of the namespace `namespace`
/// by: function names cannot hold a dot, so the two are joined by `__`.
pub fn flat_tool_name(namespace: &str, name: &str) -> String {
    format!("{namespace}__{name}")
}

/// The function name the model is offered for `local_shell`.
pub const LOCAL_SHELL_FUNCTION: &str = "local_shell";

/// How the model's call of a caller's tool is shown to the caller, when it
/// is not a plain `function_call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCallShape {
    /// A function of a `namespace` tool: a `function_call` with `name` and
    /// `namespace`.
    Namespaced { namespace: String, name: String },
    /// A `custom` tool: a `custom_tool_call` whose `input` is the model's
    /// one string argument.
    Custom {
        namespace: Option<String>,
        name: String,
    },
    /// The `local_shell` tool: a `local_shell_call` with an `exec` action.
    LocalShell,
}

/// How the model may use tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    None,
    Auto,
    Required,
    /// Must call this function (or custom tool).
    Function(String),
    /// `allowed_tools` (or a choice of one MCP server): the model is
    /// offered only these of the tools, and must call one when `required`.
    Allowed(AllowedTools),
}

/// The tools an `allowed_tools` choice leaves the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedTools {
    /// Whether the model must call one of them (`mode: "required"`).
    pub required: bool,
    /// Function and custom tools, by the name the model knows them by.
    pub functions: Vec<String>,
    /// MCP servers by label, each with the one tool allowed of it, or all
    /// of its tools when `None`.
    pub mcp: Vec<(String, Option<String>)>,
}

impl AllowedTools {
    /// Whether a caller's function or custom tool is allowed.
    pub fn allows_function(&self, name: &str) -> bool {
        self.functions.iter().any(|f| f == name)
    }

    /// Whether the tool `tool` of the MCP server `server_label` is allowed.
    pub fn allows_mcp(&self, server_label: &str, tool: &str) -> bool {
        self.mcp
            .iter()
            .any(|(label, name)| label == server_label && name.as_deref().is_none_or(|n| n == tool))
    }
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
    /// How calls of the functions that are not plain functions are shown,
    /// by the name the model knows them by.
    pub(super) shapes: BTreeMap<String, ClientCallShape>,
    pub(super) mcp: Vec<McpServerSpec>,
    pub(super) echoed: Vec<Value>,
    /// The hosted tools offered by the caller that the model is not offered.
    pub(super) not_offered: Vec<String>,
}

/// One tool as the request gives it, by its `type`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ToolParam {
    Function(FunctionToolParam),
    Mcp(McpToolParam),
    Namespace(NamespaceToolParam),
    Custom(CustomToolParam),
    LocalShell {},
}

#[derive(Debug, Deserialize)]
struct NamespaceToolParam {
    name: FunctionName,
    /// Its tools: functions and custom tools (read one by one, for paths).
    tools: Vec<Map<String, Value>>,
}

/// A tool inside a namespace, by its `type`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum NamespacedToolParam {
    Function(FunctionToolParam),
    Custom(CustomToolParam),
}

#[derive(Debug, Deserialize)]
struct CustomToolParam {
    name: FunctionName,
    #[serde(default)]
    description: Option<String>,
    /// `{"type": "text"}` or a grammar: the model is only told of it.
    #[serde(default)]
    format: Option<Value>,
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
/// servers only. `hosted_servers` maps a hosted tool type to the MCP tool
/// (trusted, from the operator's config) that serves it.
pub(super) fn parse_tools(
    tools: Vec<Value>,
    trusted: bool,
    hosted_servers: &BTreeMap<String, Value>,
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
        if !trusted && HOSTED_TOOL_TYPES.contains(&tag.as_str()) {
            fields.insert("type".into(), json!(tag));
            let echo = Value::Object(fields);
            match hosted_servers.get(&tag) {
                Some(server) => {
                    let label = server.get("server_label");
                    let served = out
                        .mcp
                        .iter()
                        .any(|s| label.and_then(Value::as_str) == Some(s.server_label.as_str()));
                    // Two hosted types may be mapped to one server.
                    if !served {
                        let echoed = out.echoed.len();
                        parse_tools(vec![server.clone()], true, &BTreeMap::new(), out)?;
                        // The echo is the caller's tool, not the operator's server.
                        out.echoed.truncate(echoed);
                    }
                }
                None => out.not_offered.push(tag),
            }
            out.echoed.push(echo);
            continue;
        }
        let echo_fields = (!trusted).then(|| {
            let mut echo = fields.clone();
            echo.insert("type".into(), json!(tag));
            Value::Object(echo)
        });
        match deserialize_tagged::<ToolParam>(&tag, fields, &at)? {
            Some(ToolParam::Mcp(param)) => {
                let (spec, echo) = param.into_spec(&at, trusted)?;
                add_mcp(out, spec, echo, &at)?;
            }
            Some(ToolParam::Function(param)) if !trusted => {
                let echo = add_function(out, param, None, &at)?;
                out.echoed.push(echo);
            }
            Some(ToolParam::Custom(param)) if !trusted => {
                add_custom(out, param, None, &at)?;
                out.echoed.extend(echo_fields);
            }
            Some(ToolParam::LocalShell {}) if !trusted => {
                add_client_tool(
                    out,
                    FunctionTool {
                        name: LOCAL_SHELL_FUNCTION.to_owned(),
                        description: Some(
                            "Runs a shell command on the user's machine and returns its output."
                                .to_owned(),
                        ),
                        parameters: Some(local_shell_parameters()),
                        strict: None,
                    },
                    Some(ClientCallShape::LocalShell),
                    &at,
                )?;
                out.echoed.extend(echo_fields);
            }
            Some(ToolParam::Namespace(NamespaceToolParam {
                name: FunctionName(namespace),
                tools,
            })) if !trusted => {
                for (j, mut inner) in tools.into_iter().enumerate() {
                    let at = format!("{at}.tools[{j}]");
                    let tag = take_tag(&mut inner, &at, None)?;
                    match deserialize_tagged::<NamespacedToolParam>(&tag, inner, &at)? {
                        Some(NamespacedToolParam::Function(param)) => {
                            add_function(out, param, Some(&namespace), &at)?;
                        }
                        Some(NamespacedToolParam::Custom(param)) => {
                            add_custom(out, param, Some(&namespace), &at)?;
                        }
                        None => {
                            return Err(RequestError::unsupported(
                                format!("{at}.type"),
                                format!(
                                    "A namespace holds 'function' and 'custom' tools, not '{tag}'."
                                ),
                            ));
                        }
                    }
                }
                out.echoed.extend(echo_fields);
            }
            Some(
                ToolParam::Function(_)
                | ToolParam::Custom(_)
                | ToolParam::LocalShell {}
                | ToolParam::Namespace(_),
            )
            | None => {
                return Err(RequestError::unsupported(
                    format!("{at}.type"),
                    format!(
                        "Tools of type '{tag}' are not supported {}; 'function', 'namespace', 'custom', 'local_shell', 'mcp' and the hosted tools are.",
                        if trusted {
                            "in the operator's config"
                        } else {
                            "by this server"
                        }
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn add_mcp(
    out: &mut Tools,
    spec: McpServerSpec,
    echo: Value,
    at: &str,
) -> Result<(), RequestError> {
    if out.mcp.iter().any(|s| s.server_label == spec.server_label) {
        return Err(RequestError::invalid(
            format!("{at}.server_label"),
            format!("Two MCP servers are labelled '{}'.", spec.server_label),
        ));
    }
    out.mcp.push(spec);
    out.echoed.push(echo);
    Ok(())
}

/// Adds a function tool (of `namespace`, if in one); returns its echo.
fn add_function(
    out: &mut Tools,
    param: FunctionToolParam,
    namespace: Option<&str>,
    at: &str,
) -> Result<Value, RequestError> {
    let FunctionToolParam {
        name: FunctionName(name),
        description,
        parameters,
        strict,
    } = param;
    if let Some(JsonSchema(schema)) = &parameters {
        check_parameters(schema, &format!("{at}.parameters"))?;
    }
    let parameters = parameters.map(|JsonSchema(schema)| Value::Object(schema));
    let echo = json!({
        "type": "function",
        "name": name,
        "description": description,
        "parameters": parameters,
        "strict": strict,
    });
    let (model_name, shape) = match namespace {
        Some(namespace) => (
            flat_tool_name(namespace, &name),
            Some(ClientCallShape::Namespaced {
                namespace: namespace.to_owned(),
                name,
            }),
        ),
        None => (name, None),
    };
    add_client_tool(
        out,
        FunctionTool {
            name: model_name,
            description,
            parameters,
            strict,
        },
        shape,
        at,
    )?;
    Ok(echo)
}

/// Checks that a function's `parameters` describe an object, as the model
/// is asked for one: `type` (when given) is `"object"`, `properties` an
/// object and `required` a list of names.
fn check_parameters(schema: &Map<String, Value>, at: &str) -> Result<(), RequestError> {
    match schema.get("type") {
        None => {}
        Some(Value::String(t)) if t == "object" => {}
        Some(other) => {
            return Err(RequestError::invalid(
                format!("{at}.type"),
                format!(
                    "A function's parameters must be a JSON Schema of type 'object', got {other}."
                ),
            ));
        }
    }
    if let Some(properties) = schema.get("properties")
        && !properties.is_object()
    {
        return Err(RequestError::invalid(
            format!("{at}.properties"),
            "properties must be an object mapping each parameter to its schema.",
        ));
    }
    if let Some(required) = schema.get("required") {
        let names = required
            .as_array()
            .is_some_and(|r| r.iter().all(Value::is_string));
        if !names {
            return Err(RequestError::invalid(
                format!("{at}.required"),
                "required must be a list of parameter names.",
            ));
        }
    }
    Ok(())
}

/// Adds a custom tool: a function of one string argument, `input`.
fn add_custom(
    out: &mut Tools,
    param: CustomToolParam,
    namespace: Option<&str>,
    at: &str,
) -> Result<(), RequestError> {
    let CustomToolParam {
        name: FunctionName(name),
        description,
        format,
    } = param;
    // The model cannot be held to a grammar through a function: it is told
    // of it instead.
    let input_description = match format.as_ref().and_then(|f| f.get("definition")) {
        Some(Value::String(grammar)) => {
            format!("The tool's freeform input, following this grammar:\n{grammar}")
        }
        _ => "The tool's freeform input.".to_owned(),
    };
    let model_name = match namespace {
        Some(namespace) => flat_tool_name(namespace, &name),
        None => name.clone(),
    };
    add_client_tool(
        out,
        FunctionTool {
            name: model_name,
            description,
            parameters: Some(json!({
                "type": "object",
                "properties": {"input": {"type": "string", "description": input_description}},
                "required": ["input"],
                "additionalProperties": false,
            })),
            strict: None,
        },
        Some(ClientCallShape::Custom {
            namespace: namespace.map(str::to_owned),
            name,
        }),
        at,
    )
}

/// Adds a tool the caller runs, under a name no other tool has.
fn add_client_tool(
    out: &mut Tools,
    tool: FunctionTool,
    shape: Option<ClientCallShape>,
    at: &str,
) -> Result<(), RequestError> {
    if !is_identifier(&tool.name) {
        return Err(RequestError::invalid(
            format!("{at}.name"),
            format!(
                "The tool name '{}' (a namespace and a name joined by '__') is longer than 64 characters.",
                tool.name
            ),
        ));
    }
    if out.functions.iter().any(|f| f.name == tool.name) {
        return Err(RequestError::invalid(
            format!("{at}.name"),
            format!("Two tools are named '{}'.", tool.name),
        ));
    }
    if let Some(shape) = shape {
        out.shapes.insert(tool.name.clone(), shape);
    }
    out.functions.push(tool);
    Ok(())
}

/// The arguments the model gives `local_shell`: those of its `exec` action.
fn local_shell_parameters() -> Value {
    json!({
        "type": "object",
        "properties": {
            "command": {"type": "array", "items": {"type": "string"},
                        "description": "The command and its arguments."},
            "working_directory": {"type": "string"},
            "timeout_ms": {"type": "integer"},
        },
        "required": ["command"],
    })
}

/// `tool_choice` given as an object, by its `type`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ToolChoiceParam {
    Function {
        name: String,
    },
    Custom {
        name: String,
    },
    Mcp {
        server_label: String,
        #[serde(default)]
        name: Option<String>,
    },
    AllowedTools {
        #[serde(default)]
        mode: Option<AllowedMode>,
        tools: Vec<Map<String, Value>>,
    },
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
enum AllowedMode {
    None,
    Auto,
    Required,
}

/// One tool of an `allowed_tools` choice, by its `type`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AllowedToolParam {
    Function {
        name: String,
    },
    Custom {
        name: String,
    },
    Mcp {
        server_label: String,
        #[serde(default)]
        name: Option<String>,
    },
}

/// Parses `tool_choice` against the tools offered (the function tools, and
/// the labels of the MCP servers); returns it with its echo (as given, an
/// `allowed_tools` choice with its `mode` made explicit).
pub(super) fn parse_tool_choice(
    choice: Option<Value>,
    tools: &[FunctionTool],
    mcp_labels: &[&str],
) -> Result<(ToolChoice, Value), RequestError> {
    let Some(mut choice) = choice else {
        return Ok((ToolChoice::Auto, json!("auto")));
    };
    let unsupported = || {
        RequestError::unsupported(
            "tool_choice",
            "tool_choice must be 'none', 'auto', 'required', {\"type\":\"function\"|\"custom\",\"name\":…}, {\"type\":\"mcp\",\"server_label\":…} or {\"type\":\"allowed_tools\",…}.",
        )
    };
    let function = |name: String, at: &str| {
        if tools.iter().any(|t| t.name == name) {
            Ok(name)
        } else {
            Err(RequestError::invalid(
                at,
                format!("tool_choice names tool '{name}', which is not in tools."),
            ))
        }
    };
    let server = |label: String, at: &str| {
        if mcp_labels.contains(&label.as_str()) {
            Ok(label)
        } else {
            Err(RequestError::invalid(
                at,
                format!("tool_choice names MCP server '{label}', which is not in tools."),
            ))
        }
    };
    let parsed = match &mut choice {
        Value::String(s) => match s.as_str() {
            "none" => ToolChoice::None,
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            other => {
                return Err(RequestError::invalid(
                    "tool_choice",
                    format!(
                        "Invalid tool_choice '{other}': expected none, auto, required or a tool."
                    ),
                ));
            }
        },
        Value::Object(given) => {
            let mut fields = given.clone();
            let tag = take_tag(&mut fields, "tool_choice", None)?;
            match deserialize_tagged::<ToolChoiceParam>(&tag, fields, "tool_choice")? {
                Some(ToolChoiceParam::Function { name } | ToolChoiceParam::Custom { name }) => {
                    ToolChoice::Function(function(name, "tool_choice")?)
                }
                // One server's tools, one of which must be called.
                Some(ToolChoiceParam::Mcp { server_label, name }) => {
                    ToolChoice::Allowed(AllowedTools {
                        required: true,
                        functions: Vec::new(),
                        mcp: vec![(server(server_label, "tool_choice")?, name)],
                    })
                }
                Some(ToolChoiceParam::AllowedTools {
                    mode,
                    tools: listed,
                }) => {
                    let mode = mode.unwrap_or(AllowedMode::Auto);
                    given.insert("mode".into(), json!(mode));
                    allowed_tools(mode, listed, function, server)?
                }
                None => return Err(unsupported()),
            }
        }
        _ => return Err(unsupported()),
    };
    // `required` is met by a call of any tool, MCP tools included; a named
    // function must be one of the function tools.
    let no_tools = match parsed {
        ToolChoice::Required => tools.is_empty() && mcp_labels.is_empty(),
        ToolChoice::Function(_) => tools.is_empty(),
        ToolChoice::None | ToolChoice::Auto | ToolChoice::Allowed(_) => false,
    };
    if no_tools {
        return Err(RequestError::invalid(
            "tool_choice",
            "tool_choice requires a tool call, but no tools were given.",
        ));
    }
    Ok((parsed, choice))
}

/// The tools of an `allowed_tools` choice, each checked against the
/// request's tools.
fn allowed_tools(
    mode: AllowedMode,
    listed: Vec<Map<String, Value>>,
    function: impl Fn(String, &str) -> Result<String, RequestError>,
    server: impl Fn(String, &str) -> Result<String, RequestError>,
) -> Result<ToolChoice, RequestError> {
    if listed.is_empty() {
        return Err(RequestError::invalid(
            "tool_choice.tools",
            "tool_choice.tools must list at least one tool.",
        ));
    }
    let mut allowed = AllowedTools {
        required: matches!(mode, AllowedMode::Required),
        functions: Vec::new(),
        mcp: Vec::new(),
    };
    for (index, mut fields) in listed.into_iter().enumerate() {
        let at = format!("tool_choice.tools[{index}]");
        let tag = take_tag(&mut fields, &at, None)?;
        match deserialize_tagged::<AllowedToolParam>(&tag, fields, &at)? {
            Some(AllowedToolParam::Function { name } | AllowedToolParam::Custom { name }) => {
                allowed
                    .functions
                    .push(function(name, &format!("{at}.name"))?);
            }
            Some(AllowedToolParam::Mcp { server_label, name }) => {
                let label = server(server_label, &format!("{at}.server_label"))?;
                allowed.mcp.push((label, name));
            }
            None => {
                return Err(RequestError::unsupported(
                    format!("{at}.type"),
                    format!(
                        "Allowed tools of type '{tag}' are not supported: list function, custom or mcp tools."
                    ),
                ));
            }
        }
    }
    // No call may be made: the tools need not even be shown.
    if matches!(mode, AllowedMode::None) {
        return Ok(ToolChoice::None);
    }
    Ok(ToolChoice::Allowed(allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(tools: Value) -> RequestError {
        let Value::Array(tools) = tools else {
            panic!("an array")
        };
        parse_tools(tools, false, &BTreeMap::new(), &mut Tools::default()).unwrap_err()
    }

    #[test]
    fn a_bad_field_of_a_function_tool_is_named_by_its_path() {
        let e = error(json!([
            {"type": "function", "name": "ok"},
            {"type": "function", "name": "f", "parameters": "{}"}
        ]));
        assert_eq!(e.param.as_deref(), Some("tools[1].parameters"));
        assert!(e.message.contains("JSON Schema object"), "{}", e.message);
        for (parameters, param) in [
            (json!({"type": "string"}), "tools[0].parameters.type"),
            (
                json!({"type": "object", "properties": []}),
                "tools[0].parameters.properties",
            ),
            (
                json!({"type": "object", "required": "a"}),
                "tools[0].parameters.required",
            ),
        ] {
            let e = error(json!([{"type": "function", "name": "f", "parameters": parameters}]));
            assert_eq!(e.param.as_deref(), Some(param), "{}", e.message);
        }
        let e = error(json!([
            {"type": "function", "name": "f"},
            {"type": "function", "name": "f"}
        ]));
        assert_eq!(e.param.as_deref(), Some("tools[1].name"));
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
        let param = |choice: Value| parse_tool_choice(Some(choice), &f, &[]).unwrap_err().param;
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
        let e = parse_tool_choice(Some(json!({"type": "file_search"})), &f, &[]).unwrap_err();
        assert_eq!(e.code, "unsupported_parameter");
        assert_eq!(
            parse_tool_choice(Some(json!({"type": "function", "name": "f"})), &f, &[])
                .unwrap()
                .0,
            ToolChoice::Function("f".into())
        );
        assert_eq!(param(json!("maybe")).as_deref(), Some("tool_choice"));
        let none: [FunctionTool; 0] = [];
        let e = parse_tool_choice(Some(json!("required")), &none, &[]).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tool_choice"));
    }

    #[test]
    fn allowed_tools_name_tools_of_the_request_and_default_to_auto() {
        let f = [FunctionTool {
            name: "f".into(),
            description: None,
            parameters: None,
            strict: None,
        }];
        let (choice, echo) = parse_tool_choice(
            Some(json!({"type": "allowed_tools", "tools": [
                {"type": "function", "name": "f"},
                {"type": "mcp", "server_label": "calc", "name": "add"},
            ]})),
            &f,
            &["calc"],
        )
        .unwrap();
        let ToolChoice::Allowed(allowed) = choice else {
            panic!("allowed tools: {choice:?}")
        };
        assert!(!allowed.required);
        assert!(allowed.allows_function("f") && !allowed.allows_function("g"));
        assert!(allowed.allows_mcp("calc", "add") && !allowed.allows_mcp("calc", "sub"));
        assert_eq!(echo["mode"], "auto");
        // `mode: none` allows no call at all.
        let (choice, _) = parse_tool_choice(
            Some(json!({"type": "allowed_tools", "mode": "none", "tools": [{"type": "function", "name": "f"}]})),
            &f,
            &[],
        )
        .unwrap();
        assert_eq!(choice, ToolChoice::None);
        // One MCP server's tools, one of which must be called.
        let (choice, _) = parse_tool_choice(
            Some(json!({"type": "mcp", "server_label": "calc"})),
            &f,
            &["calc"],
        )
        .unwrap();
        assert!(
            matches!(choice, ToolChoice::Allowed(a) if a.required && a.allows_mcp("calc", "any"))
        );
        let param = |choice: Value| {
            parse_tool_choice(Some(choice), &f, &["calc"])
                .unwrap_err()
                .param
        };
        assert_eq!(
            param(json!({"type": "allowed_tools", "tools": []})).as_deref(),
            Some("tool_choice.tools")
        );
        assert_eq!(
            param(json!({"type": "allowed_tools", "tools": [{"type": "function", "name": "g"}]}))
                .as_deref(),
            Some("tool_choice.tools[0].name")
        );
        assert_eq!(
            param(json!({"type": "allowed_tools", "tools": [{"type": "file_search"}]})).as_deref(),
            Some("tool_choice.tools[0].type")
        );
        assert_eq!(
            param(json!({"type": "mcp", "server_label": "other"})).as_deref(),
            Some("tool_choice")
        );
    }

    #[test]
    fn trusted_tools_are_mcp_servers_only() {
        let e = parse_tools(
            vec![json!({"type": "function", "name": "f"})],
            true,
            &BTreeMap::new(),
            &mut Tools::default(),
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[0].type"));
    }

    fn parsed(tools: Value, hosted: &BTreeMap<String, Value>) -> Tools {
        let Value::Array(tools) = tools else {
            panic!("an array")
        };
        let mut out = Tools::default();
        parse_tools(tools, false, hosted, &mut out).unwrap();
        out
    }

    #[test]
    fn a_namespace_is_flattened_and_custom_and_local_shell_are_functions() {
        let tools = json!([
            {"type": "namespace", "name": "multi_agent_v1", "description": "agents",
             "tools": [{"type": "function", "name": "spawn_agent",
                        "parameters": {"type": "object"}}]},
            {"type": "custom", "name": "apply_patch",
             "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"}},
            {"type": "local_shell"}
        ]);
        let out = parsed(tools.clone(), &BTreeMap::new());
        let names: Vec<&str> = out.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["multi_agent_v1__spawn_agent", "apply_patch", "local_shell"]
        );
        assert_eq!(
            out.shapes["multi_agent_v1__spawn_agent"],
            ClientCallShape::Namespaced {
                namespace: "multi_agent_v1".into(),
                name: "spawn_agent".into()
            }
        );
        assert!(matches!(
            out.shapes["apply_patch"],
            ClientCallShape::Custom { .. }
        ));
        assert_eq!(out.shapes["local_shell"], ClientCallShape::LocalShell);
        let custom = &out.functions[1].parameters.as_ref().unwrap();
        assert_eq!(custom["required"], json!(["input"]));
        assert!(
            custom["properties"]["input"]["description"]
                .as_str()
                .unwrap()
                .contains("start: x")
        );
        // The echo is what the caller sent.
        assert_eq!(out.echoed[0]["type"], "namespace");
        assert_eq!(out.echoed[1], tools[1]);
        assert_eq!(out.echoed[2], tools[2]);
        assert!(out.not_offered.is_empty());
    }

    #[test]
    fn hosted_tools_are_left_out_unless_an_mcp_server_serves_them() {
        let tools = json!([
            {"type": "web_search", "external_web_access": false},
            {"type": "file_search", "vector_store_ids": ["vs_1"]},
            {"type": "function", "name": "f"}
        ]);
        let out = parsed(tools.clone(), &BTreeMap::new());
        assert_eq!(out.not_offered, ["web_search", "file_search"]);
        assert_eq!(out.functions.len(), 1);
        assert_eq!(out.echoed[0], tools[0]);
        assert_eq!(out.echoed.len(), 3);
        let hosted = BTreeMap::from([(
            "web_search".to_owned(),
            json!({"type": "mcp", "server_label": "search",
                   "server_url": "https://search.example/mcp"}),
        )]);
        let out = parsed(tools.clone(), &hosted);
        assert_eq!(out.not_offered, ["file_search"]);
        assert_eq!(out.mcp.len(), 1);
        assert_eq!(out.mcp[0].server_label, "search");
        assert_eq!(out.echoed[0], tools[0]);
        assert_eq!(out.echoed.len(), 3);
    }

    #[test]
    fn bad_namespaced_and_custom_tools_are_named() {
        let e = error(json!([{"type": "namespace", "name": "ns",
            "tools": [{"type": "function", "name": "ok"}, {"type": "mcp"}]}]));
        assert_eq!(e.param.as_deref(), Some("tools[0].tools[1].type"));
        let e = error(json!([{"type": "custom"}]));
        assert_eq!(e.param.as_deref(), Some("tools[0].name"));
        let long = "n".repeat(40);
        let e = error(json!([{"type": "namespace", "name": long,
            "tools": [{"type": "function", "name": long}]}]));
        assert_eq!(e.param.as_deref(), Some("tools[0].tools[0].name"));
        let e =
            error(json!([{"type": "function", "name": "local_shell"}, {"type": "local_shell"}]));
        assert_eq!(e.param.as_deref(), Some("tools[1].name"));
        let e = error(json!([{"type": "computer_use_preview"}]));
        assert_eq!(e.param.as_deref(), Some("tools[0].type"));
    }
}
