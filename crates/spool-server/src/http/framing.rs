//! Checks on a request's framing that come before any route: a URI or a
//! header block too large to be a real client's, and a path whose percent
//! escapes do not decode to UTF-8. Each is answered in the OpenAI error
//! shape (414, 431, 400) rather than by the HTTP stack's bare status, so
//! every error a client can meet has one form.

use super::error::ApiError;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Longest request URI (path and query) spool reads.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most bytes of request headers (names and values) spool reads.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses requests whose framing no route could serve.
pub async fn check_framing(request: Request, next: Next) -> Response {
    match framing_error(&request) {
        Some(error) => error.into_response(),
        None => next.run(request).await,
    }
}

fn framing_error(request: &Request) -> Option<ApiError> {
    let uri = request.uri();
    let uri_len = uri.path().len() + uri.query().map_or(0, |q| q.len() + 1);
    if uri_len > MAX_URI_BYTES {
        return Some(ApiError {
            status: StatusCode::URI_TOO_LONG,
            ..ApiError::bad_request(
                format!(
                    "The request URI is {uri_len} bytes; at most {MAX_URI_BYTES} are accepted."
                ),
                None,
                Some("uri_too_long"),
            )
        });
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Some(ApiError {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ..ApiError::bad_request(
                format!(
                    "The request headers are {header_bytes} bytes; at most {MAX_HEADER_BYTES} are accepted."
                ),
                None,
                Some("headers_too_large"),
            )
        });
    }
    if !decodes_to_utf8(uri.path()) {
        return Some(ApiError::bad_request(
            "The request path does not decode to UTF-8 text (check its percent-escapes).",
            None,
            Some("invalid_path"),
        ));
    }
    None
}

/// Whether `path`'s percent-escapes decode to UTF-8. A `%` not followed by
/// two hex digits stands for itself, as routers read it.
fn decodes_to_utf8(path: &str) -> bool {
    if !path.contains('%') {
        return true;
    }
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    std::str::from_utf8(&decoded).is_ok()
}

#[cfg(test)]
mod tests {
    use super::decodes_to_utf8;

    #[test]
    fn percent_escapes_must_decode_to_utf8() {
        assert!(decodes_to_utf8("/v1/responses/resp_1"));
        assert!(decodes_to_utf8("/v1/x/%E2%82%AC"));
        assert!(decodes_to_utf8("/v1/x/100%"));
        assert!(!decodes_to_utf8("/v1/responses/%FF"));
        assert!(!decodes_to_utf8("/v1/x/%E2%82"));
    }
}
