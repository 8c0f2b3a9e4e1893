//! Request extractors that fail with [`ApiError`]s instead of plain text.
//!
//! [`JsonBody`] takes bodies sent as `application/json` only (415 else: a
//! browser page cannot send that cross-origin without a CORS preflight, so
//! a form post or a `text/plain` fetch never starts a run), reads the body
//! under the configured size limit (413 past it)
//! and names the offending field of a type error by its path, e.g.
//! `input[0].content`. [`QueryPairs`] hands handlers the raw query pairs so
//! each parameter is parsed with its own clear error.

use super::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use bytes::Bytes;
use serde::de::DeserializeOwned;

/// A JSON request body.
pub struct JsonBody<T>(pub T);

/// The body limit, stored in request extensions by the router so the 413
/// message can name it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req.headers().get(CONTENT_TYPE);
        if !content_type.is_some_and(is_json) {
            let shown = content_type.map(|t| t.to_str().unwrap_or("(not text)"));
            return Err(ApiError::unsupported_media_type(shown));
        }
        let limit = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large(limit)
            } else {
                ApiError::bad_request(rejection.body_text(), None, None)
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request(
                "The request body is empty; send a JSON object.",
                None,
                Some("invalid_json"),
            ));
        }
        // serde would read a struct from a JSON array too; the API takes
        // objects only.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::bad_request(
                "The request body must be a JSON object.",
                None,
                Some("invalid_json"),
            ));
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if !inner.is_data() {
                return ApiError::bad_request(
                    format!("We could not parse the JSON body of your request: {inner}."),
                    None,
                    Some("invalid_json"),
                );
            }
            // serde names a missing field only in its message; the param
            // is the field's own path, not its parent's.
            let message = inner.to_string();
            match missing_field(&message) {
                Some(field) => {
                    let param = match path.as_str() {
                        "." => field.to_owned(),
                        parent => format!("{parent}.{field}"),
                    };
                    ApiError::bad_request(
                        format!("Missing required parameter: '{param}'."),
                        Some(&param),
                        Some("missing_required_parameter"),
                    )
                }
                None => ApiError::bad_request(
                    format!("Invalid value for '{path}': {message}."),
                    Some(&path),
                    Some("invalid_type"),
                ),
            }
        })?;
        // One JSON document and nothing after it: trailing bytes are a
        // malformed body, not something to ignore.
        de.end().map_err(|e| {
            ApiError::bad_request(
                format!("We could not parse the JSON body of your request: {e}."),
                None,
                Some("invalid_json"),
            )
        })?;
        Ok(Self(value))
    }
}

/// Whether a `Content-Type` is JSON: `application/json` or a
/// `application/…+json` type, with any parameters (`charset=utf-8`).
fn is_json(content_type: &HeaderValue) -> bool {
    let Ok(text) = content_type.to_str() else {
        return false;
    };
    let essence = text.split(';').next().unwrap_or("").trim();
    let Some(subtype) = essence
        .get(..12)
        .filter(|t| t.eq_ignore_ascii_case("application/"))
        .map(|_| &essence[12..])
    else {
        return false;
    };
    subtype.eq_ignore_ascii_case("json")
        || subtype
            .len()
            .checked_sub(5)
            .and_then(|i| subtype.get(i..))
            .is_some_and(|suffix| suffix.eq_ignore_ascii_case("+json"))
}

/// The field a serde "missing field `x`" message names.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split_once('`').map(|(field, _)| field)
}

/// The query string as `(name, value)` pairs, in order.
pub struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// The last value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter: `true`/`false` (also `1`/`0`).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.get(name)
            .map(|v| match v {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                other => Err(ApiError::bad_request(
                    format!("Invalid value for '{name}': expected true or false, got '{other}'."),
                    Some(name),
                    Some("invalid_value"),
                )),
            })
            .transpose()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map(|Query(pairs)| Self(pairs))
            .map_err(|e| ApiError::bad_request(e.body_text(), None, Some("invalid_query")))
    }
}

#[cfg(test)]
mod tests {
    use super::is_json;
    use axum::http::HeaderValue;

    #[test]
    fn json_content_types() {
        for t in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
            "application/merge-patch+json",
        ] {
            assert!(is_json(&HeaderValue::from_static(t)), "{t}");
        }
        for t in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "application/",
            "json",
            "",
        ] {
            assert!(!is_json(&HeaderValue::from_static(t)), "{t}");
        }
    }
}
