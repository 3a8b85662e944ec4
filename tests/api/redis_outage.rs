//! Sabotage (SPEC §4): the identity database is the source of truth and Redis only
//! the fast path. The test runs its own `redis-server` and freezes it with SIGSTOP halfway.
//! On both backends: on the embedded one the SQLite files stay and only the store is Redis.

use crate::helpers::{PASSWORD, TestApp, eventually, spawn_app_with_redis, token_hash};
use crate::redis_server::RedisServer;
use std::time::Duration;

#[tokio::test]
async fn with_redis_frozen_sign_in_and_sessions_work_from_the_database_and_recover() {
    // Arrange: a server over our own Redis, a signed-in user on the fast path.
    let redis = RedisServer::start().await;
    let app = spawn_app_with_redis(&redis.url).await;
    let user = app.sign_up().await;
    let first = user.token;
    assert_eq!(app.me_as(&first).await["email"], user.email.as_str());
    let session_key = |token: &str| app.stack.keys.session(&token_hash(token));
    assert!(
        redis.get(&session_key(&first)).await.is_some(),
        "the session is cached in Redis"
    );

    // Act: Redis stops answering.
    redis.freeze();

    // Assert: everything identity does still works, from the database.
    assert_eq!(app.me_as(&first).await["email"], user.email.as_str());
    let second = app.log_in(&user.email, PASSWORD).await.expect("signed in");
    assert_eq!(app.me_as(&second).await["email"], user.email.as_str());
    let newcomer = app.sign_up().await;
    assert_eq!(
        app.me_as(&newcomer.token).await["email"],
        newcomer.email.as_str()
    );
    let wrong = app
        .log_in(&user.email, "wrong password")
        .await
        .expect_err("refused");
    assert_eq!(
        TestApp::error_code(&wrong).as_deref(),
        Some("UNAUTHENTICATED")
    );
    let logout = app
        .gql_as(&first, "mutation { logout }", serde_json::json!({}))
        .await;
    assert_eq!(logout["data"]["logout"], true, "{logout}");
    assert_eq!(app.me_as(&first).await, serde_json::Value::Null);

    // Act: Redis comes back, still holding whatever it held when it froze.
    redis.thaw();

    // Assert: the session revoked during the outage stays refused, at once.
    assert_eq!(
        app.me_as(&first).await,
        serde_json::Value::Null,
        "a session revoked while Redis was down came back with Redis"
    );
    // The fast path recovers: a database read refills Redis again.
    redis.delete(&session_key(&second)).await;
    eventually(Duration::from_secs(15), "Redis is refilled", || async {
        app.me_as(&second).await["email"] == user.email.as_str()
            && redis.get(&session_key(&second)).await.is_some()
    })
    .await;
    let cached = redis.get(&session_key(&second)).await.unwrap();
    assert!(!cached.contains(&second), "raw token in Redis");
    assert_eq!(
        app.me_as(&first).await,
        serde_json::Value::Null,
        "the revoked session after recovery"
    );
    assert_eq!(
        app.me_as(&newcomer.token).await["email"],
        newcomer.email.as_str()
    );
}
