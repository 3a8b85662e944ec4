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

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .map_or("", |v| v.to_str().unwrap())
}

/// The `/graphiql/…` URLs a GraphiQL page loads.
fn graphiql_assets(page: &str) -> Vec<String> {
    page.split('"')
        .filter(|s| s.starts_with("/graphiql/"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn graphiql_is_served_to_browsers() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let page = client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(header(&page, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&page, "cache-control"), "no-cache");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    let csp = header(&page, "content-security-policy").to_owned();
    let host = app.address.trim_start_matches("http://");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        &format!("connect-src 'self' ws://{host} wss://{host}"),
        "img-src 'self' data:",
        "font-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(
            csp.split(';').any(|d| d.trim() == directive),
            "{directive} missing from {csp}"
        );
    }
    let script_src = csp.split(';').find(|d| d.trim().starts_with("script-src"));
    assert!(!script_src.unwrap().contains("unsafe"), "{csp}");
    let etag = header(&page, "etag").to_owned();
    assert!(etag.starts_with('"'), "{etag}");

    let body = page.text().await.unwrap();
    assert!(body.contains("<title>GraphiQL"), "{body}");
    assert!(
        !body.contains("http://") && !body.contains("https://") && !body.contains("\"//"),
        "the page names another host: {body}"
    );
    assert!(!body.contains("<script>"), "inline script: {body}");
    let assets = graphiql_assets(&body);
    assert!(
        assets.iter().any(|a| a.ends_with("/graphiql.min.js")),
        "{body}"
    );

    let again = client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.text().await.unwrap().is_empty());
}

#[tokio::test]
async fn graphiql_assets_are_served_cached_and_compressed() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let page = client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let assets = graphiql_assets(&page);
    assert_eq!(assets.len(), 6, "{page}");
    for path in &assets {
        let url = format!("{}{path}", app.address);
        let plain = client.get(&url).send().await.unwrap();
        assert_eq!(plain.status(), 200, "{path}");
        let expected_type = if path.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else {
            "text/css; charset=utf-8"
        };
        assert_eq!(header(&plain, "content-type"), expected_type, "{path}");
        assert_eq!(
            header(&plain, "cache-control"),
            "public, max-age=31536000, immutable",
            "{path}"
        );
        assert_eq!(
            header(&plain, "x-content-type-options"),
            "nosniff",
            "{path}"
        );
        assert_eq!(header(&plain, "content-encoding"), "", "{path}");
        let etag = header(&plain, "etag").to_owned();
        assert!(etag.starts_with('"'), "{path}: {etag}");
        let vary = header(&plain, "vary").to_owned();
        let plain = plain.bytes().await.unwrap();

        let gzip = client
            .get(&url)
            .header("accept-encoding", "br;q=1.0, gzip;q=0.8")
            .send()
            .await
            .unwrap();
        assert_eq!(gzip.status(), 200, "{path}");
        assert_eq!(header(&gzip, "content-type"), expected_type, "{path}");
        if path.contains(".min.") {
            // Vendored: precompressed, sent as gzip when accepted.
            assert_eq!(vary, "Accept-Encoding", "{path}");
            assert_eq!(header(&gzip, "content-encoding"), "gzip", "{path}");
            assert_eq!(header(&gzip, "vary"), "Accept-Encoding", "{path}");
            assert_ne!(header(&gzip, "etag"), etag, "{path}");
            let gzip = gzip.bytes().await.unwrap();
            assert_eq!(&gzip[..2], [0x1f, 0x8b], "{path}");
            assert!(gzip.len() < plain.len(), "{path}");
        } else {
            assert_eq!(header(&gzip, "content-encoding"), "", "{path}");
        }

        let refused = client
            .get(&url)
            .header("accept-encoding", "gzip;q=0")
            .send()
            .await
            .unwrap();
        assert_eq!(header(&refused, "content-encoding"), "", "{path}");
        assert_eq!(refused.bytes().await.unwrap(), plain, "{path}");

        let revalidated = client
            .get(&url)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(revalidated.status(), 304, "{path}");
    }

    // Another build's tag, or a file that is not an asset: not found.
    let file = assets[0].rsplit('/').next().unwrap();
    for path in [
        format!("/graphiql/0000000000000000/{file}"),
        assets[0].replace(file, "index.html"),
        assets[0].replace(file, "VERSIONS"),
    ] {
        let missing = client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404, "{path}");
    }
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

#[tokio::test]
async fn a_post_without_a_query_is_a_bad_request_in_either_media_type() {
    let app = spawn_app().await;
    for body in [
        r#"{"qeury":"{ __typename }"}"#,
        r#"{"query":""}"#,
        r#"[{"query":"{ __typename }"},{"variables":{}}]"#,
    ] {
        for accept in ["application/json", "application/graphql-response+json"] {
            let (status, ct, body, _) = post_raw(&app, body, "application/json", accept).await;
            assert_eq!(status, 400, "{accept}: {body}");
            assert!(ct.starts_with(accept), "{accept}: {ct}");
            assert_eq!(
                TestApp::error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{body}"
            );
            assert!(body.get("data").is_none(), "{body}");
        }
    }
}

#[tokio::test]
async fn refusals_before_execution_use_the_accepted_media_type() {
    let app = spawn_app().await;
    let modern = "application/graphql-response+json";
    let (status, ct, _, _) = post_raw(&app, "{ \"not a JSON", "application/json", modern).await;
    assert_eq!(status, 400);
    assert!(ct.starts_with(modern), "{ct}");
    let (status, ct, _, _) = post_raw(&app, "{}", "text/plain", modern).await;
    assert_eq!(status, 415);
    assert!(ct.starts_with(modern), "{ct}");
    let refused = reqwest::Client::new()
        .get(format!("{}/graphql", app.address))
        .query(&[("query", "mutation { logout }")])
        .header("accept", modern)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 405);
    assert!(header(&refused, "content-type").starts_with(modern));
}
