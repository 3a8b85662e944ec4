use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let response = reqwest::get(format!("{}/healthz", app.address))
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert!(response.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn readyz_reports_both_databases_and_the_store() {
    let app = spawn_app().await;
    let response = reqwest::get(format!("{}/readyz", app.address))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["identityDatabase"], "ok");
    assert_eq!(body["webDatabase"], "ok");
    assert_eq!(body["store"], "ok");
}

#[tokio::test]
async fn metrics_are_exposed_for_prometheus() {
    let app = spawn_app().await;
    app.set_rate("USD", "UAH", "41.25").await;
    // Two reads: the second is a cache hit, which is counted.
    for _ in 0..2 {
        app.gql(
            r#"{ exchangeRate(from: "USD", to: "UAH") { rate } }"#,
            serde_json::json!({}),
        )
        .await;
    }
    let text = reqwest::get(format!("{}/metrics", app.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("exchanger_cache_hits_total"), "{text}");
}

#[tokio::test]
async fn the_root_sends_browsers_to_graphiql() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(format!("{}/", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/graphql");
}
