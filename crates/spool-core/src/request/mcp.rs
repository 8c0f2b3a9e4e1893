//! `mcp` tools: the MCP servers a run may call, as [`McpServerSpec`]s, and
//! their echo (without headers, which may carry credentials).
//!
//! Only the operator's (trusted) config may start a local server with
//! `command`; a request names an `http(s)` URL.

use super::RequestError;
use super::deserialize::deserialize_at;
use super::tools::is_identifier;
use crate::tool::{ApprovalPolicy, McpServerSpec, McpTransport};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt;

/// An `mcp` tool as the request gives it.
#[derive(Debug, Deserialize)]
pub(super) struct McpToolParam {
    server_label: ServerLabel,
    #[serde(default)]
    server_url: Option<HttpUrl>,
    /// Read only once the source is known to be trusted: a request may not
    /// start a command, whatever its form.
    #[serde(default)]
    command: Option<Value>,
    #[serde(default)]
    connector_id: Option<Value>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    allowed_tools: Option<ToolNames>,
    #[serde(default)]
    require_approval: Option<RequireApproval>,
}

/// An MCP server's label: 1 to 64 characters of `a-z A-Z 0-9 _ -`.
#[derive(Debug)]
struct ServerLabel(String);

/// An `http://` or `https://` URL, its scheme in lower case.
#[derive(Debug)]
struct HttpUrl(String);

/// Tool names, as a list or as `{"tool_names": […]}`.
#[derive(Debug)]
struct ToolNames(Vec<String>);

/// `require_approval`: `"always"`, `"never"`, or `{"never": <tool names>}`.
#[derive(Debug)]
struct RequireApproval(ApprovalPolicy);

impl McpToolParam {
    /// The server spec of the tool at `at`, with its echo.
    pub(super) fn into_spec(
        self,
        at: &str,
        trusted: bool,
    ) -> Result<(McpServerSpec, Value), RequestError> {
        let McpToolParam {
            server_label: ServerLabel(server_label),
            server_url,
            command,
            connector_id,
            headers,
            allowed_tools,
            require_approval,
        } = self;
        if connector_id.is_some_and(|c| !c.is_null()) {
            return Err(RequestError::unsupported(
                format!("{at}.connector_id"),
                "Connectors are not supported by this server; give a server_url.",
            ));
        }
        let command = command.filter(|c| !c.is_null());
        let transport = match (server_url, command) {
            (_, Some(_)) if !trusted => {
                return Err(RequestError::unsupported(
                    format!("{at}.command"),
                    "Only MCP servers in the server's config file may be started as commands; give a server_url.",
                ));
            }
            (Some(HttpUrl(url)), None) => McpTransport::Http {
                url,
                headers: headers.unwrap_or_default(),
            },
            (None, Some(command)) => {
                let at = format!("{at}.command");
                let command: Vec<String> = deserialize_at(command, &at)?;
                if command.is_empty() {
                    return Err(RequestError::invalid(at, "command must not be empty."));
                }
                McpTransport::Stdio { command }
            }
            (Some(_), Some(_)) => {
                return Err(RequestError::invalid(
                    format!("{at}.command"),
                    "An MCP server is reached by server_url or started by command, not both.",
                ));
            }
            (None, None) => return Err(RequestError::missing(format!("{at}.server_url"))),
        };
        let allowed_tools = allowed_tools.map(|ToolNames(names)| names);
        let require_approval = require_approval.map_or(ApprovalPolicy::Always, |r| r.0);
        // Headers may carry credentials: they are not echoed back.
        let echo = json!({
            "type": "mcp",
            "server_label": server_label,
            "server_url": match &transport {
                McpTransport::Http { url, .. } => Value::String(url.clone()),
                McpTransport::Stdio { .. } => Value::Null,
            },
            "allowed_tools": allowed_tools,
            "headers": null,
            "require_approval": match &require_approval {
                ApprovalPolicy::Always => json!("always"),
                ApprovalPolicy::Never => json!("never"),
                ApprovalPolicy::AllExcept(free) => json!({"never": {"tool_names": free}}),
            },
        });
        Ok((
            McpServerSpec {
                server_label,
                transport,
                allowed_tools,
                require_approval,
                trusted,
            },
            echo,
        ))
    }
}

impl<'de> Deserialize<'de> for ServerLabel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let label = String::deserialize(deserializer)?;
        if is_identifier(&label) {
            Ok(ServerLabel(label))
        } else {
            Err(de::Error::custom(
                "server_label must be 1 to 64 characters of a-z, A-Z, 0-9, '_' and '-'",
            ))
        }
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let url = String::deserialize(deserializer)?;
        // Schemes are case-insensitive (RFC 3986 §3.1): `HTTPS://` is
        // `https://`, and is compared with the allow-list as such.
        let scheme = url.split_once("://").map(|(scheme, _)| scheme);
        if let Some(scheme) =
            scheme.filter(|s| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"))
        {
            let rest = &url[scheme.len()..];
            Ok(HttpUrl(format!("{}{rest}", scheme.to_ascii_lowercase())))
        } else {
            Err(de::Error::custom(
                "server_url must be an http:// or https:// URL",
            ))
        }
    }
}

impl<'de> Deserialize<'de> for ToolNames {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ToolNamesVisitor;

        impl<'de> Visitor<'de> for ToolNamesVisitor {
            type Value = ToolNames;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of tool names or {\"tool_names\": […]}")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ToolNames, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element()? {
                    names.push(name);
                }
                Ok(ToolNames(names))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ToolNames, A::Error> {
                let mut names = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "tool_names" {
                        names = Some(map.next_value()?);
                    } else {
                        // Other filters (e.g. `read_only`) are not applied.
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                names
                    .map(ToolNames)
                    .ok_or_else(|| de::Error::missing_field("tool_names"))
            }
        }

        deserializer.deserialize_any(ToolNamesVisitor)
    }
}

impl<'de> Deserialize<'de> for RequireApproval {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RequireApprovalVisitor;

        impl<'de> Visitor<'de> for RequireApprovalVisitor {
            type Value = RequireApproval;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("'always', 'never' or {\"never\": {\"tool_names\": […]}}")
            }

            fn visit_str<E: de::Error>(self, policy: &str) -> Result<RequireApproval, E> {
                match policy {
                    "always" => Ok(RequireApproval(ApprovalPolicy::Always)),
                    "never" => Ok(RequireApproval(ApprovalPolicy::Never)),
                    other => Err(de::Error::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RequireApproval, A::Error> {
                let mut policy = ApprovalPolicy::Always;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "never" {
                        let ToolNames(free) = map.next_value()?;
                        policy = ApprovalPolicy::AllExcept(free);
                    } else {
                        // `always` lists what needs approval, which every
                        // tool not under `never` does anyway.
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(RequireApproval(policy))
            }
        }

        deserializer.deserialize_any(RequireApprovalVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tools::{Tools, parse_tools};
    use super::*;

    fn parse(tool: Value, trusted: bool) -> Result<Tools, RequestError> {
        let mut tools = Tools::default();
        parse_tools(vec![tool], trusted, &Default::default(), &mut tools).map(|()| tools)
    }

    fn param(tool: Value) -> Option<String> {
        parse(tool, false).unwrap_err().param
    }

    #[test]
    fn an_upper_case_scheme_is_normalised_not_refused() {
        let tools = parse(
            json!({"type": "mcp", "server_label": "s", "server_url": "HTTPS://h.example/mcp"}),
            false,
        )
        .unwrap();
        let McpTransport::Http { url, .. } = &tools.mcp[0].transport else {
            panic!("not an HTTP server")
        };
        assert_eq!(url, "https://h.example/mcp");
        assert_eq!(
            param(json!({"type": "mcp", "server_label": "s", "server_url": "ftp://h/"})).as_deref(),
            Some("tools[0].server_url")
        );
    }

    #[test]
    fn nested_errors_are_named_by_their_full_path() {
        let base = json!({"type": "mcp", "server_label": "s", "server_url": "http://h/"});
        let with = |key: &str, value: Value| {
            let mut tool = base.clone();
            tool[key] = value;
            tool
        };
        assert_eq!(
            param(with("allowed_tools", json!(["a", 2]))).as_deref(),
            Some("tools[0].allowed_tools[1]")
        );
        assert_eq!(
            param(with("allowed_tools", json!({"tool_names": ["a", 2]}))).as_deref(),
            Some("tools[0].allowed_tools.tool_names[1]")
        );
        assert_eq!(
            param(with("allowed_tools", json!({}))).as_deref(),
            Some("tools[0].allowed_tools.tool_names")
        );
        assert_eq!(
            param(with(
                "require_approval",
                json!({"never": {"tool_names": [true]}})
            ))
            .as_deref(),
            Some("tools[0].require_approval.never.tool_names[0]")
        );
        let e = parse(with("require_approval", json!("sometimes")), false).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[0].require_approval"));
        assert!(e.message.contains("{\"never\""), "{}", e.message);
        assert_eq!(
            param(with("headers", json!({"Authorization": 1}))).as_deref(),
            Some("tools[0].headers.Authorization")
        );
        assert_eq!(
            param(with("server_url", json!("ftp://h/"))).as_deref(),
            Some("tools[0].server_url")
        );
        assert_eq!(
            param(with("server_label", json!("a b"))).as_deref(),
            Some("tools[0].server_label")
        );
        assert_eq!(
            param(with("connector_id", json!("c"))).as_deref(),
            Some("tools[0].connector_id")
        );
    }

    #[test]
    fn only_trusted_tools_start_commands() {
        let command = json!({"type": "mcp", "server_label": "c", "command": ["srv", "--stdio"]});
        let e = parse(command.clone(), false).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[0].command"));
        assert_eq!(e.code, "unsupported_parameter");
        let tools = parse(command, true).unwrap();
        assert_eq!(
            tools.mcp[0].transport,
            McpTransport::Stdio {
                command: vec!["srv".into(), "--stdio".into()]
            }
        );
        assert!(tools.mcp[0].trusted);
        assert_eq!(tools.echoed[0]["server_url"], Value::Null);
        let e = parse(
            json!({"type": "mcp", "server_label": "c", "command": ["a", 1]}),
            true,
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[0].command[1]"));
        let e = parse(
            json!({"type": "mcp", "server_label": "c", "command": []}),
            true,
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools[0].command"));
    }

    #[test]
    fn require_approval_takes_its_three_forms() {
        let policy = |r: Value| {
            let tool = json!({"type": "mcp", "server_label": "s", "server_url": "http://h/",
                "require_approval": r});
            parse(tool, false).unwrap().mcp.remove(0).require_approval
        };
        assert_eq!(policy(json!("never")), ApprovalPolicy::Never);
        assert_eq!(policy(json!("always")), ApprovalPolicy::Always);
        assert_eq!(policy(Value::Null), ApprovalPolicy::Always);
        assert_eq!(
            policy(json!({"never": ["a"], "always": {"tool_names": ["b"]}})),
            ApprovalPolicy::AllExcept(vec!["a".into()])
        );
    }
}
