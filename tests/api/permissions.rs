//! Permissions and application contexts (SPEC §1, §3–§4): grantPermission /
//! revokePermission, the user cache they drop, and two contexts over the same databases and
//! store that never accept each other's sessions or permissions.

use crate::helpers::{PASSWORD, TestApp, spawn_app, token_hash, unique_email};
use exchanger::context::ApplicationContext;
use exchanger::domain::SessionToken;
use exchanger::domain::{Email, Password, Permission};
use exchanger::identity::ClientInfo;
use serde_json::json;

const GRANT: &str =
    "mutation($u: ID!, $p: String!) { grantPermission(userId: $u, permission: $p) }";
const REVOKE: &str =
    "mutation($u: ID!, $p: String!) { revokePermission(userId: $u, permission: $p) }";
const SET_RATE: &str =
    "mutation($input: SetExchangeRateInput!) { setExchangeRate(input: $input) { rate } }";

fn rate_input() -> serde_json::Value {
    json!({ "input": { "fromCurrency": "USD", "toCurrency": "UAH", "rate": "41.25" } })
}

#[tokio::test]
async fn granting_and_revoking_need_permissions_write() {
    // Arrange
    let app = spawn_app().await;
    let target = app.sign_up().await.id;
    let user = app.sign_up().await.token;
    let other_operator = app.operator(&["rates:write"]).await;
    let vars = json!({ "u": target, "p": "rates:write" });

    for mutation in [GRANT, REVOKE] {
        // Act
        let anonymous = app.gql(mutation, vars.clone()).await;
        let plain = app.gql_as(&user, mutation, vars.clone()).await;
        let wrong = app.gql_as(&other_operator, mutation, vars.clone()).await;

        // Assert
        assert_eq!(
            TestApp::error_code(&anonymous).as_deref(),
            Some("UNAUTHENTICATED")
        );
        assert_eq!(TestApp::error_code(&plain).as_deref(), Some("FORBIDDEN"));
        assert_eq!(TestApp::error_code(&wrong).as_deref(), Some("FORBIDDEN"));
    }
    let user_id = uuid::Uuid::parse_str(&target).unwrap();
    let permissions = app.stack.users.user(user_id).await.unwrap().unwrap();
    assert!(permissions.permissions.is_empty(), "nothing was granted");
}

#[tokio::test]
async fn a_grant_shows_in_the_targets_me_at_once_and_a_revoke_removes_it_at_once() {
    // Arrange
    let app = spawn_app().await;
    let admin = app.operator(&["permissions:write"]).await;
    let target = app.sign_up().await;
    assert_eq!(app.me_as(&target.token).await["permissions"], json!([])); // cached
    let vars = json!({ "u": target.id, "p": "rates:write" });

    // Act
    let granted = app.gql_as(&admin, GRANT, vars.clone()).await;

    // Assert
    assert_eq!(granted, json!({ "data": { "grantPermission": true } }));
    assert_eq!(
        app.me_as(&target.token).await["permissions"],
        json!(["rates:write"])
    );
    let set = app.gql_as(&target.token, SET_RATE, rate_input()).await;
    assert!(set["errors"].is_null(), "{set}");
    let twice = app.gql_as(&admin, GRANT, vars.clone()).await;
    assert_eq!(twice, json!({ "data": { "grantPermission": false } }));

    // Act
    let revoked = app.gql_as(&admin, REVOKE, vars.clone()).await;

    // Assert
    assert_eq!(revoked, json!({ "data": { "revokePermission": true } }));
    assert_eq!(app.me_as(&target.token).await["permissions"], json!([]));
    let refused = app.gql_as(&target.token, SET_RATE, rate_input()).await;
    assert_eq!(TestApp::error_code(&refused).as_deref(), Some("FORBIDDEN"));
    let again = app.gql_as(&admin, REVOKE, vars).await;
    assert_eq!(again, json!({ "data": { "revokePermission": false } }));
}

#[tokio::test]
async fn bad_grant_input_is_refused_with_the_field_named_and_grants_nothing() {
    // Arrange
    let app = spawn_app().await;
    let admin = app.operator(&["permissions:write"]).await;
    let target = app.sign_up().await;
    let unknown = uuid::Uuid::new_v4().to_string();

    for mutation in [GRANT, REVOKE] {
        for bad in [
            "rates",
            "Rates:Write",
            "rates:",
            ":write",
            "rates:write:x",
            "",
        ] {
            // Act
            let body = app
                .gql_as(&admin, mutation, json!({ "u": target.id, "p": bad }))
                .await;

            // Assert
            assert_eq!(
                TestApp::error_code(&body).as_deref(),
                Some("BAD_USER_INPUT"),
                "{bad:?}: {body}"
            );
            assert_eq!(TestApp::error_field(&body).as_deref(), Some("permission"));
        }
        // Act
        let bad_id = app
            .gql_as(&admin, mutation, json!({ "u": "42", "p": "rates:write" }))
            .await;
        let missing = app
            .gql_as(
                &admin,
                mutation,
                json!({ "u": unknown, "p": "rates:write" }),
            )
            .await;

        // Assert
        assert_eq!(
            TestApp::error_code(&bad_id).as_deref(),
            Some("BAD_USER_INPUT")
        );
        assert_eq!(TestApp::error_field(&bad_id).as_deref(), Some("userId"));
        assert_eq!(TestApp::error_code(&missing).as_deref(), Some("NOT_FOUND"));
    }
    assert_eq!(app.me_as(&target.token).await["permissions"], json!([]));
}

#[tokio::test]
async fn granting_a_permission_the_server_never_checks_is_refused_naming_the_known_ones() {
    // Arrange
    let app = spawn_app().await;
    let admin = app.operator(&["permissions:write"]).await;
    let target = app.sign_up().await;

    // Act: a typo of `rates:write`.
    let body = app
        .gql_as(&admin, GRANT, json!({ "u": target.id, "p": "rates:writ" }))
        .await;

    // Assert
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("BAD_USER_INPUT"),
        "{body}"
    );
    assert_eq!(TestApp::error_field(&body).as_deref(), Some("permission"));
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    for known in Permission::KNOWN {
        assert!(message.contains(known), "{known} not named: {message}");
    }
    assert_eq!(app.me_as(&target.token).await["permissions"], json!([]));
    // Revoking such a name is allowed (nothing to revoke here).
    let revoked = app
        .gql_as(&admin, REVOKE, json!({ "u": target.id, "p": "rates:writ" }))
        .await;
    assert_eq!(revoked, json!({ "data": { "revokePermission": false } }));
}

#[tokio::test]
async fn a_session_of_one_context_is_not_valid_in_another() {
    // Arrange: the web server, and an admin stack over the same databases and store.
    let app = spawn_app().await;
    let admin = app.stack_for(ApplicationContext::Admin);
    let web = app.sign_up().await;
    assert!(!app.me_as(&web.token).await.is_null()); // cached in the web context
    let admin_session = admin
        .users
        .login(&web.email, PASSWORD, None, ClientInfo::default())
        .await
        .expect("the same account signs in to admin");
    let admin_token = admin_session.token.expose().to_owned();

    // Act
    let web_in_admin = admin
        .users
        .validate_session(&SessionToken::from_client(&web.token).unwrap())
        .await
        .unwrap();
    let admin_in_admin = admin
        .users
        .validate_session(&admin_session.token)
        .await
        .unwrap();
    let admin_in_web = app
        .stack
        .users
        .validate_session(&admin_session.token)
        .await
        .unwrap();

    // Assert
    assert!(web_in_admin.is_none(), "a web session opened admin");
    assert!(admin_in_admin.is_some());
    assert!(admin_in_web.is_none(), "an admin session opened web");
    assert_eq!(app.me_as(&admin_token).await, json!(null));
    let rows = app.session_rows().await;
    let context_of = |token: &str| {
        rows.iter()
            .find(|r| r.token_hash == token_hash(token))
            .map(|r| r.application_context.clone())
    };
    assert_eq!(context_of(&web.token).as_deref(), Some("web"));
    assert_eq!(context_of(&admin_token).as_deref(), Some("admin"));
    // Each context lists and ends only its own sessions.
    let web_sessions = app
        .gql_as(&web.token, "{ mySessions { id } }", json!({}))
        .await;
    assert_eq!(
        web_sessions["data"]["mySessions"].as_array().unwrap().len(),
        1
    );
    let logout_all = app
        .gql_as(&web.token, "mutation { logoutAll }", json!({}))
        .await;
    assert_eq!(logout_all["data"]["logoutAll"], 1);
    let still = admin
        .users
        .validate_session(&admin_session.token)
        .await
        .unwrap();
    assert!(still.is_some(), "web logoutAll ended an admin session");
}

#[tokio::test]
async fn a_permission_granted_in_one_context_grants_nothing_in_another() {
    // Arrange
    let app = spawn_app().await;
    let admin = app.stack_for(ApplicationContext::Admin);
    let user = app.sign_up().await;
    let token = user.token;
    let id = uuid::Uuid::parse_str(&user.id).unwrap();
    assert_eq!(app.me_as(&token).await["permissions"], json!([])); // cached
    let rates_write = Permission::parse("permission", "rates:write").unwrap();

    // Act
    admin.users.grant(id, &rates_write).await.unwrap();

    // Assert
    assert_eq!(app.me_as(&token).await["permissions"], json!([]));
    let refused = app.gql_as(&token, SET_RATE, rate_input()).await;
    assert_eq!(TestApp::error_code(&refused).as_deref(), Some("FORBIDDEN"));
    let in_admin = admin.users.user(id).await.unwrap().unwrap();
    assert_eq!(in_admin.permissions, vec!["rates:write".to_owned()]);

    // Act
    app.stack.users.grant(id, &rates_write).await.unwrap();
    admin.users.revoke(id, &rates_write).await.unwrap();

    // Assert
    assert_eq!(
        app.me_as(&token).await["permissions"],
        json!(["rates:write"])
    );
    let allowed = app.gql_as(&token, SET_RATE, rate_input()).await;
    assert!(allowed["errors"].is_null(), "{allowed}");
    let in_admin = admin.users.user(id).await.unwrap().unwrap();
    assert!(in_admin.permissions.is_empty());
}

#[tokio::test]
async fn permissions_write_in_another_context_does_not_allow_granting_here() {
    // Arrange
    let app = spawn_app().await;
    let admin = app.stack_for(ApplicationContext::Admin);
    let email = unique_email();
    let signed_in = admin
        .users
        .register(
            Email::parse("email", &email).unwrap(),
            Password::parse("password", PASSWORD).unwrap(),
            ClientInfo::default(),
        )
        .await
        .unwrap();
    let write = Permission::parse("permission", "permissions:write").unwrap();
    admin.users.grant(signed_in.user.id, &write).await.unwrap();
    let web_token = app.log_in(&email, PASSWORD).await.expect("signed in");
    let target = app.sign_up().await.id;

    // Act
    let body = app
        .gql_as(
            &web_token,
            GRANT,
            json!({ "u": target, "p": "rates:write" }),
        )
        .await;

    // Assert
    assert_eq!(TestApp::error_code(&body).as_deref(), Some("FORBIDDEN"));
}
