//! What a hostile web page can make a browser send spool: a `text/plain`
//! or form post, a request under a rebound DNS name, a cross-site request
//! or WebSocket. Each is refused in the OpenAI error shape with nothing
//! written; CORS answers only the origins the operator configured.

use crate::helpers::{assert_error, config, spawn_with, temp_db};
use crate::upstream::Upstream;
use serde_json::Value;

/// Rows written to the store's tables.
fn rows(db: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    ["responses", "events", "items", "conversations"]
        .iter()
        .map(|table| -> i64 {
            conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        })
        .sum()
}

async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

const RUN: &str = r#"{"model":"echo","input":"hi"}"#;

#[tokio::test]
async fn a_body_not_sent_as_json_is_a_415_and_starts_nothing() {
    let app = crate::helpers::spawn_app().await;
    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        for path in [
            "/v1/responses",
            "/v1/chat/completions",
            "/v1/conversations",
            "/v1/threads",
        ] {
            let mut request = app.http.post(app.url(path)).body(RUN);
            if let Some(t) = content_type {
                request = request.header("content-type", t);
            }
            let (status, body) = answer(request.send().await.unwrap()).await;
            let e = assert_error(status, &body, 415);
            assert_eq!(
                e["code"], "unsupported_media_type",
                "{path} {content_type:?}"
            );
        }
    }
    assert_eq!(rows(&app.db_path), 0);
    // The JSON the SDKs send, with or without a charset, is served.
    let r = app
        .http
        .post(app.url("/v1/responses"))
        .header("content-type", "application/json; charset=utf-8")
        .body(RUN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn on_loopback_only_loopback_host_names_are_served() {
    let app = crate::helpers::spawn_app().await;
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    for host in [
        "evil.example",
        "evil.example:80",
        "127.0.0.1.nip.io",
        "10.0.0.5",
    ] {
        let (status, body) = answer(
            app.http
                .post(app.url("/v1/responses"))
                .header("host", host)
                .header("content-type", "application/json")
                .body(RUN)
                .send()
                .await
                .unwrap(),
        )
        .await;
        let e = assert_error(status, &body, 403);
        assert_eq!(e["code"], "host_not_allowed", "{host}");
    }
    assert_eq!(rows(&app.db_path), 0);
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "localhost".to_owned(),
        format!("[::1]:{port}"),
    ] {
        let r = app
            .http
            .get(app.url("/healthz"))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{host}");
    }
}

#[tokio::test]
async fn an_allowed_host_is_served_behind_a_proxy() {
    let upstream = Upstream::start().await;
    let mut config = config(&temp_db(), Some(&upstream.base_url));
    config.limits.allowed_hosts = vec!["spool.internal".into()];
    let app = spawn_with(config, upstream).await;
    let r = app
        .http
        .get(app.url("/healthz"))
        .header("host", "spool.internal:443")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_cross_site_request_or_websocket_is_refused_without_cors() {
    let app = crate::helpers::spawn_app().await;
    let (status, body) = answer(
        app.http
            .post(app.url("/v1/responses"))
            .header("origin", "https://evil.example")
            .header("content-type", "application/json")
            .body(RUN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let e = assert_error(status, &body, 403);
    assert_eq!(e["code"], "origin_not_allowed");
    // A body-less POST (a cancel) too: no preflight protects it.
    let (status, _) = answer(
        app.http
            .post(app.url("/v1/responses/resp_x/cancel"))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
    // Browsers do not apply CORS to WebSockets: the Origin check does.
    let ws = app.base.replace("http://", "ws://") + "/v1/responses";
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws).unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let refused = tokio_tungstenite::connect_async(request).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
        }
        other => panic!("a cross-site WebSocket was not refused: {other:?}"),
    }
    // A preflight finds no CORS: the browser would not send the request.
    let r = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/v1/responses"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert_eq!(rows(&app.db_path), 0);
}

#[tokio::test]
async fn configured_origins_get_cors_and_preflights_answered() {
    let upstream = Upstream::start().await;
    let mut config = config(&temp_db(), Some(&upstream.base_url));
    config.limits.cors_allowed_origins = vec!["https://app.example/".into()];
    let app = spawn_with(config, upstream).await;
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/v1/responses"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,x-stainless-os",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed.contains("x-stainless-os"), "{allowed}");
    let r = app
        .http
        .post(app.url("/v1/responses"))
        .header("origin", "https://app.example")
        .header("content-type", "application/json")
        .body(RUN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("x-spool-run-id"), "{exposed}");
    // Another origin is still refused.
    let (status, _) = answer(
        app.http
            .post(app.url("/v1/responses"))
            .header("origin", "https://other.example")
            .header("content-type", "application/json")
            .body(RUN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn on_a_non_loopback_address_any_host_name_is_served() {
    let upstream = Upstream::start().await;
    let mut config = config(&temp_db(), Some(&upstream.base_url));
    config.addr = "0.0.0.0:0".into();
    let app = spawn_with(config, upstream).await;
    let port = app.base.rsplit(':').next().unwrap();
    let r = app
        .http
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .header("host", "spool.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
