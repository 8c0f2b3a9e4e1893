//! `GET /v1/responses` lists stored responses (after, limit, model, order)
//! beside WebSocket mode on the same route, and the `/v1/openai/v1`
//! aliases llama-stack clients call reach the Responses API.

use crate::helpers::{assert_error, spawn_app};
use crate::upstream::text_script;
use serde_json::json;

fn ids(list: &serde_json::Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn stored_responses_are_listed_in_pages_by_model_and_order() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for model in ["echo", "m", "echo"] {
        if model == "m" {
            app.upstream.push(text_script(&["hi"]));
        }
        let (status, r) = app
            .post("/v1/responses", &json!({"model": model, "input": "hello"}))
            .await;
        assert_eq!(status, 200, "{r}");
        created.push(r["id"].as_str().unwrap().to_owned());
    }
    let (status, page) = app.get("/v1/responses?limit=2").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(ids(&page), [created[2].as_str(), created[1].as_str()]);
    assert_eq!(page["has_more"], true);
    assert_eq!(page["object"], "list");
    assert_eq!(page["last_id"], created[1].as_str());
    let (_, rest) = app
        .get(&format!("/v1/responses?limit=2&after={}", created[1]))
        .await;
    assert_eq!(ids(&rest), [created[0].as_str()]);
    assert_eq!(rest["has_more"], false);
    let (_, asc) = app.get("/v1/responses?order=asc&model=echo").await;
    assert_eq!(ids(&asc), [created[0].as_str(), created[2].as_str()]);
    assert_eq!(asc["data"][0]["output"][0]["content"][0]["text"], "hello");

    for bad in ["limit=0", "order=up", "after=resp_nope"] {
        let (status, body) = app.get(&format!("/v1/responses?{bad}")).await;
        assert_error(status, &body, 400);
    }
}

#[tokio::test]
async fn the_openai_v1_aliases_reach_the_responses_api() {
    let app = spawn_app().await;
    let (status, r) = app
        .post(
            "/v1/openai/v1/responses",
            &json!({"model": "echo", "input": "alias"}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let id = r["id"].as_str().unwrap();
    let (status, got) = app.get(&format!("/v1/openai/v1/responses/{id}")).await;
    assert_eq!((status, got["id"].as_str()), (200, Some(id)));
    let (_, items) = app
        .get(&format!("/v1/openai/v1/responses/{id}/input_items"))
        .await;
    assert_eq!(items["data"][0]["content"][0]["text"], "alias");
    let (_, listed) = app.get("/v1/openai/v1/responses").await;
    assert_eq!(ids(&listed), [id]);
    assert_eq!(
        app.delete(&format!("/v1/openai/v1/responses/{id}")).await.0,
        200
    );
    assert_eq!(app.get(&format!("/v1/responses/{id}")).await.0, 404);
}
