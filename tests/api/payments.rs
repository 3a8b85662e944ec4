//! Payments: idempotency, the unpaid remainder, settlement, and concurrency on one order.

use crate::helpers::{TestApp, spawn_app};
use rust_decimal::Decimal;
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_payment() {
    let app = spawn_app().await;
    let token = app.sign_up().await.token;
    app.set_rate("USD", "UAH", "41").await;
    let id = app.order_id(&token, "10").await;
    let first = app.create_payment(&token, &id, "3", "key-1").await;
    let again = app.create_payment(&token, &id, "3", "key-1").await;
    assert_eq!(
        first["data"]["createPayment"]["id"], again["data"]["createPayment"]["id"],
        "{again}"
    );
    let other_amount = app.create_payment(&token, &id, "4", "key-1").await;
    assert_eq!(
        TestApp::error_code(&other_amount).as_deref(),
        Some("CONFLICT")
    );
    let other_order = app.order_id(&token, "10").await;
    let body = app.create_payment(&token, &other_order, "3", "key-1").await;
    assert_eq!(TestApp::error_code(&body).as_deref(), Some("CONFLICT"));
    let order = app
        .gql_as(
            &token,
            "query($id: ID!) { order(id: $id) { payments { id } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        order["data"]["order"]["payments"].as_array().unwrap().len(),
        1
    );
}

#[tokio::test]
async fn a_payment_never_exceeds_what_remains_unpaid() {
    let app = spawn_app().await;
    let token = app.sign_up().await.token;
    let operator = app.operator(&["payments:write"]).await;
    app.set_rate("USD", "UAH", "41").await;
    let id = app.order_id(&token, "10").await;
    let over = app.create_payment(&token, &id, "10.00000001", "a").await;
    assert_eq!(
        TestApp::error_code(&over).as_deref(),
        Some("BAD_USER_INPUT"),
        "{over}"
    );
    assert_eq!(TestApp::error_field(&over).as_deref(), Some("input.amount"));
    let p = app.create_payment(&token, &id, "7", "b").await;
    let pending_over = app.create_payment(&token, &id, "3.5", "c").await;
    assert_eq!(
        TestApp::error_code(&pending_over).as_deref(),
        Some("BAD_USER_INPUT"),
        "pending payments count"
    );
    // A failed payment frees its amount again.
    let pid = p["data"]["createPayment"]["id"].as_str().unwrap();
    let failed = app.settle_payment(&operator, pid, "FAILED").await;
    assert_eq!(failed["data"]["settlePayment"]["status"], "FAILED");
    assert_eq!(
        failed["data"]["settlePayment"]["order"]["status"],
        "PENDING"
    );
    let full = app.create_payment(&token, &id, "10", "d").await;
    assert!(full["errors"].is_null(), "{full}");
    let settle_again = app.settle_payment(&operator, pid, "SUCCEEDED").await;
    assert_eq!(
        TestApp::error_code(&settle_again).as_deref(),
        Some("CONFLICT"),
        "settled once only"
    );
}

#[tokio::test]
async fn bad_payment_input_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let token = app.sign_up().await.token;
    let operator = app.operator(&["payments:write"]).await;
    app.set_rate("USD", "UAH", "41").await;
    let id = app.order_id(&token, "10").await;
    let mutation = "mutation($input: CreatePaymentInput!) { createPayment(input: $input) { id } }";
    let long_method = "m".repeat(101);
    let long_key = "k".repeat(256);
    let cases = [
        (
            json!({ "orderId": "nope", "paymentMethod": "card", "amount": "1", "idempotencyKey": "k" }),
            "input.orderId",
        ),
        (
            json!({ "orderId": id, "paymentMethod": "", "amount": "1", "idempotencyKey": "k" }),
            "input.paymentMethod",
        ),
        (
            json!({ "orderId": id, "paymentMethod": long_method, "amount": "1", "idempotencyKey": "k" }),
            "input.paymentMethod",
        ),
        (
            json!({ "orderId": id, "paymentMethod": "card", "amount": "0", "idempotencyKey": "k" }),
            "input.amount",
        ),
        (
            json!({ "orderId": id, "paymentMethod": "card", "amount": "0.000000001", "idempotencyKey": "k" }),
            "input.amount",
        ),
        (
            json!({ "orderId": id, "paymentMethod": "card", "amount": "1", "idempotencyKey": "" }),
            "input.idempotencyKey",
        ),
        (
            json!({ "orderId": id, "paymentMethod": "card", "amount": "1", "idempotencyKey": long_key }),
            "input.idempotencyKey",
        ),
    ];
    for (input, field) in cases {
        let body = app
            .gql_as(&token, mutation, json!({ "input": input }))
            .await;
        assert_eq!(
            TestApp::error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{body}"
        );
        assert_eq!(
            TestApp::error_field(&body).as_deref(),
            Some(field),
            "{body}"
        );
    }
    let pending = app
        .settle_payment(&operator, &uuid::Uuid::now_v7().to_string(), "PENDING")
        .await;
    assert_eq!(
        TestApp::error_field(&pending).as_deref(),
        Some("status"),
        "{pending}"
    );
    let unknown = app
        .settle_payment(&operator, &uuid::Uuid::now_v7().to_string(), "SUCCEEDED")
        .await;
    assert_eq!(TestApp::error_code(&unknown).as_deref(), Some("NOT_FOUND"));
    let order = app
        .gql_as(
            &token,
            "query($id: ID!) { order(id: $id) { payments { id } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(order["data"]["order"]["payments"], json!([]));
}

/// Many clients create and settle payments on one order at once: the sum of succeeded
/// payments never exceeds the amount, no key gives two payments, and the final status
/// matches the money.
#[tokio::test]
async fn concurrent_payments_never_overpay_and_keys_never_duplicate() {
    let app = Arc::new(spawn_app().await);
    let token = app.sign_up().await.token;
    let operator = app.operator(&["payments:write"]).await;
    app.set_rate("USD", "UAH", "41").await;
    let amount = Decimal::new(10, 0);
    let order_id = app.order_id(&token, "10").await;

    // 40 requests over 20 keys (each key sent twice), 1.5 each: at most 6 fit.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let app = app.clone();
        let token = token.clone();
        let order_id = order_id.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("key-{}", i % 20);
            (
                key.clone(),
                app.create_payment(&token, &order_id, "1.5", &key).await,
            )
        }));
    }
    let mut by_key: HashMap<String, HashSet<String>> = HashMap::new();
    for task in tasks {
        let (key, body) = task.await.unwrap();
        if let Some(id) = body["data"]["createPayment"]["id"].as_str() {
            by_key.entry(key).or_default().insert(id.to_owned());
        } else {
            let code = TestApp::error_code(&body);
            assert!(matches!(code.as_deref(), Some("BAD_USER_INPUT")), "{body}");
        }
    }
    assert!(
        by_key.values().all(|ids| ids.len() == 1),
        "a key gave two payments: {by_key:?}"
    );
    let payments: Vec<String> = by_key
        .values()
        .flat_map(|ids| ids.iter().cloned())
        .collect();
    assert_eq!(payments.len(), 6, "10 / 1.5 = 6 payments fit: {by_key:?}");

    // Settle all concurrently, twice each, alternating outcomes.
    let mut tasks = Vec::new();
    for (i, pid) in payments.iter().chain(payments.iter()).enumerate() {
        let app = app.clone();
        let operator = operator.clone();
        let pid = pid.clone();
        let outcome = if i % 3 == 0 { "FAILED" } else { "SUCCEEDED" };
        tasks.push(tokio::spawn(async move {
            app.settle_payment(&operator, &pid, outcome).await
        }));
    }
    for task in tasks {
        let body = task.await.unwrap();
        if body["errors"].is_array() {
            assert_eq!(
                TestApp::error_code(&body).as_deref(),
                Some("CONFLICT"),
                "{body}"
            );
        }
    }
    // Top up with fresh payments until paid, then check the books.
    let view = "query($id: ID!) { order(id: $id) { status paidAmount remainingAmount payments { status amount } } }";
    let body = app.gql_as(&token, view, json!({ "id": order_id })).await;
    let order = &body["data"]["order"];
    let succeeded: Decimal = order["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "SUCCEEDED")
        .map(|p| p["amount"].as_str().unwrap().parse::<Decimal>().unwrap())
        .sum();
    assert!(
        order["payments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["status"] != "PENDING")
    );
    assert!(succeeded <= amount, "overpaid: {succeeded}");
    assert_eq!(
        order["paidAmount"]
            .as_str()
            .unwrap()
            .parse::<Decimal>()
            .unwrap(),
        succeeded
    );
    let expected_status = if succeeded == amount {
        "PAID"
    } else {
        "PENDING"
    };
    assert_eq!(order["status"], expected_status, "{order}");
}

#[tokio::test]
async fn concurrent_payments_that_exactly_cover_the_order_make_it_paid_once() {
    let app = Arc::new(spawn_app().await);
    let token = app.sign_up().await.token;
    let operator = app.operator(&["payments:write", "analytics:read"]).await;
    app.set_rate("USD", "UAH", "41").await;
    let order_id = app.order_id(&token, "0.00000004").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let body = app
            .create_payment(&token, &order_id, "0.00000001", &format!("k{i}"))
            .await;
        ids.push(
            body["data"]["createPayment"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let tasks: Vec<_> = ids
        .into_iter()
        .map(|pid| {
            let app = app.clone();
            let operator = operator.clone();
            tokio::spawn(async move { app.settle_payment(&operator, &pid, "SUCCEEDED").await })
        })
        .collect();
    for t in tasks {
        let body = t.await.unwrap();
        assert!(body["errors"].is_null(), "{body}");
    }
    // Exactly one settlement made the order PAID: one order_paid event.
    let analytics = app
        .gql_as(
            &operator,
            "{ dailyAnalytics { events { eventType count } } }",
            json!({}),
        )
        .await;
    let paid_events = analytics["data"]["dailyAnalytics"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eventType"] == "order_paid")
        .map(|e| e["count"].as_i64().unwrap());
    assert_eq!(paid_events, Some(1), "{analytics}");
    let body = app
        .gql_as(
            &token,
            "query($id: ID!) { order(id: $id) { status paidAmount } }",
            json!({ "id": order_id }),
        )
        .await;
    assert_eq!(
        body["data"]["order"],
        json!({ "status": "PAID", "paidAmount": "0.00000004" })
    );
}
