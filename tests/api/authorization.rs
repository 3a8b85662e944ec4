//! Authorization (SPEC §4): a user sees and changes only their own orders
//! and payments, and every operator operation checks its permission in this context.

use crate::helpers::{TestApp, spawn_app};
use exchanger::context::ApplicationContext;
use serde_json::{Value, json};

const ORDER: &str = "query($id: ID!) { order(id: $id) { id status amount paidAmount remainingAmount updatedAt payments { id status amount } } }";
const PAYMENT: &str =
    "query($id: ID!) { payment(id: $id) { id status amount idempotencyKey order { id status } } }";
const MY_ORDERS: &str = "query($after: String) { myOrders(first: 100, after: $after) { edges { cursor node { id } } } }";
const CANCEL: &str = "mutation($id: ID!) { cancelOrder(id: $id) { id status } }";

const EVERY_PERMISSION: [&str; 5] = [
    "rates:write",
    "orders:write",
    "payments:write",
    "permissions:write",
    "analytics:read",
];

/// Creates a payment that must succeed; returns its id.
async fn payment_id(app: &TestApp, token: &str, order_id: &str, amount: &str, key: &str) -> String {
    let body = app.create_payment(token, order_id, amount, key).await;
    body["data"]["createPayment"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("payment created: {body}"))
        .to_owned()
}

/// Order ids of the viewer's `myOrders` (after `after`).
async fn my_order_ids(app: &TestApp, token: &str, after: Option<&str>) -> Vec<Value> {
    let body = app
        .gql_as(token, MY_ORDERS, json!({ "after": after }))
        .await;
    assert!(body["errors"].is_null(), "{body}");
    body["data"]["myOrders"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["id"].clone())
        .collect()
}

#[tokio::test]
async fn a_user_can_neither_read_nor_change_another_users_order_or_payment() {
    // Arrange: Alice's order with a pending payment; Bob with an order of his own.
    let app = spawn_app().await;
    app.set_rate("USD", "UAH", "41.25").await;
    let alice = app.sign_up().await.token;
    let bob = app.sign_up().await.token;
    let order = app.order_id(&alice, "10").await;
    let payment = payment_id(&app, &alice, &order, "4", "alice-key").await;
    let bobs_order = app.order_id(&bob, "1").await;
    let order_before = app.gql_as(&alice, ORDER, json!({ "id": order })).await;
    let payment_before = app.gql_as(&alice, PAYMENT, json!({ "id": payment })).await;
    assert_eq!(order_before["data"]["order"]["id"], json!(order));
    assert_eq!(payment_before["data"]["payment"]["id"], json!(payment));
    let alices_cursor = app.gql_as(&alice, MY_ORDERS, json!({})).await["data"]["myOrders"]["edges"]
        [0]["cursor"]
        .as_str()
        .expect("Alice's cursor")
        .to_owned();

    // Act + assert: Bob tries every operation with Alice's ids.
    let read = app.gql_as(&bob, ORDER, json!({ "id": order })).await;
    assert_eq!(read, json!({ "data": { "order": null } }), "order(id)");

    let read = app.gql_as(&bob, PAYMENT, json!({ "id": payment })).await;
    assert_eq!(read, json!({ "data": { "payment": null } }), "payment(id)");

    let cancel = app.gql_as(&bob, CANCEL, json!({ "id": order })).await;
    assert_eq!(
        TestApp::error_code(&cancel).as_deref(),
        Some("NOT_FOUND"),
        "cancelOrder: {cancel}"
    );
    assert!(cancel["data"].is_null(), "{cancel}");

    let pay = app.create_payment(&bob, &order, "1", "bob-key").await;
    assert_eq!(
        TestApp::error_code(&pay).as_deref(),
        Some("NOT_FOUND"),
        "createPayment: {pay}"
    );
    // Alice's key does not replay Alice's payment for Bob either.
    let replay = app.create_payment(&bob, &order, "4", "alice-key").await;
    assert_eq!(
        TestApp::error_code(&replay).as_deref(),
        Some("NOT_FOUND"),
        "createPayment with Alice's key: {replay}"
    );
    assert!(replay["data"].is_null(), "{replay}");

    let bobs = my_order_ids(&app, &bob, None).await;
    assert_eq!(bobs, vec![json!(bobs_order)], "myOrders holds Bob's only");
    let after_alices = my_order_ids(&app, &bob, Some(&alices_cursor)).await;
    assert!(
        !after_alices.contains(&json!(order)),
        "a cursor from Alice's list shows Bob nothing of hers: {after_alices:?}"
    );

    // Alice's order and payment are unchanged.
    let order_after = app.gql_as(&alice, ORDER, json!({ "id": order })).await;
    let payment_after = app.gql_as(&alice, PAYMENT, json!({ "id": payment })).await;
    assert_eq!(order_after, order_before);
    assert_eq!(payment_after, payment_before);
    assert_eq!(order_after["data"]["order"]["status"], "PENDING");
    assert_eq!(payment_after["data"]["payment"]["status"], "PENDING");
    assert_eq!(
        my_order_ids(&app, &alice, None).await,
        vec![json!(order)],
        "Bob's order is not Alice's either"
    );
}

/// One operator operation with arguments that succeed for a holder of its permission.
struct Operation {
    permission: &'static str,
    query: &'static str,
    variables: Value,
}

impl Operation {
    fn name(&self) -> &str {
        self.query
            .split_once('{')
            .and_then(|(_, rest)| rest.trim().split(['(', ' ']).next())
            .unwrap_or(self.query)
    }
}

#[tokio::test]
async fn every_operator_operation_needs_its_own_permission_in_this_context() {
    // Arrange: a pending payment on Alice's order, a target user holding orders:write,
    // and a rate to replace.
    let app = spawn_app().await;
    app.set_rate("USD", "UAH", "41.25").await;
    let alice = app.sign_up().await.token;
    let order = app.order_id(&alice, "10").await;
    let payment = payment_id(&app, &alice, &order, "10", "full").await;
    let target = app.sign_up().await;
    let admin = app.operator(&["permissions:write"]).await;
    let granted = app
        .gql_as(
            &admin,
            "mutation($u: ID!) { grantPermission(userId: $u, permission: \"orders:write\") }",
            json!({ "u": target.id }),
        )
        .await;
    assert_eq!(granted["data"]["grantPermission"], true, "{granted}");

    let operations = [
        Operation {
            permission: "rates:write",
            query: "mutation($input: SetExchangeRateInput!) { setExchangeRate(input: $input) { rate } }",
            variables: json!({ "input": { "fromCurrency": "USD", "toCurrency": "UAH", "rate": "99" } }),
        },
        Operation {
            permission: "payments:write",
            query: "mutation($id: ID!) { settlePayment(id: $id, status: SUCCEEDED) { status } }",
            variables: json!({ "id": payment }),
        },
        Operation {
            permission: "orders:write",
            query: "mutation($id: ID!) { completeOrder(id: $id) { status } }",
            variables: json!({ "id": order }),
        },
        Operation {
            permission: "permissions:write",
            query: "mutation($u: ID!) { grantPermission(userId: $u, permission: \"analytics:read\") }",
            variables: json!({ "u": target.id }),
        },
        Operation {
            permission: "permissions:write",
            query: "mutation($u: ID!) { revokePermission(userId: $u, permission: \"orders:write\") }",
            variables: json!({ "u": target.id }),
        },
        Operation {
            permission: "analytics:read",
            query: "{ dailyAnalytics { date } }",
            variables: json!({}),
        },
    ];

    for op in &operations {
        let name = op.name();
        // Act: signed out, a plain user, a holder of every other permission, and a holder
        // of this permission in another context only.
        let signed_out = app.gql(op.query, op.variables.clone()).await;
        let plain = app.sign_up().await.token;
        let others: Vec<&str> = EVERY_PERMISSION
            .into_iter()
            .filter(|p| *p != op.permission)
            .collect();
        let other_permissions = app.operator(&others).await;
        let elsewhere = app.sign_up().await;
        for context in [ApplicationContext::Admin, ApplicationContext::Telegram] {
            app.grant_in_context(&elsewhere.id, op.permission, context)
                .await;
        }

        // Assert
        assert_eq!(
            TestApp::error_code(&signed_out).as_deref(),
            Some("UNAUTHENTICATED"),
            "{name} signed out: {signed_out}"
        );
        assert!(signed_out["data"].is_null(), "{name}: {signed_out}");
        for (who, token) in [
            ("a plain user", &plain),
            ("a holder of every other permission", &other_permissions),
            ("a holder in other contexts only", &elsewhere.token),
        ] {
            let body = app.gql_as(token, op.query, op.variables.clone()).await;
            assert_eq!(
                TestApp::error_code(&body).as_deref(),
                Some("FORBIDDEN"),
                "{name} as {who}: {body}"
            );
            assert!(body["data"].is_null(), "{name} as {who}: {body}");
        }
    }

    // Nothing was changed by the refused attempts.
    let rate = app
        .gql(
            r#"{ exchangeRate(from: "USD", to: "UAH") { rate } }"#,
            json!({}),
        )
        .await;
    assert_eq!(rate["data"]["exchangeRate"]["rate"], "41.25000000");
    let paid = app.gql_as(&alice, PAYMENT, json!({ "id": payment })).await;
    assert_eq!(paid["data"]["payment"]["status"], "PENDING", "{paid}");
    assert_eq!(
        paid["data"]["payment"]["order"]["status"], "PENDING",
        "{paid}"
    );
    let me = app
        .gql_as(&target.token, "{ me { permissions } }", json!({}))
        .await;
    assert_eq!(
        me["data"]["me"]["permissions"],
        json!(["orders:write"]),
        "{me}"
    );

    // And each operation works for a holder of its permission, so the arguments were valid
    // and only the permission was missing.
    for op in &operations {
        let holder = app.operator(&[op.permission]).await;
        let body = app.gql_as(&holder, op.query, op.variables.clone()).await;
        assert!(body["errors"].is_null(), "{}: {body}", op.name());
    }
    let done = app.gql_as(&alice, ORDER, json!({ "id": order })).await;
    assert_eq!(done["data"]["order"]["status"], "COMPLETED", "{done}");
    let me = app
        .gql_as(&target.token, "{ me { permissions } }", json!({}))
        .await;
    assert_eq!(
        me["data"]["me"]["permissions"],
        json!(["analytics:read"]),
        "{me}"
    );
}

#[tokio::test]
async fn the_same_idempotency_key_from_two_users_gives_two_payments() {
    // Arrange
    let app = spawn_app().await;
    app.set_rate("USD", "UAH", "41.25").await;
    let alice = app.sign_up().await.token;
    let bob = app.sign_up().await.token;
    let alices_order = app.order_id(&alice, "10").await;
    let bobs_order = app.order_id(&bob, "10").await;

    // Act
    let alices = app
        .create_payment(&alice, &alices_order, "3", "shared-key")
        .await;
    let bobs = app
        .create_payment(&bob, &bobs_order, "3", "shared-key")
        .await;
    let alices_again = app
        .create_payment(&alice, &alices_order, "3", "shared-key")
        .await;

    // Assert
    let alices_id = &alices["data"]["createPayment"]["id"];
    let bobs_id = &bobs["data"]["createPayment"]["id"];
    assert!(alices_id.is_string(), "{alices}");
    assert!(bobs_id.is_string(), "{bobs}");
    assert_ne!(alices_id, bobs_id, "keys are per user");
    assert_eq!(
        bobs["data"]["createPayment"]["order"]["id"],
        json!(bobs_order)
    );
    assert_eq!(
        &alices_again["data"]["createPayment"]["id"], alices_id,
        "the same user's key still replays"
    );
    let bobs_view = app.gql_as(&bob, PAYMENT, json!({ "id": alices_id })).await;
    assert_eq!(bobs_view["data"]["payment"], json!(null));
    for (token, order) in [(&alice, &alices_order), (&bob, &bobs_order)] {
        let body = app.gql_as(token, ORDER, json!({ "id": order })).await;
        let payments = body["data"]["order"]["payments"]
            .as_array()
            .expect("payments");
        assert_eq!(payments.len(), 1, "one payment each: {body}");
    }
}
