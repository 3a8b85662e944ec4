//! `dailyAnalytics` (SPEC §3): events counted by type and order volume by
//! pair for one UTC day, exact to the last of 8 decimal places, and never stale.

use crate::helpers::{PASSWORD, TestApp, spawn_app, unique_email};
use exchanger::context::ApplicationContext;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const DAILY: &str = "query($date: Date) { dailyAnalytics(date: $date) { date events { eventType count } volumes { fromCurrency toCurrency orders amount toAmount } } }";

fn dec(value: &Value) -> Decimal {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("a Decimal string: {value}"));
    assert_eq!(
        text.split_once('.').map(|(_, places)| places.len()),
        Some(8),
        "Decimal outputs have 8 places: {text}"
    );
    text.parse().expect("decimal")
}

/// `amount × rate`, half-even to 8 places: the reference for `toAmount`.
fn converted(amount: &str, rate: &str) -> Decimal {
    let amount: Decimal = amount.parse().unwrap();
    let rate: Decimal = rate.parse().unwrap();
    (amount * rate).round_dp_with_strategy(8, RoundingStrategy::MidpointNearestEven)
}

/// `dailyAnalytics` as the holder of `token`; the body.
async fn daily(app: &TestApp, token: &str, date: Option<&str>) -> Value {
    app.gql_as(token, DAILY, json!({ "date": date })).await
}

/// The event counts of a successful `dailyAnalytics` body, by type.
fn events(body: &Value) -> BTreeMap<String, i64> {
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["dailyAnalytics"]["events"]
        .as_array()
        .unwrap_or_else(|| panic!("events: {body}"))
        .iter()
        .map(|e| {
            (
                e["eventType"].as_str().unwrap().to_owned(),
                e["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Creates an order that must succeed; returns `(id, toAmount)`.
async fn order(app: &TestApp, token: &str, from: &str, to: &str, amount: &str) -> (String, Value) {
    let body = app.create_order(token, from, to, amount).await;
    let created = &body["data"]["createOrder"];
    let id = created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("order created: {body}"))
        .to_owned();
    (id, created["toAmount"].clone())
}

/// Creates a payment that must succeed and settles it as `status`; returns the order's
/// status afterwards.
async fn pay(
    app: &TestApp,
    token: &str,
    operator: &str,
    order_id: &str,
    amount: &str,
    status: &str,
) -> Value {
    let key = uuid::Uuid::new_v4().to_string();
    let body = app.create_payment(token, order_id, amount, &key).await;
    let payment = body["data"]["createPayment"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("payment created: {body}"))
        .to_owned();
    let settled = app.settle_payment(operator, &payment, status).await;
    assert_eq!(
        settled["data"]["settlePayment"]["status"], status,
        "{settled}"
    );
    settled["data"]["settlePayment"]["order"]["status"].clone()
}

#[tokio::test]
async fn daily_analytics_counts_every_key_action_and_sums_paid_volume_exactly() {
    // Arrange: rates with 8 places, an operator, two users.
    let app = spawn_app().await;
    let usd_uah = "41.12345678";
    let eur_uah = "44.87654321";
    app.set_rate("USD", "UAH", usd_uah).await;
    app.set_rate("EUR", "UAH", eur_uah).await;
    let operator = app
        .operator(&["analytics:read", "payments:write", "orders:write"])
        .await;
    let alice_email = app.sign_up().await.email;
    let bob = app.sign_up().await.token;
    let alice = app.log_in(&alice_email, PASSWORD).await.expect("signed in");
    let wrong = app
        .log_in(&alice_email, "not the password")
        .await
        .expect_err("refused");
    assert_eq!(
        TestApp::error_code(&wrong).as_deref(),
        Some("UNAUTHENTICATED")
    );
    let unknown = app
        .log_in(&unique_email(), PASSWORD)
        .await
        .expect_err("refused");
    assert_eq!(
        TestApp::error_code(&unknown).as_deref(),
        Some("UNAUTHENTICATED")
    );

    // Orders: paid in two parts; paid and completed; paid after a failed payment;
    // cancelled; left pending with a pending payment.
    let (small, small_to) = order(&app, &alice, "USD", "UAH", "0.12345678").await;
    pay(&app, &alice, &operator, &small, "0.12345670", "SUCCEEDED").await;
    let status = pay(&app, &alice, &operator, &small, "0.00000008", "SUCCEEDED").await;
    assert_eq!(status, "PAID");

    let (big, big_to) = order(&app, &alice, "USD", "UAH", "12345678.12345678").await;
    let status = pay(
        &app,
        &alice,
        &operator,
        &big,
        "12345678.12345678",
        "SUCCEEDED",
    )
    .await;
    assert_eq!(status, "PAID");
    let completed = app
        .gql_as(
            &operator,
            "mutation($id: ID!) { completeOrder(id: $id) { status } }",
            json!({ "id": big }),
        )
        .await;
    assert_eq!(
        completed["data"]["completeOrder"]["status"], "COMPLETED",
        "{completed}"
    );

    let (euro, euro_to) = order(&app, &bob, "EUR", "UAH", "9999.99999999").await;
    let status = pay(&app, &bob, &operator, &euro, "9999.99999999", "FAILED").await;
    assert_eq!(status, "PENDING");
    let status = pay(&app, &bob, &operator, &euro, "9999.99999999", "SUCCEEDED").await;
    assert_eq!(status, "PAID");

    let (cancelled, _) = order(&app, &bob, "USD", "UAH", "5.5").await;
    let body = app
        .gql_as(
            &bob,
            "mutation($id: ID!) { cancelOrder(id: $id) { status } }",
            json!({ "id": cancelled }),
        )
        .await;
    assert_eq!(body["data"]["cancelOrder"]["status"], "CANCELLED", "{body}");

    let (pending, _) = order(&app, &alice, "USD", "UAH", "1").await;
    let body = app.create_payment(&alice, &pending, "0.5", "pending").await;
    assert!(body["errors"].is_null(), "{body}");

    // Act: today (UTC), by default and by date.
    let today = chrono::Utc::now().date_naive().to_string();
    let body = daily(&app, &operator, None).await;
    let by_date = daily(&app, &operator, Some(&today)).await;

    // Assert: every key action, counted exactly.
    assert_eq!(body["data"]["dailyAnalytics"]["date"], json!(today));
    let expected: BTreeMap<String, i64> = [
        ("login_failed", 2),
        ("order_cancelled", 1),
        ("order_completed", 1),
        ("order_created", 5),
        ("order_paid", 3),
        ("payment_created", 6),
        ("payment_settled", 5),
        ("user_logged_in", 1),
        ("user_registered", 3),
    ]
    .into_iter()
    .map(|(t, n)| (t.to_owned(), n))
    .collect();
    assert_eq!(events(&body), expected, "{body}");
    assert_eq!(by_date, body, "the default date is today (UTC)");

    // And the volume of orders paid today, by pair, equal to the rust_decimal reference.
    let references = [
        (&small_to, "0.12345678", usd_uah),
        (&big_to, "12345678.12345678", usd_uah),
        (&euro_to, "9999.99999999", eur_uah),
    ];
    for (to_amount, amount, rate) in references {
        assert_eq!(dec(to_amount), converted(amount, rate), "{amount} × {rate}");
    }
    let usd_amount: Decimal = "12345678.24691356".parse().unwrap();
    let usd_to = converted("0.12345678", usd_uah) + converted("12345678.12345678", usd_uah);
    let volumes: BTreeMap<(String, String), (i64, Decimal, Decimal)> =
        body["data"]["dailyAnalytics"]["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .map(|v| {
                (
                    (
                        v["fromCurrency"].as_str().unwrap().to_owned(),
                        v["toCurrency"].as_str().unwrap().to_owned(),
                    ),
                    (
                        v["orders"].as_i64().unwrap(),
                        dec(&v["amount"]),
                        dec(&v["toAmount"]),
                    ),
                )
            })
            .collect();
    let expected: BTreeMap<(String, String), (i64, Decimal, Decimal)> = [
        (
            ("EUR".to_owned(), "UAH".to_owned()),
            (
                1,
                "9999.99999999".parse().unwrap(),
                converted("9999.99999999", eur_uah),
            ),
        ),
        (
            ("USD".to_owned(), "UAH".to_owned()),
            (2, usd_amount, usd_to),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(volumes, expected, "{body}");
}

#[tokio::test]
async fn daily_analytics_is_never_stale_after_a_write() {
    // Arrange: a warm cache.
    let app = spawn_app().await;
    app.set_rate("USD", "UAH", "41.25").await;
    let operator = app.operator(&["analytics:read", "payments:write"]).await;
    let user = app.sign_up().await.token;
    let today = chrono::Utc::now().date_naive().to_string();
    let before = events(&daily(&app, &operator, None).await);
    assert_eq!(before.get("order_created"), None);
    assert_eq!(before.get("user_registered"), Some(&2));

    // Act + assert: each kind of write shows on the next read.
    let (order_id, _) = order(&app, &user, "USD", "UAH", "2").await;
    let after_order = events(&daily(&app, &operator, Some(&today)).await);
    assert_eq!(after_order.get("order_created"), Some(&1), "order write");

    app.sign_up().await;
    let after_register = events(&daily(&app, &operator, None).await);
    assert_eq!(
        after_register.get("user_registered"),
        Some(&3),
        "identity write"
    );

    let status = pay(&app, &user, &operator, &order_id, "2", "SUCCEEDED").await;
    assert_eq!(status, "PAID");
    let body = daily(&app, &operator, Some(&today)).await;
    let after_payment = events(&body);
    assert_eq!(after_payment.get("payment_created"), Some(&1));
    assert_eq!(after_payment.get("payment_settled"), Some(&1));
    assert_eq!(after_payment.get("order_paid"), Some(&1), "payment write");
    assert_eq!(
        body["data"]["dailyAnalytics"]["volumes"],
        json!([{ "fromCurrency": "USD", "toCurrency": "UAH", "orders": 1,
                 "amount": "2.00000000", "toAmount": "82.50000000" }])
    );
}

#[tokio::test]
async fn daily_analytics_of_a_day_without_activity_is_empty_and_echoes_the_date() {
    let app = spawn_app().await;
    let operator = app.operator(&["analytics:read"]).await;
    app.set_rate("USD", "UAH", "41.25").await;
    let user = app.sign_up().await.token;
    order(&app, &user, "USD", "UAH", "1").await;

    let body = daily(&app, &operator, Some("2001-01-01")).await;

    assert_eq!(
        body,
        json!({ "data": { "dailyAnalytics": { "date": "2001-01-01", "events": [], "volumes": [] } } })
    );
}

#[tokio::test]
async fn daily_analytics_refuses_a_bad_date_with_bad_user_input() {
    let app = spawn_app().await;
    let operator = app.operator(&["analytics:read"]).await;

    for bad in [
        json!("2026-13-01"),
        json!("yesterday"),
        json!("2026-02-30"),
        json!("2026-1-01"),
        json!(""),
        json!(20260101),
    ] {
        let as_variable = app.gql_as(&operator, DAILY, json!({ "date": bad })).await;
        let inline = app
            .gql_as(
                &operator,
                &format!("{{ dailyAnalytics(date: {bad}) {{ date }} }}"),
                json!({}),
            )
            .await;

        for body in [as_variable, inline] {
            assert_eq!(
                TestApp::error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{bad}: {body}"
            );
            assert!(body["data"].is_null(), "{bad}: {body}");
        }
    }
}

#[tokio::test]
async fn daily_analytics_needs_analytics_read_in_this_context() {
    // Arrange: signed out, a plain user, a holder of every other permission, and a holder
    // of analytics:read in another context only.
    let app = spawn_app().await;
    let plain = app.sign_up().await.token;
    let others = app
        .operator(&[
            "rates:write",
            "orders:write",
            "payments:write",
            "permissions:write",
        ])
        .await;
    let elsewhere = app.sign_up().await;
    app.grant_in_context(&elsewhere.id, "analytics:read", ApplicationContext::Admin)
        .await;
    let reader = app.operator(&["analytics:read"]).await;

    // Act
    let signed_out = app.gql(DAILY, json!({})).await;
    let mut refused = Vec::new();
    for token in [plain, others, elsewhere.token] {
        refused.push(daily(&app, &token, None).await);
    }
    let allowed = daily(&app, &reader, None).await;

    // Assert
    assert_eq!(
        TestApp::error_code(&signed_out).as_deref(),
        Some("UNAUTHENTICATED"),
        "{signed_out}"
    );
    assert!(signed_out["data"].is_null(), "{signed_out}");
    for body in refused {
        assert_eq!(
            TestApp::error_code(&body).as_deref(),
            Some("FORBIDDEN"),
            "{body}"
        );
        assert!(body["data"].is_null(), "nothing leaks: {body}");
    }
    assert!(allowed["errors"].is_null(), "{allowed}");
}

#[tokio::test]
async fn daily_volume_beyond_what_fits_in_64_bit_units_is_still_exact() {
    // Arrange: ten of the largest orders DECIMAL(18,8) holds, paid today: their sum in
    // units of 1e-8 (about 1e19) is more than an i64 holds.
    let app = spawn_app().await;
    app.set_rate("USD", "USDT", "1").await;
    let operator = app.operator(&["analytics:read", "payments:write"]).await;
    let user = app.sign_up().await.token;
    let largest = "9999999999.99999999";
    for _ in 0..10 {
        let (id, to_amount) = order(&app, &user, "USD", "USDT", largest).await;
        assert_eq!(dec(&to_amount), largest.parse::<Decimal>().unwrap());
        let status = pay(&app, &user, &operator, &id, largest, "SUCCEEDED").await;
        assert_eq!(status, "PAID");
    }

    // Act
    let body = daily(&app, &operator, None).await;

    // Assert
    let total = largest.parse::<Decimal>().unwrap() * Decimal::from(10);
    assert!(body["errors"].is_null(), "{body}");
    let volumes = &body["data"]["dailyAnalytics"]["volumes"];
    assert_eq!(volumes.as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(volumes[0]["orders"], 10);
    assert_eq!(dec(&volumes[0]["amount"]), total, "{body}");
    assert_eq!(dec(&volumes[0]["toAmount"]), total, "{body}");
}
