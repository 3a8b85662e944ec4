use crate::helpers::{TestApp, spawn_app};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::json;

const SET_RATE: &str = "mutation($input: SetExchangeRateInput!) { setExchangeRate(input: $input) { id rate validFrom validUntil } }";
const RATE: &str = "query($from: String!, $to: String!) { exchangeRate(from: $from, to: $to) { id rate validFrom validUntil } }";

#[tokio::test]
async fn exchange_rates_lists_every_pair_valid_now() {
    let app = spawn_app().await;
    let body = app
        .gql("{ exchangeRates { fromCurrency } }", json!({}))
        .await;
    assert_eq!(body["data"]["exchangeRates"], json!([]));
    app.set_rate("USD", "UAH", "41.25").await;
    app.set_rate("EUR", "UAH", "44.10").await;
    let body = app
        .gql(
            "{ exchangeRates { fromCurrency toCurrency rate validUntil } }",
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["exchangeRates"],
        json!([
            { "fromCurrency": "EUR", "toCurrency": "UAH", "rate": "44.10000000", "validUntil": null },
            { "fromCurrency": "USD", "toCurrency": "UAH", "rate": "41.25000000", "validUntil": null },
        ])
    );
}

#[tokio::test]
async fn set_exchange_rate_closes_the_previous_rate_and_no_reader_sees_the_old_one() {
    let app = spawn_app().await;
    let operator = app.operator(&["rates:write"]).await;
    let first = app
        .gql_as(
            &operator,
            SET_RATE,
            json!({ "input": { "fromCurrency": "USD", "toCurrency": "UAH", "rate": "41.25" } }),
        )
        .await;
    let first_id = first["data"]["setExchangeRate"]["id"].clone();
    // Warm both caches with the first rate.
    let cached = app.gql(RATE, json!({ "from": "USD", "to": "UAH" })).await;
    assert_eq!(cached["data"]["exchangeRate"]["rate"], "41.25000000");
    app.gql("{ exchangeRates { rate } }", json!({})).await;

    let second = app
        .gql_as(
            &operator,
            SET_RATE,
            json!({ "input": { "fromCurrency": "USD", "toCurrency": "UAH", "rate": "41.50" } }),
        )
        .await;
    let second = &second["data"]["setExchangeRate"];

    let now = app.gql(RATE, json!({ "from": "USD", "to": "UAH" })).await;
    assert_eq!(
        now["data"]["exchangeRate"]["rate"], "41.50000000",
        "stale rate after the write: {now}"
    );
    let all = app.gql("{ exchangeRates { rate } }", json!({})).await;
    assert_eq!(
        all["data"]["exchangeRates"],
        json!([{ "rate": "41.50000000" }])
    );

    let history = app
        .gql(
            r#"{ rateHistory(from: "USD", to: "UAH") { id rate validFrom validUntil } }"#,
            json!({}),
        )
        .await;
    let history = history["data"]["rateHistory"].as_array().unwrap().clone();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["id"], second["id"], "newest first");
    assert_eq!(history[1]["id"], first_id);
    assert_eq!(
        history[1]["validUntil"], second["validFrom"],
        "previous rate closed where the new one starts"
    );
    assert_eq!(history[0]["validUntil"], json!(null));
}

#[tokio::test]
async fn a_scheduled_rate_does_not_replace_the_current_one_early() {
    let app = spawn_app().await;
    let operator = app.operator(&["rates:write"]).await;
    app.set_rate("USD", "UAH", "41.25").await;
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let body = app
        .gql_as(
            &operator,
            SET_RATE,
            json!({ "input": { "fromCurrency": "USD", "toCurrency": "UAH", "rate": "42", "validFrom": later } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let now = app.gql(RATE, json!({ "from": "USD", "to": "UAH" })).await;
    assert_eq!(now["data"]["exchangeRate"]["rate"], "41.25000000");
    assert!(
        now["data"]["exchangeRate"]["validUntil"].is_string(),
        "current rate now ends: {now}"
    );
}

#[tokio::test]
async fn set_exchange_rate_needs_rates_write_in_this_context() {
    let app = spawn_app().await;
    let input = json!({ "input": { "fromCurrency": "USD", "toCurrency": "UAH", "rate": "41.25" } });
    let anonymous = app.gql(SET_RATE, input.clone()).await;
    assert_eq!(
        TestApp::error_code(&anonymous).as_deref(),
        Some("UNAUTHENTICATED")
    );
    let token = app.sign_up().await.token;
    let user = app.gql_as(&token, SET_RATE, input.clone()).await;
    assert_eq!(TestApp::error_code(&user).as_deref(), Some("FORBIDDEN"));
    let other = app.operator(&["orders:write"]).await;
    let body = app.gql_as(&other, SET_RATE, input).await;
    assert_eq!(TestApp::error_code(&body).as_deref(), Some("FORBIDDEN"));
    let rates = app.gql("{ exchangeRates { id } }", json!({})).await;
    assert_eq!(
        rates["data"]["exchangeRates"],
        json!([]),
        "nothing was written"
    );
}

#[tokio::test]
async fn bad_rate_input_is_refused_with_the_field_named_and_changes_nothing() {
    let app = spawn_app().await;
    let operator = app.operator(&["rates:write"]).await;
    let cases = [
        (
            json!({ "fromCurrency": "usd", "toCurrency": "UAH", "rate": "1" }),
            "input.fromCurrency",
        ),
        (
            json!({ "fromCurrency": "U", "toCurrency": "UAH", "rate": "1" }),
            "input.fromCurrency",
        ),
        (
            json!({ "fromCurrency": "USD", "toCurrency": "USD", "rate": "1" }),
            "input.toCurrency",
        ),
        (
            json!({ "fromCurrency": "USD", "toCurrency": "TOOLONGCODE", "rate": "1" }),
            "input.toCurrency",
        ),
        (
            json!({ "fromCurrency": "USD", "toCurrency": "UAH", "rate": "0" }),
            "input.rate",
        ),
        (
            json!({ "fromCurrency": "USD", "toCurrency": "UAH", "rate": "-2" }),
            "input.rate",
        ),
        (
            json!({ "fromCurrency": "USD", "toCurrency": "UAH", "rate": "1.000000001" }),
            "input.rate",
        ),
        (
            json!({ "fromCurrency": "USD", "toCurrency": "UAH", "rate": "10000000000" }),
            "input.rate",
        ),
        (
            json!({ "fromCurrency": "USD", "toCurrency": "UAH", "rate": "1", "validFrom": "2030-01-02T00:00:00Z", "validUntil": "2030-01-01T00:00:00Z" }),
            "input.validUntil",
        ),
    ];
    for (input, field) in cases {
        let body = app
            .gql_as(&operator, SET_RATE, json!({ "input": input }))
            .await;
        assert_eq!(
            TestApp::error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{input}: {body}"
        );
        assert_eq!(
            TestApp::error_field(&body).as_deref(),
            Some(field),
            "{input}: {body}"
        );
    }
    // A JSON number for a Decimal is refused by the scalar.
    let body = app
        .gql_as(
            &operator,
            SET_RATE,
            json!({ "input": { "fromCurrency": "USD", "toCurrency": "UAH", "rate": 41.25 } }),
        )
        .await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("BAD_USER_INPUT"),
        "{body}"
    );
    let history = app
        .gql(
            r#"{ rateHistory(from: "USD", to: "UAH") { id } }"#,
            json!({}),
        )
        .await;
    assert_eq!(history["data"]["rateHistory"], json!([]));
}

#[tokio::test]
async fn bad_query_arguments_are_refused_with_the_field_named() {
    let app = spawn_app().await;
    let cases = [
        (
            r#"{ exchangeRate(from: "usd", to: "UAH") { rate } }"#,
            "from",
        ),
        (r#"{ exchangeRate(from: "USD", to: "USD") { rate } }"#, "to"),
        (
            r#"{ rateHistory(from: "USD", to: "UAH", first: 0) { rate } }"#,
            "first",
        ),
        (
            r#"{ rateHistory(from: "USD", to: "UAH", first: 501) { rate } }"#,
            "first",
        ),
        (
            r#"{ quote(from: "USD", to: "UAH", amount: "0") { toAmount } }"#,
            "amount",
        ),
        (
            r#"{ quote(from: "USD", to: "UAH", amount: "1.123456789") { toAmount } }"#,
            "amount",
        ),
    ];
    for (query, field) in cases {
        let body = app.gql(query, json!({})).await;
        assert_eq!(
            TestApp::error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{query}: {body}"
        );
        assert_eq!(
            TestApp::error_field(&body).as_deref(),
            Some(field),
            "{query}: {body}"
        );
    }
}

#[tokio::test]
async fn quote_rounds_half_even_like_rust_decimal() {
    let app = spawn_app().await;
    app.set_rate("USD", "UAH", "41.12345678").await;
    for amount in [
        "1",
        "0.00000001",
        "0.5",
        "123.45678901",
        "9999999.99999999",
        "0.12121212",
    ] {
        let body = app
            .gql(
                "query($a: Decimal!) { quote(from: \"USD\", to: \"UAH\", amount: $a) { amount rate toAmount } }",
                json!({ "a": amount }),
            )
            .await;
        let a: Decimal = amount.parse().unwrap();
        let expected = (a * Decimal::new(4112345678, 8))
            .round_dp_with_strategy(8, RoundingStrategy::MidpointNearestEven);
        let got: Decimal = body["data"]["quote"]["toAmount"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(got, expected, "{amount}");
    }
    let missing = app
        .gql(
            r#"{ quote(from: "EUR", to: "UAH", amount: "1") { toAmount } }"#,
            json!({}),
        )
        .await;
    assert_eq!(TestApp::error_code(&missing).as_deref(), Some("NOT_FOUND"));
    let none = app
        .gql(
            r#"{ exchangeRate(from: "EUR", to: "UAH") { rate } }"#,
            json!({}),
        )
        .await;
    assert_eq!(none["data"]["exchangeRate"], json!(null));
}

#[tokio::test]
async fn a_pair_without_a_rate_is_answered_from_the_cache_until_a_rate_is_set() {
    // Arrange
    let app = spawn_app().await;
    let query = r#"{ exchangeRate(from: "USD", to: "UAH") { rate } }"#;
    let key = app.stack.keys.rate("USD", "UAH");

    // Act: a read of a pair without a rate, then a rate set.
    assert!(app.gql(query, json!({})).await["data"]["exchangeRate"].is_null());
    let cached = app.stack.cache.store().get(&key).await.unwrap();
    app.set_rate("USD", "UAH", "41.25").await;

    // Assert: the absence was cached (a flood of such reads stays off the database); the
    // new rate is seen at once.
    assert_eq!(cached.as_deref(), Some("null"));
    assert_eq!(
        app.gql(query, json!({})).await["data"]["exchangeRate"]["rate"],
        "41.25000000"
    );
}
