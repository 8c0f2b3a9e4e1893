//! Who may reach the API from a browser, checked before any route.
//!
//! spool has no API keys (yet), so on a developer's machine the threat is a
//! web page the developer visits:
//! - **DNS rebinding**: a page whose name resolves to 127.0.0.1 calls spool
//!   as a same-origin server. While spool listens on a loopback address
//!   only loopback `Host` names (`localhost`, `127.0.0.1`, `[::1]`, …) and
//!   the operator's allowed hosts are served; anything else is a 403.
//! - **Cross-site requests**: a browser marks every cross-origin request
//!   (and every WebSocket) with `Origin`. One carrying an origin the
//!   operator did not allow is a 403 before any work, so a page can neither
//!   start a run with a form post nor hijack a WebSocket. Clients outside
//!   browsers send no `Origin` and are not affected.
//! - **CORS** is off unless origins are configured; then the
//!   [`cors_layer`] answers preflights (`OPTIONS`) and adds the headers a
//!   browser needs to read answers and streams.
//!
//! That request bodies must be `application/json` (a form cannot send
//! that without a preflight) is checked where bodies are read
//! (`extract.rs`).

use super::error::ApiError;
use super::runs::RUN_ID_HEADER;
use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

/// What the access checks allow; built once at start-up.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    /// Only loopback hosts (and `allowed_hosts`) may be named in `Host`:
    /// spool listens on a loopback address and has no keys.
    pub loopback_hosts_only: bool,
    /// Host names accepted beside loopback ones (lower-case, no port).
    pub allowed_hosts: Vec<String>,
    /// Browser origins that may call the API (`*`: any); empty: none.
    pub allowed_origins: Vec<String>,
}

impl AccessPolicy {
    fn any_origin(&self) -> bool {
        self.allowed_origins.iter().any(|o| o == "*")
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.any_origin()
            || self
                .allowed_origins
                .iter()
                .any(|o| o.eq_ignore_ascii_case(origin.trim_end_matches('/')))
    }

    fn host_allowed(&self, authority: &str) -> bool {
        let host = host_name(authority).to_ascii_lowercase();
        is_loopback_host(&host)
            || self
                .allowed_hosts
                .iter()
                .any(|h| host_name(h).eq_ignore_ascii_case(&host))
    }

    /// The answer refusing `request`, if it is refused.
    fn refusal(&self, request: &Request) -> Option<ApiError> {
        if self.loopback_hosts_only {
            // HTTP/2 carries the authority in the URI, HTTP/1.1 in `Host`.
            let authority = request
                .headers()
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| request.uri().authority().map(|a| a.as_str()));
            if let Some(authority) = authority
                && !self.host_allowed(authority)
            {
                return Some(ApiError::forbidden(
                    format!(
                        "Host '{authority}' is not served: this spool listens on a loopback address without API keys and answers only requests addressed to localhost (against DNS rebinding). Add the name to SPOOL_ALLOWED_HOSTS if a proxy forwards it."
                    ),
                    "host_not_allowed",
                ));
            }
        }
        if let Some(origin) = request.headers().get(ORIGIN) {
            let origin = origin.to_str().unwrap_or("(not text)");
            if !self.origin_allowed(origin) {
                return Some(ApiError::forbidden(
                    format!(
                        "Requests from the browser origin '{origin}' are not allowed; the operator allows origins with SPOOL_CORS_ALLOWED_ORIGINS."
                    ),
                    "origin_not_allowed",
                ));
            }
        }
        None
    }
}

/// The middleware: refuses a request a browser was tricked into sending.
pub async fn check_access(
    State(policy): State<Arc<AccessPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    match policy.refusal(&request) {
        Some(error) => error.into_response(),
        None => next.run(request).await,
    }
}

/// The CORS layer for the allowed origins, or `None` when none are: then
/// no CORS header is ever sent.
pub fn cors_layer(policy: &AccessPolicy) -> Option<CorsLayer> {
    if policy.allowed_origins.is_empty() {
        return None;
    }
    let origins = if policy.any_origin() {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            policy
                .allowed_origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            // The SDKs send their own headers (`x-stainless-*`,
            // `openai-beta`, `authorization`): whatever the preflight
            // names is allowed.
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers([
                HeaderName::from_static(RUN_ID_HEADER),
                axum::http::header::RETRY_AFTER,
            ])
            .max_age(Duration::from_secs(3600)),
    )
}

/// The host of an authority (`host[:port]`, `[v6]:port`).
fn host_name(authority: &str) -> &str {
    let authority = authority.trim();
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// `localhost`, a name under `.localhost` (which resolves to loopback by
/// RFC 6761 and never to a page's server), or a loopback IP.
fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_with_or_without_ports() {
        for host in [
            "localhost",
            "localhost:8321",
            "LOCALHOST:1",
            "127.0.0.1:8321",
            "127.1.2.3",
            "[::1]:8321",
            "[::1]",
            "app.localhost:3000",
            "localhost.",
        ] {
            assert!(
                is_loopback_host(&host_name(host).to_ascii_lowercase()),
                "{host}"
            );
        }
        for host in [
            "evil.example",
            "evil.example:8321",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "10.0.0.1",
            "[::2]",
            "",
        ] {
            assert!(
                !is_loopback_host(&host_name(host).to_ascii_lowercase()),
                "{host}"
            );
        }
    }

    #[test]
    fn origins_match_without_trailing_slash_or_case() {
        let policy = AccessPolicy {
            allowed_origins: vec!["https://app.example.com".into()],
            ..AccessPolicy::default()
        };
        assert!(policy.origin_allowed("https://app.example.com"));
        assert!(policy.origin_allowed("https://APP.example.com/"));
        assert!(!policy.origin_allowed("https://app.example.com.evil"));
        assert!(!policy.origin_allowed("null"));
        assert!(!AccessPolicy::default().origin_allowed("http://localhost:3000"));
    }
}
