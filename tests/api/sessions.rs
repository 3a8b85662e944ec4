//! Sessions (SPEC §3–§4): logout, logoutAll, mySessions, revokeSession,
//! changePassword, expiry, and the failed-login limits.

use crate::helpers::{ME, PASSWORD, SignUp, TestApp, spawn_app, spawn_app_with, unique_email};
use serde_json::json;

const SESSIONS: &str =
    "{ mySessions { id current createdAt expiresAt userAgent ipAddress lastSeenAt } }";
const REVOKE: &str = "mutation($id: ID!) { revokeSession(id: $id) }";
const CHANGE: &str =
    "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";

/// Sessions of the holder of `token`, as `mySessions` lists them.
async fn sessions_of(app: &TestApp, token: &str) -> Vec<serde_json::Value> {
    let body = app.gql_as(token, SESSIONS, json!({})).await;
    body["data"]["mySessions"]
        .as_array()
        .unwrap_or_else(|| panic!("mySessions failed: {body}"))
        .clone()
}

#[tokio::test]
async fn logout_ends_the_session_at_once_and_clears_the_cookie() {
    // Arrange
    let app = spawn_app().await;
    let user = app
        .sign_up_with(SignUp {
            client: Some(&app.client),
            ..SignUp::default()
        })
        .await;
    let other = app.log_in(&user.email, PASSWORD).await.expect("signed in");
    let by_cookie = app.request(ME).client(&app.client).send().await;
    assert!(!by_cookie["data"]["me"].is_null()); // cached

    // Act
    let (headers, body) = app
        .request("mutation { logout }")
        .client(&app.client)
        .send_with_headers()
        .await;

    // Assert
    assert_eq!(body, json!({ "data": { "logout": true } }));
    let cleared = headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("exchanger_session="))
        .expect("the cookie is cleared");
    assert!(cleared.starts_with("exchanger_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let by_cookie = app.request(ME).client(&app.client).send().await;
    assert_eq!(by_cookie["data"]["me"], json!(null));
    assert_eq!(
        app.me_as(&user.token).await,
        json!(null),
        "the token is refused"
    );
    assert!(!app.me_as(&other).await.is_null(), "other sessions go on");
}

#[tokio::test]
async fn logout_when_signed_out_answers_false() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let body = app.gql("mutation { logout }", json!({})).await;

    // Assert
    assert_eq!(body, json!({ "data": { "logout": false } }));
}

#[tokio::test]
async fn logout_all_returns_the_count_and_every_token_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let user = app.sign_up().await;
    let first = user.token;
    let second = app.log_in(&user.email, PASSWORD).await.expect("signed in");
    let third = app.log_in(&user.email, PASSWORD).await.expect("signed in");
    let stranger = app.sign_up().await.token;
    for token in [&first, &second, &third] {
        assert!(!app.me_as(token).await.is_null()); // cached
    }

    // Act
    let body = app
        .gql_as(&second, "mutation { logoutAll }", json!({}))
        .await;

    // Assert
    assert_eq!(body, json!({ "data": { "logoutAll": 3 } }));
    for token in [&first, &second, &third] {
        assert_eq!(app.me_as(token).await, json!(null));
    }
    assert!(!app.me_as(&stranger).await.is_null(), "other users stay in");
    let again = app
        .gql_as(&second, "mutation { logoutAll }", json!({}))
        .await;
    assert_eq!(
        TestApp::error_code(&again).as_deref(),
        Some("UNAUTHENTICATED")
    );
}

#[tokio::test]
async fn my_sessions_lists_the_callers_sessions_with_only_the_callers_marked_current() {
    // Arrange
    let app = spawn_app().await;
    let user = app.sign_up().await;
    let first = user.token;
    let second = app.log_in(&user.email, PASSWORD).await.expect("signed in");
    app.sign_up().await; // someone else's session

    // Act
    let seen_by_first = sessions_of(&app, &first).await;
    let seen_by_second = sessions_of(&app, &second).await;
    let signed_out = app.gql(SESSIONS, json!({})).await;

    // Assert
    assert_eq!(seen_by_first.len(), 2);
    let current = |list: &[serde_json::Value]| {
        list.iter()
            .filter(|s| s["current"] == true)
            .map(|s| s["id"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(current(&seen_by_first).len(), 1);
    assert_eq!(current(&seen_by_second).len(), 1);
    assert_ne!(current(&seen_by_first), current(&seen_by_second));
    for s in &seen_by_first {
        assert_eq!(s["ipAddress"], "127.0.0.1");
        assert!(s["expiresAt"].as_str().unwrap() > s["createdAt"].as_str().unwrap());
        uuid::Uuid::parse_str(s["id"].as_str().unwrap()).expect("a UUID id");
    }
    assert_eq!(
        TestApp::error_code(&signed_out).as_deref(),
        Some("UNAUTHENTICATED")
    );
}

#[tokio::test]
async fn revoke_session_ends_one_of_the_callers_own_sessions() {
    // Arrange
    let app = spawn_app().await;
    let user = app.sign_up().await;
    let keeper = user.token;
    let doomed = app.log_in(&user.email, PASSWORD).await.expect("signed in");
    assert!(!app.me_as(&doomed).await.is_null()); // cached
    let doomed_id = sessions_of(&app, &doomed)
        .await
        .into_iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .clone();

    // Act
    let body = app
        .gql_as(&keeper, REVOKE, json!({ "id": doomed_id }))
        .await;

    // Assert
    assert_eq!(body, json!({ "data": { "revokeSession": true } }));
    assert_eq!(app.me_as(&doomed).await, json!(null));
    assert!(!app.me_as(&keeper).await.is_null());
    let listed = sessions_of(&app, &keeper).await;
    assert_eq!(listed.len(), 1);
    assert_ne!(listed[0]["id"], doomed_id);
    let again = app
        .gql_as(&keeper, REVOKE, json!({ "id": doomed_id }))
        .await;
    assert_eq!(TestApp::error_code(&again).as_deref(), Some("NOT_FOUND"));
}

#[tokio::test]
async fn revoke_session_of_another_user_is_not_found_and_that_session_goes_on() {
    // Arrange
    let app = spawn_app().await;
    let attacker = app.sign_up().await.token;
    let victim = app.sign_up().await.token;
    let victim_session = sessions_of(&app, &victim).await[0]["id"].clone();

    // Act
    let body = app
        .gql_as(&attacker, REVOKE, json!({ "id": victim_session }))
        .await;

    // Assert
    assert_eq!(TestApp::error_code(&body).as_deref(), Some("NOT_FOUND"));
    assert!(!app.me_as(&victim).await.is_null());
    assert_eq!(sessions_of(&app, &victim).await.len(), 1);
}

#[tokio::test]
async fn revoke_session_with_a_malformed_id_is_bad_user_input_on_id() {
    // Arrange
    let app = spawn_app().await;
    let token = app.sign_up().await.token;

    // Act
    let body = app.gql_as(&token, REVOKE, json!({ "id": "nope" })).await;
    let signed_out = app.gql(REVOKE, json!({ "id": uuid::Uuid::new_v4() })).await;

    // Assert
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("BAD_USER_INPUT")
    );
    assert_eq!(TestApp::error_field(&body).as_deref(), Some("id"));
    assert_eq!(
        TestApp::error_code(&signed_out).as_deref(),
        Some("UNAUTHENTICATED")
    );
    assert!(!app.me_as(&token).await.is_null());
}

#[tokio::test]
async fn change_password_ends_the_other_sessions_at_once_and_keeps_the_current_one() {
    // Arrange
    let app = spawn_app().await;
    let user = app.sign_up().await;
    let current = user.token;
    let other = app.log_in(&user.email, PASSWORD).await.expect("signed in");
    assert!(!app.me_as(&other).await.is_null()); // cached

    // Act
    let body = app
        .gql_as(
            &current,
            CHANGE,
            json!({ "c": PASSWORD, "n": "a brand new password" }),
        )
        .await;

    // Assert
    assert_eq!(body, json!({ "data": { "changePassword": true } }));
    assert_eq!(app.me_as(&other).await, json!(null));
    assert!(!app.me_as(&current).await.is_null());
    assert_eq!(sessions_of(&app, &current).await.len(), 1);
    let old = app
        .log_in(&user.email, PASSWORD)
        .await
        .expect_err("the old password is refused");
    assert_eq!(
        TestApp::error_code(&old).as_deref(),
        Some("UNAUTHENTICATED")
    );
    app.log_in(&user.email, "a brand new password")
        .await
        .expect("the new password works");
}

#[tokio::test]
async fn change_password_with_a_wrong_current_password_is_bad_user_input_and_changes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let user = app.sign_up().await;
    let current = user.token;
    let other = app.log_in(&user.email, PASSWORD).await.expect("signed in");

    // Act
    let body = app
        .gql_as(
            &current,
            CHANGE,
            json!({ "c": "not the password", "n": "a brand new password" }),
        )
        .await;

    // Assert
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("BAD_USER_INPUT")
    );
    assert_eq!(
        TestApp::error_field(&body).as_deref(),
        Some("currentPassword")
    );
    assert!(!app.me_as(&other).await.is_null());
    app.log_in(&user.email, PASSWORD)
        .await
        .expect("the password is unchanged");
}

#[tokio::test]
async fn change_password_refuses_a_bad_new_password_and_changes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let user = app.sign_up().await;
    let current = user.token;
    let other = app.log_in(&user.email, PASSWORD).await.expect("signed in");

    for bad in ["1234567".to_owned(), "x".repeat(129)] {
        // Act
        let body = app
            .gql_as(&current, CHANGE, json!({ "c": PASSWORD, "n": bad }))
            .await;

        // Assert
        assert_eq!(
            TestApp::error_code(&body).as_deref(),
            Some("BAD_USER_INPUT")
        );
        assert_eq!(TestApp::error_field(&body).as_deref(), Some("newPassword"));
        assert!(!app.me_as(&other).await.is_null());
    }
    let signed_out = app
        .gql(
            CHANGE,
            json!({ "c": PASSWORD, "n": "a brand new password" }),
        )
        .await;
    assert_eq!(
        TestApp::error_code(&signed_out).as_deref(),
        Some("UNAUTHENTICATED")
    );
    app.log_in(&user.email, PASSWORD)
        .await
        .expect("the password is unchanged");
}

#[tokio::test]
async fn an_expired_session_is_refused_even_while_its_cache_entry_remains() {
    // Arrange
    let app = spawn_app().await;
    let token = app.sign_up().await.token;
    assert!(!app.me_as(&token).await.is_null());
    assert!(app.cached_session(&token).await.is_some(), "cached");

    // Act
    app.expire_session(&token).await;

    // Assert
    assert!(
        app.cached_session(&token).await.is_some(),
        "the cache entry is still there"
    );
    assert_eq!(app.me_as(&token).await, json!(null));
    let body = app.gql_as(&token, SESSIONS, json!({})).await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("UNAUTHENTICATED")
    );
}

#[tokio::test]
async fn an_expired_session_is_refused_from_the_database_when_nothing_is_cached() {
    // Arrange
    let app = spawn_app().await;
    let user = app.sign_up().await;
    let other = app.log_in(&user.email, PASSWORD).await.expect("signed in");
    app.stack
        .cache
        .store()
        .delete(
            &app.stack
                .keys
                .session(&crate::helpers::token_hash(&user.token)),
        )
        .await
        .unwrap();
    assert!(app.cached_session(&user.token).await.is_none());

    // Act
    app.expire_session(&user.token).await;

    // Assert
    assert_eq!(app.me_as(&user.token).await, json!(null));
    let listed = sessions_of(&app, &other).await;
    assert_eq!(listed.len(), 1, "the expired session is not listed");
}

#[tokio::test]
async fn failed_logins_are_limited_per_account_then_per_client_address() {
    // Arrange
    let app = spawn_app_with(|c| {
        c.login_limits.per_account = 3;
        c.login_limits.per_ip = 5;
    })
    .await;
    let alice = app.sign_up().await.email;
    let bob = app.sign_up().await.email;

    // Act: three failures lock Alice's account.
    for _ in 0..3 {
        let body = app
            .log_in(&alice, "wrong password")
            .await
            .expect_err("refused");
        assert_eq!(
            TestApp::error_code(&body).as_deref(),
            Some("UNAUTHENTICATED")
        );
    }
    let locked = app.log_in(&alice, PASSWORD).await.expect_err("refused");

    // Assert
    assert_eq!(
        TestApp::error_code(&locked).as_deref(),
        Some("RATE_LIMITED"),
        "{locked}"
    );
    let retry_after = locked["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .expect("integer retryAfter");
    assert!(retry_after > 0 && retry_after <= 900, "{retry_after}");
    assert_eq!(locked["data"], json!(null));

    // Bob, from the same address, is not blocked by Alice's lock...
    let bob_in = app.log_in(&bob, PASSWORD).await.expect("signed in");
    assert!(!app.me_as(&bob_in).await.is_null());
    let body = app
        .log_in(&bob, "wrong password")
        .await
        .expect_err("refused");
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("UNAUTHENTICATED")
    );
    let body = app
        .log_in(&bob, "wrong password")
        .await
        .expect_err("refused");
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("UNAUTHENTICATED")
    );

    // ...until the address has failed five times (3 for Alice + 2 for Bob).
    let blocked = app.log_in(&bob, PASSWORD).await.expect_err("refused");
    assert_eq!(
        TestApp::error_code(&blocked).as_deref(),
        Some("RATE_LIMITED"),
        "{blocked}"
    );
    assert!(blocked["errors"][0]["extensions"]["retryAfter"].as_u64() > Some(0));
    let stranger = app
        .log_in(&unique_email(), PASSWORD)
        .await
        .expect_err("refused");
    assert_eq!(
        TestApp::error_code(&stranger).as_deref(),
        Some("RATE_LIMITED")
    );
}

#[tokio::test]
async fn concurrent_failed_logins_cannot_get_past_the_limit() {
    // Arrange
    let app = spawn_app_with(|c| {
        c.login_limits.per_account = 3;
        c.login_limits.per_ip = 1000;
    })
    .await;
    let email = app.sign_up().await.email;

    // Act: a burst of guesses at once.
    let attempts = (0..12).map(|i| {
        let app = &app;
        let email = email.clone();
        async move {
            app.log_in(&email, &format!("guess number {i}"))
                .await
                .expect_err("refused")
        }
    });
    let bodies = futures_util::future::join_all(attempts).await;

    // Assert
    let checked = bodies
        .iter()
        .filter(|b| TestApp::error_code(b).as_deref() == Some("UNAUTHENTICATED"))
        .count();
    let limited = bodies
        .iter()
        .filter(|b| TestApp::error_code(b).as_deref() == Some("RATE_LIMITED"))
        .count();
    assert_eq!(checked + limited, bodies.len(), "{bodies:?}");
    assert!(
        checked <= 3,
        "{checked} passwords were checked against a limit of 3"
    );
    let after = app.log_in(&email, PASSWORD).await.expect_err("refused");
    assert_eq!(TestApp::error_code(&after).as_deref(), Some("RATE_LIMITED"));
}

#[tokio::test]
async fn a_successful_login_does_not_count_against_the_limits() {
    // Arrange
    let app = spawn_app_with(|c| {
        c.login_limits.per_account = 2;
        c.login_limits.per_ip = 2;
    })
    .await;
    let email = app.sign_up().await.email;

    // Act
    for _ in 0..5 {
        app.log_in(&email, PASSWORD).await.expect("signed in");
    }
    let wrong = app
        .log_in(&email, "wrong password")
        .await
        .expect_err("refused");

    // Assert
    assert_eq!(
        TestApp::error_code(&wrong).as_deref(),
        Some("UNAUTHENTICATED"),
        "{wrong}"
    );
    app.log_in(&email, PASSWORD)
        .await
        .expect("the right password still works");
}
