//! One system, not one process (SPEC §1, §4): several server instances over the same
//! databases and Redis (standalone or cluster, as the pass runs; on the embedded backend the
//! SQLite files are shared and the store is a Redis of the test's own), the command line
//! beside a running server, a frozen Redis, and a writer that dies.

use crate::helpers::{
    Backend, TestApp, backend, eventually, spawn_app, spawn_app_with, spawn_app_with_redis,
    spawn_app_with_redis_and, subscriber,
};
use crate::process::exchanger;
use crate::redis_server::RedisServer;
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const RATE: &str = r#"{ exchangeRate(from: "USD", to: "UAH") { rate } }"#;
const SET_RATE: &str = "mutation($r: Decimal!) { setExchangeRate(input: {fromCurrency: \"USD\", toCurrency: \"UAH\", rate: $r}) { id } }";
const PERMISSIONS: &str = "{ me { permissions } }";

/// The first instance of a multi-instance test: on the postgres passes the suite's Redis
/// (or cluster); on the embedded backend a Redis of its own (returned, to keep it running).
async fn first_instance() -> (Option<RedisServer>, TestApp) {
    first_instance_with(|_| {}).await
}

/// `first_instance` after `customise` changed the configuration.
async fn first_instance_with(
    customise: impl FnOnce(&mut exchanger::config::Config),
) -> (Option<RedisServer>, TestApp) {
    match backend() {
        Backend::Postgres { .. } => (None, spawn_app_with(customise).await),
        Backend::Embedded => {
            let redis = RedisServer::start().await;
            let app = spawn_app_with_redis_and(&redis.url, customise).await;
            (Some(redis), app)
        }
    }
}

async fn rate_on(app: &TestApp) -> Value {
    app.gql(RATE, json!({})).await["data"]["exchangeRate"]["rate"].clone()
}

#[tokio::test]
async fn revocations_permissions_and_rates_are_seen_by_every_instance_at_once() {
    // Arrange: two instances, each with the session, the user and the rate cached.
    let (_redis, a) = first_instance().await;
    let b = a.another_instance().await;
    a.set_rate("USD", "UAH", "41").await;
    let user = a.sign_up().await;
    let admin = a.operator(&["permissions:write", "rates:write"]).await;
    for app in [&a, &b] {
        assert_eq!(app.me_as(&user.token).await["email"], user.email.as_str());
        assert_eq!(rate_on(app).await, "41.00000000");
    }

    // Act + assert: each write on A is seen by B on its very next request.
    let grant = "mutation($u: ID!) { grantPermission(userId: $u, permission: \"orders:write\") }";
    let granted = a.gql_as(&admin, grant, json!({ "u": user.id })).await;
    assert_eq!(granted["data"]["grantPermission"], true, "{granted}");
    let seen = b.gql_as(&user.token, PERMISSIONS, json!({})).await;
    assert_eq!(seen["data"]["me"]["permissions"], json!(["orders:write"]));

    let set = a.gql_as(&admin, SET_RATE, json!({ "r": "42" })).await;
    assert!(set["errors"].is_null(), "{set}");
    assert_eq!(rate_on(&b).await, "42.00000000");

    let out = a
        .gql_as(&user.token, "mutation { logout }", json!({}))
        .await;
    assert_eq!(out["data"]["logout"], true);
    assert_eq!(b.me_as(&user.token).await, Value::Null);
}

#[tokio::test]
async fn writes_made_while_redis_is_frozen_are_never_served_stale_once_it_answers() {
    // Arrange: our own Redis, instances A and B over it, everything cached on B.
    let redis = RedisServer::start().await;
    let a = spawn_app_with_redis(&redis.url).await;
    let b = a.another_instance().await;
    a.set_rate("USD", "UAH", "41").await;
    let user = a.sign_up().await;
    let operator = a.operator(&["rates:write"]).await;
    let admin = a.operator(&["permissions:write", "rates:write"]).await;
    let operator_id = b.gql_as(&operator, "{ me { id } }", json!({})).await["data"]["me"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(b.me_as(&user.token).await["email"], user.email.as_str());
    assert_eq!(rate_on(&b).await, "41.00000000");
    let before = b.gql_as(&operator, PERMISSIONS, json!({})).await;
    assert_eq!(before["data"]["me"]["permissions"], json!(["rates:write"]));

    // Act: Redis stops answering; on A, a logout, a revocation and a new rate.
    redis.freeze();
    let out = a
        .gql_as(&user.token, "mutation { logout }", json!({}))
        .await;
    assert_eq!(out["data"]["logout"], true, "{out}");
    let revoke = "mutation($u: ID!) { revokePermission(userId: $u, permission: \"rates:write\") }";
    let revoked = a.gql_as(&admin, revoke, json!({ "u": operator_id })).await;
    assert_eq!(revoked["data"]["revokePermission"], true, "{revoked}");
    let set = a.gql_as(&admin, SET_RATE, json!({ "r": "43" })).await;
    assert!(set["errors"].is_null(), "{set}");
    // The writer dies before Redis answers again.
    drop(a);
    redis.thaw();

    // Assert: B never serves what A changed, from the moment Redis answers, and neither
    // does an instance started afterwards.
    let c = b.another_instance().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        for app in [&b, &c] {
            assert_eq!(
                app.me_as(&user.token).await,
                Value::Null,
                "a revoked session was served"
            );
            let permissions = app.gql_as(&operator, PERMISSIONS, json!({})).await;
            assert_eq!(
                permissions["data"]["me"]["permissions"],
                json!([]),
                "{permissions}"
            );
            assert_eq!(rate_on(app).await, "43.00000000", "an old rate was served");
        }
    }
    // And the fast path is back: B fills Redis again.
    eventually(
        Duration::from_secs(15),
        "B caches sessions in Redis again",
        || async {
            let other = b.sign_up().await;
            b.me_as(&other.token).await;
            b.cached_session(&other.token).await.is_some()
        },
    )
    .await;
}

#[tokio::test]
async fn rate_events_reach_every_subscriber_of_every_instance_once() {
    // Arrange: two instances with 50 subscribers each.
    let (_redis, a) = first_instance().await;
    let b = a.another_instance().await;
    let operator = a.operator(&["rates:write"]).await;
    let mut sockets = Vec::new();
    for app in [&a, &b] {
        for _ in 0..50 {
            sockets.push(subscriber(app).await);
        }
    }
    // The subscriptions are live once a rate set now reaches all of them.
    let set = |app: &TestApp, rate: &'static str| {
        let operator = operator.clone();
        let app_address = app.address.clone();
        async move {
            let body = reqwest::Client::new()
                .post(format!("{app_address}/graphql"))
                .bearer_auth(operator)
                .json(&json!({ "query": SET_RATE, "variables": { "r": rate } }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap();
            assert!(body["errors"].is_null(), "{body}");
        }
    };

    // Act: a rate through A, one through B, one through the command line.
    set(&a, "40.1").await;
    set(&b, "40.2").await;
    let cli = exchanger(&a)
        .args(["rates", "set", "USD", "UAH", "40.3"])
        .output()
        .await
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );

    // Assert: every subscriber gets the three rates, once each, in order.
    let expected = ["40.10000000", "40.20000000", "40.30000000"];
    for (i, socket) in sockets.iter_mut().enumerate() {
        let mut got = Vec::new();
        while got.len() < expected.len() {
            let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .unwrap_or_else(|_| panic!("subscriber {i} got only {got:?}"))
                .unwrap()
                .unwrap();
            if let Message::Text(text) = frame {
                let message: Value = serde_json::from_str(&text).unwrap();
                if message["type"] == "next" {
                    got.push(message["payload"]["data"]["rateChanged"]["rate"].clone());
                }
            }
        }
        assert_eq!(got, expected, "subscriber {i}");
    }
    // Nothing more arrives (no second copy of any event), on any socket.
    let more = futures_util::future::join_all(
        sockets
            .iter_mut()
            .map(|socket| tokio::time::timeout(Duration::from_millis(500), socket.next())),
    )
    .await;
    assert!(more.iter().all(Result::is_err), "an event arrived twice");
}

#[tokio::test]
async fn the_sweeper_expires_each_due_order_once_across_three_instances() {
    // Arrange: 300 orders past their payment window, then three instances sweeping (every
    // instance sweeps often: one holding the lease keeps it for two of its rounds).
    let sweep = Duration::from_millis(200);
    let (_redis, a) = first_instance_with(|c| c.sweep_interval = sweep).await;
    a.set_rate("USD", "UAH", "41").await;
    let user = a.sign_up().await;
    let user_id = uuid::Uuid::parse_str(&user.id).unwrap();
    let pair = exchanger::domain::CurrencyPair::parse("from", "USD", "to", "UAH").unwrap();
    let amount = exchanger::domain::Money::parse("amount", "10".parse().unwrap()).unwrap();
    for _ in 0..300 {
        a.stack
            .orders
            .create(user_id, pair.clone(), amount, None)
            .await
            .unwrap();
    }
    a.end_payment_windows_of(user_id).await;
    let sweepers = [
        a.another_instance().await,
        a.another_instance().await,
        a.another_instance().await,
    ];

    // Assert: all expire, each exactly once (one EXPIRED transition, one event).
    let expired = "{ myOrders(first: 100, status: EXPIRED) { edges { node { id } } pageInfo { hasNextPage } } }";
    eventually(
        Duration::from_secs(60),
        "all 300 orders expired",
        || async {
            let pending = a
                .gql_as(
                    &user.token,
                    "{ myOrders(first: 1, status: PENDING) { edges { node { id } } } }",
                    json!({}),
                )
                .await;
            pending["data"]["myOrders"]["edges"] == json!([])
        },
    )
    .await;
    let first = a.gql_as(&user.token, expired, json!({})).await;
    assert_eq!(
        first["data"]["myOrders"]["edges"].as_array().unwrap().len(),
        100
    );
    assert_eq!(a.events_of_type("order_expired").await, 300);
    drop(sweepers);
}

#[tokio::test]
async fn readyz_answers_503_within_a_second_while_redis_is_frozen() {
    let redis = RedisServer::start().await;
    let app = spawn_app_with_redis(&redis.url).await;
    let client = reqwest::Client::new();
    let ready = client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    redis.freeze();
    let started = Instant::now();
    let frozen = client
        .get(format!("{}/readyz", app.address))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("an answer, not a hang");
    let took = started.elapsed();
    redis.thaw();
    assert_eq!(frozen.status(), 503);
    let body: Value = frozen.json().await.unwrap();
    assert_eq!(body["store"], "unavailable", "{body}");
    eprintln!("/readyz answered in {took:?} with Redis frozen");
}

#[tokio::test]
async fn command_line_changes_reach_a_running_server_on_its_next_request() {
    // Arrange: a running server (on the embedded default: the store lives in it) with the
    // rate and the user cached.
    let app = spawn_app().await;
    app.set_rate("USD", "UAH", "41.25").await;
    let user = app.sign_up().await;
    assert_eq!(rate_on(&app).await, "41.25000000");
    assert_eq!(
        app.gql_as(&user.token, PERMISSIONS, json!({})).await["data"]["me"]["permissions"],
        json!([])
    );

    // Act
    for args in [
        vec!["rates", "set", "USD", "UAH", "42"],
        vec!["grant", &user.email, "orders:write"],
    ] {
        let out = exchanger(&app).args(&args).output().await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Assert: the very next requests see both, and an order locks the new rate.
    assert_eq!(rate_on(&app).await, "42.00000000");
    assert_eq!(
        app.gql_as(&user.token, PERMISSIONS, json!({})).await["data"]["me"]["permissions"],
        json!(["orders:write"])
    );
    let order = app.create_order(&user.token, "USD", "UAH", "10").await;
    assert_eq!(
        order["data"]["createOrder"]["exchangeRate"], "42.00000000",
        "{order}"
    );
    let out = exchanger(&app)
        .args(["revoke", &user.email, "orders:write"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        app.gql_as(&user.token, PERMISSIONS, json!({})).await["data"]["me"]["permissions"],
        json!([])
    );
}
