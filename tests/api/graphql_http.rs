//! GraphQL over HTTP: methods, media types, limits and error shapes.

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};

async fn post_raw(
    app: &TestApp,
    body: &str,
    content_type: &str,
    accept: &str,
) -> (u16, String, Value, Option<String>) {
    let response = reqwest::Client::new()
        .post(format!("{}/graphql", app.address))
        .header("content-type", content_type)
        .header("accept", accept)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let ct = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let rid = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap();
    crate::helpers::assert_every_error_has_a_code(&body);
    (status, ct, body, rid)
}

#[tokio::test]
async fn get_serves_queries_and_refuses_mutations() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let ok = client
        .get(format!("{}/graphql", app.address))
        .query(&[("query", "{ exchangeRates { id } }")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["data"]["exchangeRates"], json!([]));

    let refused = client
        .get(format!("{}/graphql", app.address))
        .query(&[("query", "mutation { logout }")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 405);
    let body: Value = refused.json().await.unwrap();
    assert!(body["errors"][0]["extensions"]["code"].is_string());

    let named = client
        .get(format!("{}/graphql", app.address))
        .query(&[
            ("query", "query A { me { id } } mutation B { logout }"),
            ("operationName", "B"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(named.status(), 405);
}

#[tokio::test]
async fn graphiql_is_served_to_browsers() {
    let app = spawn_app().await;
    let page = reqwest::Client::new()
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("graphiql")
    );
}

#[tokio::test]
async fn parse_and_validation_failures_carry_apollo_codes() {
    let app = spawn_app().await;
    let body = app.gql("{ exchangeRates { id ", json!({})).await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("GRAPHQL_PARSE_FAILED"),
        "{body}"
    );
    let body = app.gql("{ noSuchField }", json!({})).await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );
    let body = app
        .gql(
            "query($a: Decimal!) { quote(from: \"USD\", to: \"UAH\", amount: $b) { rate } }",
            json!({}),
        )
        .await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );
}

#[tokio::test]
async fn graphql_response_json_is_used_when_accepted() {
    let app = spawn_app().await;
    let q = r#"{"query":"{ exchangeRates { id } }"}"#;
    let (status, ct, _, _) = post_raw(
        &app,
        q,
        "application/json",
        "application/graphql-response+json",
    )
    .await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/graphql-response+json"), "{ct}");
    let (status, _, body, _) = post_raw(
        &app,
        r#"{"query":"{ nope"}"#,
        "application/json",
        "application/graphql-response+json",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, ct, _, _) = post_raw(&app, q, "application/json", "application/json").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/json"), "{ct}");
}

#[tokio::test]
async fn malformed_requests_get_graphql_shaped_errors() {
    let app = spawn_app_with(|c| c.limits.max_body_bytes = 2048).await;
    let (status, _, body, _) =
        post_raw(&app, "{not json", "application/json", "application/json").await;
    assert_eq!(status, 400);
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("GRAPHQL_PARSE_FAILED"),
        "{body}"
    );
    let (status, _, body, _) = post_raw(
        &app,
        r#"{"query":"{ me { id } }"}"#,
        "text/plain",
        "application/json",
    )
    .await;
    assert_eq!(status, 415);
    assert!(TestApp::error_code(&body).is_some(), "{body}");
    let big = format!(r#"{{"query":"{{ me {{ id }} }} # {}"}}"#, "x".repeat(4096));
    let (status, _, body, _) = post_raw(&app, &big, "application/json", "application/json").await;
    assert_eq!(status, 413);
    assert!(TestApp::error_code(&body).is_some(), "{body}");
}

#[tokio::test]
async fn depth_alias_and_batch_limits_hold() {
    let app = spawn_app_with(|c| {
        c.limits.max_depth = 3;
        c.limits.max_aliases = 2;
        c.limits.max_batch = 2;
    })
    .await;
    let deep = app
        .gql(
            "{ me { id } __schema { types { fields { type { name } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        TestApp::error_code(&deep).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{deep}"
    );
    let aliases = app
        .gql("{ a: me { id } b: me { id } c: me { id } }", json!({}))
        .await;
    assert_eq!(
        TestApp::error_code(&aliases).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{aliases}"
    );
    let ok = app.gql("{ a: me { id } b: me { id } }", json!({})).await;
    assert!(ok["errors"].is_null(), "{ok}");

    let batch = json!([{ "query": "{ me { id } }" }, { "query": "{ me { id } }" }, { "query": "{ me { id } }" }]);
    let (status, _, body, _) = post_raw(
        &app,
        &batch.to_string(),
        "application/json",
        "application/json",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let batch = json!([{ "query": "{ me { id } }" }, { "query": "{ exchangeRates { id } }" }]);
    let (status, _, body, _) = post_raw(
        &app,
        &batch.to_string(),
        "application/json",
        "application/json",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().map(Vec::len), Some(2), "{body}");
}

#[tokio::test]
async fn introspection_can_be_switched_off() {
    let app = spawn_app_with(|c| c.limits.introspection = false).await;
    let body = app
        .gql("{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(body["data"]["__schema"], Value::Null, "{body}");
}

#[tokio::test]
async fn every_error_carries_the_request_id_of_its_response() {
    let app = spawn_app().await;
    let (_, _, body, rid) = post_raw(
        &app,
        r#"{"query":"{ exchangeRate(from: \"usd\", to: \"UAH\") { rate } }"}"#,
        "application/json",
        "application/json",
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["requestId"].as_str(),
        rid.as_deref(),
        "{body}"
    );
}
