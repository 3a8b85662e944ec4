//! Accounts (SPEC §3–§4): registration, login, the session cookie, hashed tokens,
//! argon2id, email verification and password reset through the outbox mailer.

use crate::helpers::{
    Backend, ME, PASSWORD, SignUp, TestApp, backend, spawn_app, spawn_app_with, token_hash,
    unique_email,
};
use serde_json::{Value, json};

const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) { token } }";
const REGISTER: &str = "mutation($input: RegisterInput!) { register(input: $input) { token expiresAt user { id email } } }";

/// The `exchanger_session` cookie a response sets, if any.
fn session_cookie(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("exchanger_session="))
        .map(str::to_owned)
}

fn cookie_attributes(cookie: &str) -> Vec<String> {
    cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

fn is_token(value: &Value) -> bool {
    value.as_str().is_some_and(|t| {
        t.len() == 64
            && t.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[tokio::test]
async fn register_returns_a_256_bit_token_and_sets_an_http_only_lax_cookie() {
    // Arrange
    let app = spawn_app().await;
    let email = unique_email();

    // Act
    let (headers, body) = app
        .request(REGISTER)
        .variables(json!({ "input": { "email": email, "password": PASSWORD } }))
        .send_with_headers()
        .await;

    // Assert
    let token = &body["data"]["register"]["token"];
    assert!(is_token(token), "not 64 hex characters: {body}");
    let cookie = session_cookie(&headers).expect("a session cookie is set");
    assert!(
        cookie.starts_with(&format!("exchanger_session={};", token.as_str().unwrap())),
        "{cookie}"
    );
    let attributes = cookie_attributes(&cookie);
    assert!(attributes.contains(&"httponly".into()), "{cookie}");
    assert!(attributes.contains(&"samesite=lax".into()), "{cookie}");
    assert!(attributes.contains(&"path=/".into()), "{cookie}");
    assert!(
        !attributes.contains(&"secure".into()),
        "the test server runs with cookie_secure = false: {cookie}"
    );
}

#[tokio::test]
async fn the_session_cookie_is_secure_unless_configured_for_local_development() {
    // Arrange
    let app = spawn_app_with(|c| c.cookie_secure = true).await;

    // Act
    let (headers, body) = app
        .request(REGISTER)
        .variables(json!({ "input": { "email": unique_email(), "password": PASSWORD } }))
        .send_with_headers()
        .await;

    // Assert
    assert!(body["errors"].is_null(), "{body}");
    let cookie = session_cookie(&headers).expect("a session cookie is set");
    let attributes = cookie_attributes(&cookie);
    assert!(attributes.contains(&"secure".into()), "{cookie}");
    assert!(attributes.contains(&"httponly".into()), "{cookie}");
    assert!(attributes.contains(&"samesite=lax".into()), "{cookie}");
}

#[tokio::test]
async fn me_works_with_the_bearer_token_and_with_the_cookie_and_is_null_signed_out() {
    // Arrange
    let app = spawn_app().await;
    let user = app
        .sign_up_with(SignUp {
            client: Some(&app.client),
            ..SignUp::default()
        })
        .await;

    // Act
    let by_bearer = app.me_as(&user.token).await;
    let by_cookie = app.request(ME).client(&app.client).send().await;
    let signed_out = app.gql(ME, json!({})).await;

    // Assert
    assert_eq!(by_bearer["id"], user.id);
    assert_eq!(by_bearer["email"], user.email.as_str());
    assert_eq!(by_cookie["data"]["me"]["id"], user.id, "{by_cookie}");
    assert_eq!(signed_out, json!({ "data": { "me": null } }));
}

#[tokio::test]
async fn only_a_hash_of_the_token_is_stored_in_the_database_and_the_store() {
    // Arrange
    let app = spawn_app().await;
    let token = app.sign_up().await.token;

    // Act
    app.me_as(&token).await; // the session is cached now
    let rows = app.session_rows().await;
    let cached = app.cached_session(&token).await;

    // Assert
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.token_hash, token_hash(&token));
    assert_eq!(row.application_context, "web");
    let stored = format!("{row:?}");
    assert!(!stored.contains(&token), "raw token in the sessions row");
    let cached = cached.expect("the session is cached under the token's hash");
    assert!(!cached.contains(&token), "raw token in the store");
    let by_raw = app
        .stack
        .cache
        .store()
        .get(&app.stack.keys.session(&token))
        .await
        .unwrap();
    assert_eq!(by_raw, None, "a store key built from the raw token");
}

#[tokio::test]
async fn sessions_last_24_hours_and_are_cached_for_as_long_and_users_for_an_hour() {
    // Arrange
    let app = spawn_app().await;
    let body = app
        .gql(
            REGISTER,
            json!({ "input": { "email": unique_email(), "password": PASSWORD } }),
        )
        .await;
    let token = body["data"]["register"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = body["data"]["register"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Act
    app.me_as(&token).await; // fills the session and user caches

    // Assert
    let expires_at = chrono::DateTime::parse_from_rfc3339(
        body["data"]["register"]["expiresAt"].as_str().unwrap(),
    )
    .expect("RFC 3339");
    let left = expires_at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(
        left > chrono::Duration::hours(23) && left <= chrono::Duration::hours(24),
        "{left}"
    );
    let session_key = app.stack.keys.session(&token_hash(&token));
    let user_key = app.stack.keys.user(uuid::Uuid::parse_str(&id).unwrap());
    assert!(session_key.ends_with(&format!("identity:session:web:{}", token_hash(&token))));
    assert!(user_key.ends_with(&format!("identity:user:web:{id}")));
    let store = app.stack.cache.store();
    assert!(store.get(&session_key).await.unwrap().is_some());
    assert!(store.get(&user_key).await.unwrap().is_some());
    if let Backend::Postgres { redis, .. } = backend() {
        let ttl = |key: String| {
            let redis = redis.clone();
            async move {
                let ms: i64 =
                    crate::helpers::redis_query(&redis, redis::cmd("PTTL").arg(key)).await;
                std::time::Duration::from_millis(ms.max(0) as u64)
            }
        };
        let hour = std::time::Duration::from_secs(3600);
        let session_ttl = ttl(session_key).await;
        assert!(
            session_ttl > 23 * hour && session_ttl <= 24 * hour,
            "{session_ttl:?}"
        );
        let user_ttl = ttl(user_key).await;
        assert!(
            user_ttl > hour - std::time::Duration::from_secs(60) && user_ttl <= hour,
            "{user_ttl:?}"
        );
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_unauthenticated_error() {
    // Arrange
    let app = spawn_app().await;
    let email = app.sign_up().await.email;

    // Act
    let wrong_password = app
        .gql(
            LOGIN,
            json!({ "input": { "email": email, "password": "not the password" } }),
        )
        .await;
    let unknown_email = app
        .gql(
            LOGIN,
            json!({ "input": { "email": unique_email(), "password": "not the password" } }),
        )
        .await;

    // Assert
    assert_eq!(
        TestApp::error_code(&wrong_password).as_deref(),
        Some("UNAUTHENTICATED")
    );
    assert_eq!(
        TestApp::error_code(&unknown_email).as_deref(),
        Some("UNAUTHENTICATED")
    );
    assert_eq!(
        wrong_password["errors"][0]["message"],
        unknown_email["errors"][0]["message"]
    );
    assert_eq!(wrong_password["data"], json!(null));
    assert_eq!(unknown_email["data"], json!(null));
}

#[tokio::test]
async fn login_is_case_insensitive_in_the_email_and_issues_a_new_token_each_time() {
    // Arrange
    let app = spawn_app().await;
    let user = app.sign_up().await;
    let registered = user.token;

    // Act
    let first = app
        .log_in(&user.email.to_uppercase(), PASSWORD)
        .await
        .expect("signed in");
    let second = app.log_in(&user.email, PASSWORD).await.expect("signed in");

    // Assert
    assert_ne!(first, registered);
    assert_ne!(first, second);
    for token in [&registered, &first, &second] {
        assert_eq!(app.me_as(token).await["email"], user.email.as_str());
    }
    assert_eq!(app.session_rows().await.len(), 3);
}

#[tokio::test]
async fn a_session_id_chosen_by_the_client_is_never_adopted_at_login() {
    // Arrange: the client arrives with a cookie an attacker planted.
    let app = spawn_app().await;
    let email = app.sign_up().await.email;
    let planted = "ab".repeat(32);
    let url: reqwest::Url = app.address.parse().unwrap();
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(&format!("exchanger_session={planted}; Path=/"), &url);
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .unwrap();

    // Act
    let body = app
        .request(LOGIN)
        .variables(json!({ "input": { "email": email, "password": PASSWORD } }))
        .client(&client)
        .send()
        .await;

    // Assert
    let token = body["data"]["login"]["token"].as_str().unwrap();
    assert_ne!(token, planted);
    let cookies = reqwest::cookie::CookieStore::cookies(&*jar, &url)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let session_cookies: Vec<&str> = cookies
        .split("; ")
        .filter(|c| c.starts_with("exchanger_session="))
        .collect();
    assert_eq!(session_cookies, [format!("exchanger_session={token}")]);
    assert_eq!(app.me_as(&planted).await, json!(null));
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_with_owasp_parameters() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let email = app.sign_up().await.email;

    // Assert
    let row = app.user_row(&email).await.expect("user row");
    assert!(
        row.password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        row.password_hash
    );
    assert!(!row.password_hash.contains(PASSWORD));
    let parsed = argon2::PasswordHash::new(&row.password_hash).expect("a PHC string");
    argon2::PasswordVerifier::verify_password(
        &argon2::Argon2::default(),
        PASSWORD.as_bytes(),
        &parsed,
    )
    .expect("the hash verifies the password");
}

#[tokio::test]
async fn bad_registration_input_is_refused_with_the_field_named_and_creates_nothing() {
    // Arrange
    let app = spawn_app().await;
    let long_email = format!("{}@example.com", "a".repeat(250));
    let cases = [
        ("plain.example.com", PASSWORD, "input.email"),
        ("", PASSWORD, "input.email"),
        ("an n@example.com", PASSWORD, "input.email"),
        ("ann@exa mple.com", PASSWORD, "input.email"),
        ("ann@example", PASSWORD, "input.email"),
        (long_email.as_str(), PASSWORD, "input.email"),
        ("short@example.com", "1234567", "input.password"),
        ("long@example.com", &"x".repeat(129), "input.password"),
        ("huge@example.com", &"x".repeat(10_000), "input.password"),
    ];

    for (email, password, field) in cases {
        // Act
        let body = app
            .gql(
                REGISTER,
                json!({ "input": { "email": email, "password": password } }),
            )
            .await;

        // Assert
        assert_eq!(
            TestApp::error_code(&body).as_deref(),
            Some("BAD_USER_INPUT"),
            "{email:?}: {body}"
        );
        assert_eq!(
            TestApp::error_field(&body).as_deref(),
            Some(field),
            "{email:?}"
        );
        assert_eq!(body["data"], json!(null));
    }
    assert_eq!(app.user_count().await, 0, "nothing was created");
    assert!(app.session_rows().await.is_empty());
    let login = app
        .gql(
            LOGIN,
            json!({ "input": { "email": "short@example.com", "password": "1234567" } }),
        )
        .await;
    assert_eq!(
        TestApp::error_code(&login).as_deref(),
        Some("UNAUTHENTICATED")
    );
}

#[tokio::test]
async fn the_shortest_and_longest_passwords_allowed_are_accepted() {
    // Arrange
    let app = spawn_app().await;
    let longest = "é".repeat(128);

    // Act
    let short = app
        .sign_up_with(SignUp {
            password: "12345678",
            ..SignUp::default()
        })
        .await;
    let long = app
        .sign_up_with(SignUp {
            password: &longest,
            ..SignUp::default()
        })
        .await;

    // Assert
    assert!(!app.me_as(&short.token).await.is_null());
    assert!(!app.me_as(&long.token).await.is_null());
    app.log_in(&long.email, &long.password)
        .await
        .expect("the longest password signs in");
}

#[tokio::test]
async fn a_taken_email_in_any_case_is_a_conflict() {
    // Arrange
    let app = spawn_app().await;
    let email = app.sign_up().await.email;

    for again in [email.clone(), email.to_uppercase(), format!("  {email} ")] {
        // Act
        let body = app
            .gql(
                REGISTER,
                json!({ "input": { "email": again, "password": "another password" } }),
            )
            .await;

        // Assert
        assert_eq!(
            TestApp::error_code(&body).as_deref(),
            Some("CONFLICT"),
            "{again:?}: {body}"
        );
    }
    assert_eq!(app.user_count().await, 1);
    app.log_in(&email, PASSWORD)
        .await
        .expect("the password is unchanged");
}

#[tokio::test]
async fn verify_email_with_the_mailed_token_shows_at_once_and_works_once() {
    // Arrange
    let app = spawn_app().await;
    let user = app.sign_up().await;
    assert_eq!(app.me_as(&user.token).await["emailVerified"], false); // cached now
    let requested = app
        .gql_as(
            &user.token,
            "mutation { requestEmailVerification }",
            json!({}),
        )
        .await;
    assert_eq!(requested["data"]["requestEmailVerification"], true);
    let mails = app.mails_to(&user.email);
    assert_eq!(mails.len(), 1);
    let mailed = mails[0].token.clone();
    let verify =
        "mutation($token: String!) { verifyEmail(token: $token) { id email emailVerified } }";

    // Act
    let verified = app.gql(verify, json!({ "token": mailed })).await;
    let again = app.gql(verify, json!({ "token": mailed })).await;

    // Assert
    assert_eq!(
        verified["data"]["verifyEmail"],
        json!({ "id": user.id, "email": user.email, "emailVerified": true }),
        "{verified}"
    );
    assert_eq!(
        app.me_as(&user.token).await["emailVerified"],
        true,
        "the cached user was dropped"
    );
    assert_eq!(
        TestApp::error_code(&again).as_deref(),
        Some("BAD_USER_INPUT")
    );
    assert_eq!(TestApp::error_field(&again).as_deref(), Some("token"));
    let bogus = app.gql(verify, json!({ "token": "0".repeat(64) })).await;
    assert_eq!(TestApp::error_field(&bogus).as_deref(), Some("token"));
}

#[tokio::test]
async fn a_verification_token_cannot_reset_a_password() {
    // Arrange
    let app = spawn_app().await;
    let user = app.sign_up().await;
    app.gql_as(
        &user.token,
        "mutation { requestEmailVerification }",
        json!({}),
    )
    .await;
    let mailed = app.mails_to(&user.email)[0].token.clone();

    // Act
    let body = app
        .gql(
            "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }",
            json!({ "t": mailed, "p": "a brand new password" }),
        )
        .await;

    // Assert
    assert_eq!(TestApp::error_field(&body).as_deref(), Some("token"));
    app.log_in(&user.email, PASSWORD)
        .await
        .expect("the password is unchanged");
}

#[tokio::test]
async fn request_password_reset_answers_true_for_an_unknown_email_and_sends_nothing() {
    // Arrange
    let app = spawn_app().await;
    let unknown = unique_email();

    // Act
    let body = app
        .gql(
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            json!({ "e": unknown }),
        )
        .await;

    // Assert: the same answer; and once a later reset for a real account was mailed (the
    // mail work runs after the answer), still no mail to the unknown address.
    assert_eq!(body, json!({ "data": { "requestPasswordReset": true } }));
    let known = app.sign_up().await.email;
    app.gql(
        "mutation($e: String!) { requestPasswordReset(email: $e) }",
        json!({ "e": known }),
    )
    .await;
    app.wait_for_mails(&known, 1).await;
    assert!(app.mails_to(&unknown).is_empty());
    assert_eq!(app.stack.users.mailer().outbox().len(), 1);
}

#[tokio::test]
async fn reset_password_with_the_mailed_token_ends_every_session_and_sets_the_new_password() {
    // Arrange
    let app = spawn_app().await;
    let user = app.sign_up().await;
    let first = user.token;
    let second = app.log_in(&user.email, PASSWORD).await.expect("signed in");
    for token in [&first, &second] {
        assert!(!app.me_as(token).await.is_null()); // cached
    }
    let requested = app
        .gql(
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            json!({ "e": user.email.to_uppercase() }),
        )
        .await;
    assert_eq!(requested["data"]["requestPasswordReset"], true);
    let mailed = app.wait_for_mails(&user.email, 1).await[0].token.clone();
    let reset = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";

    // Act
    let body = app
        .gql(reset, json!({ "t": mailed, "p": "a brand new password" }))
        .await;

    // Assert
    assert_eq!(body, json!({ "data": { "resetPassword": true } }));
    for token in [&first, &second] {
        assert_eq!(
            app.me_as(token).await,
            json!(null),
            "session survived the reset"
        );
    }
    assert!(app.session_rows().await.is_empty());
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
    let reused = app
        .gql(reset, json!({ "t": mailed, "p": "yet another password" }))
        .await;
    assert_eq!(TestApp::error_field(&reused).as_deref(), Some("token"));
}

#[tokio::test]
async fn reset_password_refuses_a_bad_new_password_and_keeps_the_token_usable() {
    // Arrange
    let app = spawn_app().await;
    let email = app.sign_up().await.email;
    app.gql(
        "mutation($e: String!) { requestPasswordReset(email: $e) }",
        json!({ "e": email }),
    )
    .await;
    let mailed = app.wait_for_mails(&email, 1).await[0].token.clone();
    let reset = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";

    // Act
    let short = app.gql(reset, json!({ "t": mailed, "p": "1234567" })).await;

    // Assert
    assert_eq!(TestApp::error_field(&short).as_deref(), Some("newPassword"));
    app.log_in(&email, PASSWORD)
        .await
        .expect("the password is unchanged");
    let ok = app
        .gql(reset, json!({ "t": mailed, "p": "a brand new password" }))
        .await;
    assert_eq!(ok["data"]["resetPassword"], true, "{ok}");
}

#[tokio::test]
async fn a_password_reset_voids_every_other_reset_token_of_the_user() {
    // Arrange: two reset mails, e.g. the user asked twice.
    let app = spawn_app().await;
    let email = app.sign_up().await.email;
    let request = "mutation($e: String!) { requestPasswordReset(email: $e) }";
    app.gql(request, json!({ "e": email })).await;
    app.wait_for_mails(&email, 1).await;
    app.gql(request, json!({ "e": email })).await;
    let mails = app.wait_for_mails(&email, 2).await;
    assert_eq!(mails.len(), 2);
    let reset = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";

    // Act
    let used = app
        .gql(
            reset,
            json!({ "t": mails[1].token, "p": "a brand new password" }),
        )
        .await;
    let stale = app
        .gql(
            reset,
            json!({ "t": mails[0].token, "p": "an attacker's password" }),
        )
        .await;

    // Assert
    assert_eq!(used["data"]["resetPassword"], true, "{used}");
    assert_eq!(
        TestApp::error_field(&stale).as_deref(),
        Some("token"),
        "{stale}"
    );
    app.log_in(&email, "a brand new password")
        .await
        .expect("the new password works");
}

#[tokio::test]
async fn changing_the_password_voids_outstanding_reset_tokens() {
    // Arrange: a reset link is still in the mailbox when the user changes the password.
    let app = spawn_app().await;
    let user = app.sign_up().await;
    app.gql(
        "mutation($e: String!) { requestPasswordReset(email: $e) }",
        json!({ "e": user.email }),
    )
    .await;
    let mailed = app.wait_for_mails(&user.email, 1).await[0].token.clone();
    let changed = app
        .gql_as(
            &user.token,
            "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
            json!({ "c": PASSWORD, "n": "a brand new password" }),
        )
        .await;
    assert_eq!(changed["data"]["changePassword"], true, "{changed}");

    // Act
    let stale = app
        .gql(
            "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }",
            json!({ "t": mailed, "p": "an attacker's password" }),
        )
        .await;

    // Assert
    assert_eq!(
        TestApp::error_field(&stale).as_deref(),
        Some("token"),
        "{stale}"
    );
    app.log_in(&user.email, "a brand new password")
        .await
        .expect("the new password works");
}
