//! Orders: creation at a locked rate, transitions, expiry, the paginated list and its cache.

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Value, json};

const MY_ORDERS: &str = "query($first: Int, $after: String, $status: OrderStatus) { myOrders(first: $first, after: $after, status: $status) { edges { cursor node { id status amount } } pageInfo { hasNextPage endCursor } } }";

fn ids(body: &Value) -> Vec<String> {
    body["data"]["myOrders"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn create_order_locks_the_current_rate_and_rounds_half_even() {
    let app = spawn_app().await;
    let token = app.sign_up().await.token;
    app.set_rate("USD", "UAH", "41.12345678").await;
    for amount in ["100", "0.12345678", "9999999.99999999", "0.5"] {
        let body = app.create_order(&token, "USD", "UAH", amount).await;
        let order = &body["data"]["createOrder"];
        let a: Decimal = amount.parse().unwrap();
        let expected = (a * Decimal::new(4112345678, 8))
            .round_dp_with_strategy(8, RoundingStrategy::MidpointNearestEven);
        assert_eq!(
            order["toAmount"]
                .as_str()
                .unwrap()
                .parse::<Decimal>()
                .unwrap(),
            expected,
            "{body}"
        );
        assert_eq!(order["exchangeRate"], "41.12345678");
        assert_eq!(order["status"], "PENDING");
        assert_eq!(order["paidAmount"], "0.00000000");
        assert_eq!(
            order["remainingAmount"]
                .as_str()
                .unwrap()
                .parse::<Decimal>()
                .unwrap(),
            a
        );
    }
    // A later rate change does not touch existing orders.
    let id = app.order_id(&token, "10").await;
    app.set_rate("USD", "UAH", "50").await;
    let body = app
        .gql_as(
            &token,
            "query($id: ID!) { order(id: $id) { exchangeRate toAmount } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        body["data"]["order"],
        json!({ "exchangeRate": "41.12345678", "toAmount": "411.23456780" })
    );
}

#[tokio::test]
async fn create_order_without_a_rate_is_not_found_and_needs_a_session() {
    let app = spawn_app().await;
    let token = app.sign_up().await.token;
    let body = app.create_order(&token, "USD", "UAH", "1").await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("NOT_FOUND"),
        "{body}"
    );
    app.set_rate("USD", "UAH", "41").await;
    let anonymous = app
        .gql(
            "mutation { createOrder(input: {fromCurrency: \"USD\", toCurrency: \"UAH\", amount: \"1\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        TestApp::error_code(&anonymous).as_deref(),
        Some("UNAUTHENTICATED")
    );
}

#[tokio::test]
async fn bad_order_input_is_refused_and_creates_nothing() {
    let app = spawn_app().await;
    let token = app.sign_up().await.token;
    app.set_rate("USD", "UAH", "41").await;
    app.set_rate("AAA", "BBB", "0.00000001").await;
    let cases = [
        ("usd", "UAH", "1", "input.fromCurrency"),
        ("USD", "USD", "1", "input.toCurrency"),
        ("USD", "U", "1", "input.toCurrency"),
        ("USD", "UAH", "0", "input.amount"),
        ("USD", "UAH", "-5", "input.amount"),
        ("USD", "UAH", "1.123456789", "input.amount"),
        ("USD", "UAH", "10000000000", "input.amount"),
        ("USD", "UAH", "999999999", "input.amount"), // toAmount would not fit DECIMAL(18,8)
        ("AAA", "BBB", "0.00000001", "input.amount"), // converts to zero
    ];
    for (from, to, amount, field) in cases {
        let body = app.create_order(&token, from, to, amount).await;
        assert_eq!(
            TestApp::error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{from} {to} {amount}: {body}"
        );
        assert_eq!(
            TestApp::error_field(&body).as_deref(),
            Some(field),
            "{from} {to} {amount}: {body}"
        );
    }
    let number = app
        .gql_as(
            &token,
            "mutation { createOrder(input: {fromCurrency: \"USD\", toCurrency: \"UAH\", amount: 1.5}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        TestApp::error_code(&number).as_deref(),
        Some("BAD_USER_INPUT"),
        "{number}"
    );
    let list = app.gql_as(&token, MY_ORDERS, json!({})).await;
    assert!(ids(&list).is_empty(), "nothing was created: {list}");
}

#[tokio::test]
async fn cancel_is_only_for_a_pending_order_with_nothing_paid() {
    let app = spawn_app().await;
    let token = app.sign_up().await.token;
    let operator = app.operator(&["payments:write", "orders:write"]).await;
    app.set_rate("USD", "UAH", "41").await;

    let id = app.order_id(&token, "10").await;
    let cancel = "mutation($id: ID!) { cancelOrder(id: $id) { id status } }";
    let body = app.gql_as(&token, cancel, json!({ "id": id })).await;
    assert_eq!(body["data"]["cancelOrder"]["status"], "CANCELLED", "{body}");
    let again = app.gql_as(&token, cancel, json!({ "id": id })).await;
    assert_eq!(TestApp::error_code(&again).as_deref(), Some("CONFLICT"));

    // With a pending payment it cannot be cancelled; after it succeeded (paid) neither.
    let id = app.order_id(&token, "10").await;
    let payment = app.create_payment(&token, &id, "4", "k1").await;
    let body = app.gql_as(&token, cancel, json!({ "id": id })).await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("CONFLICT"),
        "{body}"
    );
    let pid = payment["data"]["createPayment"]["id"].as_str().unwrap();
    app.settle_payment(&operator, pid, "SUCCEEDED").await;
    let body = app.gql_as(&token, cancel, json!({ "id": id })).await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("CONFLICT"),
        "{body}"
    );

    let bad = app
        .gql_as(&token, cancel, json!({ "id": "not-a-uuid" }))
        .await;
    assert_eq!(TestApp::error_field(&bad).as_deref(), Some("id"));
    let unknown = app
        .gql_as(
            &token,
            cancel,
            json!({ "id": uuid::Uuid::now_v7().to_string() }),
        )
        .await;
    assert_eq!(TestApp::error_code(&unknown).as_deref(), Some("NOT_FOUND"));
}

#[tokio::test]
async fn orders_move_pending_paid_completed_and_nothing_else() {
    let app = spawn_app().await;
    let token = app.sign_up().await.token;
    let operator = app.operator(&["payments:write", "orders:write"]).await;
    app.set_rate("USD", "UAH", "41").await;
    let complete = "mutation($id: ID!) { completeOrder(id: $id) { status } }";

    let id = app.order_id(&token, "10").await;
    let early = app.gql_as(&operator, complete, json!({ "id": id })).await;
    assert_eq!(
        TestApp::error_code(&early).as_deref(),
        Some("CONFLICT"),
        "pending cannot complete: {early}"
    );

    let p1 = app.create_payment(&token, &id, "6", "a").await;
    let p2 = app.create_payment(&token, &id, "4", "b").await;
    let p1 = p1["data"]["createPayment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let p2 = p2["data"]["createPayment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let settled = app.settle_payment(&operator, &p1, "SUCCEEDED").await;
    assert_eq!(
        settled["data"]["settlePayment"]["order"]["status"],
        "PENDING"
    );
    assert_eq!(
        settled["data"]["settlePayment"]["order"]["remainingAmount"],
        "4.00000000"
    );
    let settled = app.settle_payment(&operator, &p2, "SUCCEEDED").await;
    assert_eq!(
        settled["data"]["settlePayment"]["order"]["status"], "PAID",
        "{settled}"
    );

    let done = app.gql_as(&operator, complete, json!({ "id": id })).await;
    assert_eq!(done["data"]["completeOrder"]["status"], "COMPLETED");
    let twice = app.gql_as(&operator, complete, json!({ "id": id })).await;
    assert_eq!(TestApp::error_code(&twice).as_deref(), Some("CONFLICT"));
    let cancel = app
        .gql_as(
            &token,
            "mutation($id: ID!) { cancelOrder(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(TestApp::error_code(&cancel).as_deref(), Some("CONFLICT"));
}

#[tokio::test]
async fn unpaid_orders_expire_after_their_window_but_not_under_a_pending_payment() {
    let app = spawn_app_with(|c| c.payment_window = std::time::Duration::from_secs(60)).await;
    let token = app.sign_up().await.token;
    app.set_rate("USD", "UAH", "41").await;
    let idle = app.order_id(&token, "10").await;
    let paying = app.order_id(&token, "10").await;
    let fresh = app.order_id(&token, "10").await;
    app.create_payment(&token, &paying, "5", "p").await;
    app.end_payment_window(&idle).await;
    app.end_payment_window(&paying).await;

    assert_eq!(app.sweep_expired_orders().await, 1);
    let status = |id: String| {
        let app = &app;
        let token = token.clone();
        async move {
            let body = app
                .gql_as(
                    &token,
                    "query($id: ID!) { order(id: $id) { status } }",
                    json!({ "id": id }),
                )
                .await;
            body["data"]["order"]["status"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(status(idle.clone()).await, "EXPIRED");
    assert_eq!(
        status(paying.clone()).await,
        "PENDING",
        "a pending payment holds the order"
    );
    assert_eq!(status(fresh.clone()).await, "PENDING");
    // An expired order takes no payment.
    let body = app.create_payment(&token, &idle, "1", "late").await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("CONFLICT"),
        "{body}"
    );
}

#[tokio::test]
async fn an_overdue_order_expires_when_touched_even_before_the_sweeper() {
    let app = spawn_app().await;
    let token = app.sign_up().await.token;
    app.set_rate("USD", "UAH", "41").await;
    let id = app.order_id(&token, "10").await;
    app.end_payment_window(&id).await;
    let body = app.create_payment(&token, &id, "1", "k").await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("CONFLICT"),
        "{body}"
    );
    let body = app
        .gql_as(
            &token,
            "query($id: ID!) { order(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(body["data"]["order"]["status"], "EXPIRED");
}

#[tokio::test]
async fn my_orders_pages_with_opaque_cursors_and_filters_by_status() {
    let app = spawn_app().await;
    let token = app.sign_up().await.token;
    app.set_rate("USD", "UAH", "41").await;
    let mut created = Vec::new();
    for i in 1..=7 {
        created.push(app.order_id(&token, &i.to_string()).await);
    }
    let cancelled = created[2].clone();
    app.gql_as(
        &token,
        "mutation($id: ID!) { cancelOrder(id: $id) { id } }",
        json!({ "id": cancelled }),
    )
    .await;
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    let page1 = app.gql_as(&token, MY_ORDERS, json!({ "first": 3 })).await;
    assert_eq!(ids(&page1), newest_first[0..3]);
    assert_eq!(page1["data"]["myOrders"]["pageInfo"]["hasNextPage"], true);
    let cursor = page1["data"]["myOrders"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!cursor.contains(&newest_first[2]), "cursors are opaque");

    // Orders created meanwhile appear before the first page, never shifting later pages.
    let newer = app.order_id(&token, "8").await;
    let page2 = app
        .gql_as(&token, MY_ORDERS, json!({ "first": 3, "after": cursor }))
        .await;
    assert_eq!(ids(&page2), newest_first[3..6]);
    let cursor = page2["data"]["myOrders"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let page3 = app
        .gql_as(&token, MY_ORDERS, json!({ "first": 3, "after": cursor }))
        .await;
    assert_eq!(ids(&page3), newest_first[6..]);
    assert_eq!(page3["data"]["myOrders"]["pageInfo"]["hasNextPage"], false);

    let first = app.gql_as(&token, MY_ORDERS, json!({})).await;
    assert_eq!(
        ids(&first)[0],
        newer,
        "the cached first page was dropped by the new order"
    );
    assert_eq!(ids(&first).len(), 8);

    let only_cancelled = app
        .gql_as(&token, MY_ORDERS, json!({ "status": "CANCELLED" }))
        .await;
    assert_eq!(ids(&only_cancelled), vec![cancelled]);

    for (vars, field) in [
        (json!({ "first": 0 }), "first"),
        (json!({ "first": 101 }), "first"),
        (json!({ "after": "garbage" }), "after"),
        (json!({ "after": "6f726465723a" }), "after"),
    ] {
        let body = app.gql_as(&token, MY_ORDERS, vars.clone()).await;
        assert_eq!(
            TestApp::error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{vars}: {body}"
        );
        assert_eq!(
            TestApp::error_field(&body).as_deref(),
            Some(field),
            "{vars}: {body}"
        );
    }
}

#[tokio::test]
async fn the_cached_first_page_is_dropped_by_every_write_to_the_users_orders_or_payments() {
    let app = spawn_app().await;
    let token = app.sign_up().await.token;
    let operator = app.operator(&["payments:write"]).await;
    app.set_rate("USD", "UAH", "41").await;
    let id = app.order_id(&token, "10").await;
    let q = "{ myOrders { edges { node { status paidAmount } } } }";
    let first = |body: Value| body["data"]["myOrders"]["edges"][0]["node"].clone();

    assert_eq!(
        first(app.gql_as(&token, q, json!({})).await)["paidAmount"],
        "0.00000000"
    );
    let payment = app.create_payment(&token, &id, "10", "k").await;
    let pid = payment["data"]["createPayment"]["id"].as_str().unwrap();
    assert_eq!(
        first(app.gql_as(&token, q, json!({})).await)["status"],
        "PENDING"
    );
    app.settle_payment(&operator, pid, "SUCCEEDED").await;
    let after = first(app.gql_as(&token, q, json!({})).await);
    assert_eq!(
        after,
        json!({ "status": "PAID", "paidAmount": "10.00000000" }),
        "stale cached page"
    );
}

#[tokio::test]
async fn listing_fifty_orders_with_payments_costs_a_constant_number_of_queries() {
    let app = spawn_app_with(|c| c.sweep_interval = std::time::Duration::from_secs(3600)).await;
    let token = app.sign_up().await.token;
    app.set_rate("USD", "UAH", "41").await;
    let q = "query($first: Int, $status: OrderStatus) { myOrders(first: $first, status: $status) { edges { node { id payments { id amount order { id } } } } } }";
    let mut counts = Vec::new();
    for n in [5, 50] {
        while app
            .gql_as(&token, q, json!({ "first": 100, "status": "PENDING" }))
            .await["data"]["myOrders"]["edges"]
            .as_array()
            .unwrap()
            .len()
            < n
        {
            let id = app.order_id(&token, "10").await;
            app.create_payment(&token, &id, "1", &uuid::Uuid::new_v4().to_string())
                .await;
            app.create_payment(&token, &id, "2", &uuid::Uuid::new_v4().to_string())
                .await;
        }
        let before = app.stack.dbs.web_statement_count();
        let body = app
            .gql_as(&token, q, json!({ "first": 50, "status": "PENDING" }))
            .await;
        let used = app.stack.dbs.web_statement_count() - before;
        let edges = body["data"]["myOrders"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), n);
        assert!(
            edges
                .iter()
                .all(|e| e["node"]["payments"].as_array().unwrap().len() == 2)
        );
        counts.push(used);
    }
    eprintln!("web database statements for 5 and 50 orders with payments: {counts:?}");
    assert_eq!(
        counts[0], counts[1],
        "query count grows with the page: {counts:?}"
    );
    assert!(counts[1] <= 3, "orders, payments, orders-by-id: {counts:?}");
}

#[tokio::test]
async fn an_idempotency_key_makes_create_order_safe_to_retry() {
    let app = spawn_app().await;
    app.set_rate("USD", "UAH", "41").await;
    let user = app.sign_up().await;
    let create = |amount: &'static str, key: &'static str| {
        app.gql_as(
            &user.token,
            "mutation($input: CreateOrderInput!) { createOrder(input: $input) { id exchangeRate amount } }",
            json!({ "input": { "fromCurrency": "USD", "toCurrency": "UAH", "amount": amount, "idempotencyKey": key } }),
        )
    };
    let first = create("10", "order-1").await;
    let id = first["data"]["createOrder"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The rate moves; the retry still gets the same order, at the rate it locked.
    app.set_rate("USD", "UAH", "42").await;
    let again = create("10", "order-1").await;
    assert_eq!(again["data"]["createOrder"]["id"], id.as_str(), "{again}");
    assert_eq!(again["data"]["createOrder"]["exchangeRate"], "41.00000000");
    let other = create("11", "order-1").await;
    assert_eq!(
        TestApp::error_code(&other).as_deref(),
        Some("CONFLICT"),
        "{other}"
    );
    let bad = create("10", " ").await;
    assert_eq!(
        TestApp::error_field(&bad).as_deref(),
        Some("input.idempotencyKey")
    );
    // Concurrent retries of one key place one order.
    let racing = futures_util::future::join_all((0..8).map(|_| create("5", "order-2"))).await;
    let ids: std::collections::HashSet<_> = racing
        .iter()
        .map(|b| {
            b["data"]["createOrder"]["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{b}"))
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{racing:?}");
    let all = app
        .gql_as(
            &user.token,
            "{ myOrders(first: 100) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        all["data"]["myOrders"]["edges"].as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn an_order_never_locks_a_rate_the_database_has_closed() {
    // Arrange: the rate is cached, then closed behind the cache's back (as a write another
    // process made while its invalidation was lost would leave it).
    let app = spawn_app().await;
    app.set_rate("USD", "UAH", "41").await;
    let user = app.sign_up().await;
    let rate = app
        .gql(
            r#"{ exchangeRate(from: "USD", to: "UAH") { id rate } }"#,
            json!({}),
        )
        .await;
    assert_eq!(rate["data"]["exchangeRate"]["rate"], "41.00000000");
    app.replace_rate_behind_the_cache("USD", "UAH", "45").await;

    // Act
    let order = app.create_order(&user.token, "USD", "UAH", "10").await;

    // Assert: the order has the rate valid in the database.
    assert_eq!(
        order["data"]["createOrder"]["exchangeRate"], "45.00000000",
        "{order}"
    );
}
