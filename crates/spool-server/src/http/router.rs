//! Every route spool serves, in one list.

use super::AppState;
use super::access::{AccessPolicy, check_access, cors_layer};
use super::agents;
use super::chat;
use super::conversations as conv;
use super::error::ApiError;
use super::extract::BodyLimit;
use super::framing::check_framing;
use super::health::{healthz, readyz};
use super::responses::{self, cancel, compact, create, delete, input_items, retrieve};
use super::roboto;
use super::runs;
use super::threads;
use axum::Extension;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, Uri};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::any::Any;
use tower_http::catch_panic::CatchPanicLayer;

pub fn router(state: AppState, body_limit: usize, access: AccessPolicy) -> Router {
    let cors = cors_layer(&access);
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/v1/responses",
            post(create::create_response).get(responses::get_responses),
        )
        .route(
            "/v1/responses/{id}",
            get(retrieve::retrieve_response).delete(delete::delete_response),
        )
        .route("/v1/responses/compact", post(compact::compact_response))
        .route("/v1/responses/{id}/cancel", post(cancel::cancel_response))
        .route(
            "/v1/responses/{id}/input_items",
            get(input_items::list_input_items),
        )
        .route(
            "/v1/chat/completions",
            post(chat::create::create_chat_completion),
        )
        .route("/v1/runs/{id}/events", get(runs::events::run_events))
        .route("/v1/conversations", post(conv::create::create_conversation))
        .route(
            "/v1/conversations/{id}",
            get(conv::retrieve::retrieve_conversation)
                .post(conv::update::update_conversation)
                .delete(conv::delete::delete_conversation),
        )
        .route(
            "/v1/conversations/{id}/items",
            get(conv::items_list::list_items).post(conv::items_create::create_items),
        )
        .route(
            "/v1/conversations/{id}/items/{item_id}",
            get(conv::item_retrieve::retrieve_item).delete(conv::item_delete::delete_item),
        )
        .route(
            "/v1/threads",
            post(threads::create::create_thread).get(threads::list::list_threads),
        )
        .route(
            "/v1/threads/{id}",
            get(threads::retrieve::retrieve_thread).delete(threads::delete::delete_thread),
        )
        .route(
            "/v1/threads/{id}/turns",
            get(threads::turns_list::list_turns).post(threads::turns_create::create_turn),
        )
        .route(
            "/v1/threads/{id}/turns/{turn_id}",
            get(threads::turn_retrieve::retrieve_turn),
        )
        .route(
            "/v1/threads/{id}/turns/{turn_id}/events",
            get(threads::turn_events::turn_events),
        )
        .route(
            "/v1/ai/threads",
            post(roboto::start::start_thread).get(roboto::list::list_threads),
        )
        .route(
            "/v1/ai/threads/{id}",
            get(roboto::retrieve::retrieve_thread),
        )
        .route(
            "/v1/ai/threads/{id}/messages",
            post(roboto::send::send_message),
        )
        .route(
            "/v1/ai/threads/{id}/delta",
            get(roboto::delta::thread_delta),
        )
        .route(
            "/v1/ai/threads/{id}/tool-results",
            post(roboto::tool_results::submit_tool_results),
        )
        .route(
            "/v1/ai/threads/{id}/events",
            get(roboto::events::thread_events),
        )
        .route(
            "/v1/toolgroups",
            get(agents::toolgroups_list::list_toolgroups),
        )
        .route(
            "/v1/toolgroups/{toolgroup_id}",
            get(agents::toolgroup_retrieve::retrieve_toolgroup),
        )
        .route("/v1/tools", get(agents::tools_list::list_tools))
        .route("/v1/shields", get(agents::shields_list::list_shields))
        // llama-stack clients reach the Responses API under this prefix.
        .route(
            "/v1/openai/v1/responses",
            post(create::create_response).get(responses::list::list_responses),
        )
        .route(
            "/v1/openai/v1/responses/{id}",
            get(retrieve::retrieve_response).delete(delete::delete_response),
        )
        .route(
            "/v1/openai/v1/responses/{id}/input_items",
            get(input_items::list_input_items),
        )
        .merge(llama_stack_agents("/v1"))
        .merge(llama_stack_agents("/v1alpha"))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(check_framing))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(Extension(BodyLimit(body_limit)))
        .layer(CatchPanicLayer::custom(panic_response))
        .with_state(state);
    // Outermost: a request a browser was tricked into sending is refused
    // before anything else; CORS answers preflights after that check.
    let routes = match cors {
        Some(cors) => routes.layer(cors),
        None => routes,
    };
    routes.layer(middleware::from_fn_with_state(
        std::sync::Arc::new(access),
        check_access,
    ))
}

/// The llama-stack Agents API under `prefix`: `/v1` for
/// llama-stack-client 0.2.x, `/v1alpha` for 0.3.x.
fn llama_stack_agents(prefix: &str) -> Router<AppState> {
    let session = format!("{prefix}/agents/{{agent_id}}/session/{{session_id}}");
    let turn = format!("{session}/turn/{{turn_id}}");
    Router::new()
        .route(
            &format!("{prefix}/agents"),
            post(agents::create::create_agent).get(agents::list::list_agents),
        )
        .route(
            &format!("{prefix}/agents/{{agent_id}}"),
            get(agents::retrieve::retrieve_agent).delete(agents::delete::delete_agent),
        )
        .route(
            &format!("{prefix}/agents/{{agent_id}}/session"),
            post(agents::session_create::create_session),
        )
        .route(
            &format!("{prefix}/agents/{{agent_id}}/sessions"),
            get(agents::session_list::list_sessions),
        )
        .route(
            &session,
            get(agents::session_retrieve::retrieve_session)
                .delete(agents::session_delete::delete_session),
        )
        .route(
            &format!("{session}/turn"),
            post(agents::turn_create::create_turn),
        )
        .route(&turn, get(agents::turn_retrieve::retrieve_turn))
        .route(
            &format!("{turn}/resume"),
            post(agents::turn_resume::resume_turn),
        )
        .route(
            &format!("{turn}/step/{{step_id}}"),
            get(agents::step_retrieve::retrieve_step),
        )
}

async fn unknown_route(uri: Uri) -> ApiError {
    ApiError::not_found(format!("Unknown route: {}.", uri.path()))
}

async fn method_not_allowed() -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        ..ApiError::bad_request("This method is not allowed on this route.", None, None)
    }
}

/// A handler panic becomes a 500 in the OpenAI error shape.
fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    ApiError::internal("a request handler panicked").into_response()
}
