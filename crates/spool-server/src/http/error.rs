//! API errors, in the OpenAI error shape.
//!
//! Which error type to use where:
//! - Inside handlers return [`ApiError`]; every error a client sees is one,
//!   serialized as `{"error":{"message","type","param","code"}}` with all four
//!   keys present and the HTTP status the OpenAI API uses for the case.
//! - Library errors (`RequestError`, `StartError`, `CancelError`, …) convert
//!   into it with `?`: the `From` impls below decide status, type and code
//!   in one place.
//! - Unexpected failures go through [`ApiError::internal`], which logs the
//!   cause and tells the client only that the server failed.

use crate::runtime::subscribe::SubscribeError;
use crate::runtime::{CancelError, DeleteError, StartError};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use spool_core::request::RequestError;
use spool_store::{PageError, StoreError};

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// The error `type`: `invalid_request_error`, `server_error`, …
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<String>,
    /// Seconds after which a retry may succeed: the `Retry-After` header.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    /// 400 for a request that cannot be served as sent.
    pub fn bad_request(
        message: impl Into<String>,
        param: Option<&str>,
        code: Option<&str>,
    ) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(str::to_owned),
            code: code.map(str::to_owned),
            retry_after: None,
        }
    }

    /// 404 for something that does not exist (or is not retrievable).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code: None,
            retry_after: None,
        }
    }

    pub fn response_not_found(id: &str) -> Self {
        Self::not_found(format!("Response with id '{id}' not found."))
    }

    /// 409 when the request conflicts with work in progress.
    pub fn conflict(message: impl Into<String>, code: &str) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code: Some(code.to_owned()),
            retry_after: None,
        }
    }

    /// 413 for a body over the configured limit.
    pub fn payload_too_large(limit: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!("The request body is larger than the limit of {limit} bytes."),
            kind: "invalid_request_error",
            param: None,
            code: Some("request_too_large".into()),
            retry_after: None,
        }
    }

    /// 500: logs `cause`, tells the client only that the server failed.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "The server had an error while processing your request.".into(),
            kind: "server_error",
            param: None,
            code: Some("server_error".into()),
            retry_after: None,
        }
    }

    /// 429 when the server is at capacity: clients retry after
    /// `retry_after` seconds (the OpenAI SDKs honour `Retry-After`).
    pub fn too_many_requests(message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: message.into(),
            kind: "requests",
            param: None,
            code: Some("rate_limit_exceeded".into()),
            retry_after: Some(retry_after),
        }
    }

    /// 415 for a body that is not JSON by its `Content-Type`.
    pub fn unsupported_media_type(content_type: Option<&str>) -> Self {
        let sent = content_type.map_or_else(
            || "no Content-Type".to_owned(),
            |t| format!("Content-Type '{t}'"),
        );
        Self {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: format!(
                "The request body must be JSON sent with Content-Type: application/json; got {sent}."
            ),
            kind: "invalid_request_error",
            param: None,
            code: Some("unsupported_media_type".into()),
            retry_after: None,
        }
    }

    /// 403 for a request this server does not take from where it came
    /// (a browser origin, a Host name).
    pub fn forbidden(message: impl Into<String>, code: &str) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code: Some(code.to_owned()),
            retry_after: None,
        }
    }

    /// 503 while the server stops.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: Some("service_unavailable".into()),
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code.as_deref(),
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        Self::bad_request(e.message, e.param.as_deref(), Some(e.code))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::internal(e)
    }
}

impl From<SubscribeError> for ApiError {
    fn from(e: SubscribeError) -> Self {
        match e {
            // Written for clients (`storage_error`, …): shown as it is.
            SubscribeError::RunAborted(error) => {
                tracing::error!(code = %error.code, "a run ended before it could be answered");
                Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: error.message,
                    kind: "server_error",
                    param: None,
                    code: Some(error.code.as_str().to_owned()),
                    retry_after: None,
                }
            }
            SubscribeError::Store(e) => Self::internal(e),
        }
    }
}

impl From<StartError> for ApiError {
    fn from(e: StartError) -> Self {
        match e {
            StartError::ModelUnavailable(e) => {
                Self::bad_request(e.to_string(), Some("model"), Some("model_not_available"))
            }
            // A 400, not a 404, as the OpenAI API answers it over HTTP and
            // WebSocket (and the Open Responses spec shows): the request
            // names something that is not there, the route is fine.
            StartError::PreviousNotFound(_) => Self::bad_request(
                e.to_string(),
                Some("previous_response_id"),
                Some("previous_response_not_found"),
            ),
            StartError::PreviousInProgress(_) => Self::bad_request(
                e.to_string(),
                Some("previous_response_id"),
                Some("previous_response_in_progress"),
            ),
            StartError::ConversationNotFound(_) => Self {
                param: Some("conversation".into()),
                ..Self::not_found(e.to_string())
            },
            StartError::ConversationBusy(..) => {
                Self::conflict(e.to_string(), "conversation_locked")
            }
            StartError::McpNotAllowed { .. } => {
                Self::bad_request(e.to_string(), Some("tools"), Some("mcp_server_not_allowed"))
            }
            StartError::DuplicateItem(..) => {
                Self::bad_request(e.to_string(), Some("input"), Some("duplicate_item"))
            }
            StartError::SealedContentInvalid { index } => Self::bad_request(
                e.to_string(),
                Some(&format!("input[{index}].encrypted_content")),
                Some("invalid_encrypted_content"),
            ),
            StartError::UnresolvedReference { index, .. } => Self::bad_request(
                e.to_string(),
                Some(&format!("input[{index}].id")),
                Some("invalid_value"),
            ),
            StartError::UnansweredCall { index, .. } => Self::bad_request(
                e.to_string(),
                Some(&format!("input[{index}].call_id")),
                Some("invalid_value"),
            ),
            StartError::Store(e) => Self::internal(e),
            StartError::ShuttingDown => Self::unavailable("The server is shutting down."),
            StartError::OverLimit { param, code, .. } => {
                Self::bad_request(e.to_string(), Some(param), Some(code))
            }
            StartError::TooManyRuns(_) => Self::too_many_requests(e.to_string(), 1),
        }
    }
}

impl From<CancelError> for ApiError {
    fn from(e: CancelError) -> Self {
        match e {
            CancelError::NotFound(id) => Self::response_not_found(id.as_str()),
            CancelError::NotBackground | CancelError::AlreadyEnded(_) => {
                Self::bad_request(e.to_string(), None, Some("invalid_state"))
            }
            CancelError::NotStopped | CancelError::Store(_) => Self::internal(e),
        }
    }
}

impl From<DeleteError> for ApiError {
    fn from(e: DeleteError) -> Self {
        match e {
            DeleteError::NotFound(id) => Self::response_not_found(id.as_str()),
            DeleteError::InFlight => Self::bad_request(e.to_string(), None, Some("invalid_state")),
            DeleteError::Store(e) => Self::internal(e),
        }
    }
}

impl From<PageError> for ApiError {
    fn from(e: PageError) -> Self {
        match e {
            PageError::UnknownCursor { param, id } => Self::bad_request(
                format!("No item with id '{id}' in this list."),
                Some(param),
                Some("invalid_value"),
            ),
            PageError::Store(e) => Self::internal(e),
        }
    }
}
