//! Sign-in that attackers cannot block and floods cannot starve (SPEC §4): device-aware
//! lockout, trusted proxies and the client address, concurrent correct logins, and the
//! password-reset answer that does not wait for the mail.

use crate::helpers::{
    PASSWORD, TestApp, new_client, spawn_app_with, spawn_app_with_mailer, unique_email,
};
use exchanger::identity::mailer::{Mail, Mailer};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const LOGIN: &str =
    "mutation($input: LoginInput!) { login(input: $input) { token deviceToken user { id } } }";
const SESSIONS: &str = "{ mySessions { ipAddress current } }";

/// A login with `client`, from `address` (as a trusted proxy would say), with the device
/// credential `device` in its header, if any.
async fn login_from(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
    address: &str,
    device: Option<&str>,
) -> Value {
    let mut request = app
        .request(LOGIN)
        .variables(json!({ "input": { "email": email, "password": password } }))
        .client(client)
        .header("x-forwarded-for", address);
    if let Some(device) = device {
        request = request.header("x-device-token", device);
    }
    request.send().await
}

/// A server behind a proxy on 127.0.0.1 (the test client), so `X-Forwarded-For` names the
/// client's address.
async fn behind_a_proxy(per_account: u32, per_ip: u32) -> TestApp {
    spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        c.login_limits.per_account = per_account;
        c.login_limits.per_ip = per_ip;
    })
    .await
}

#[tokio::test]
async fn failures_from_other_clients_never_lock_out_the_owners_device() {
    // Arrange: the owner signs in on device A (a browser keeping cookies).
    let app = behind_a_proxy(5, 100).await;
    let user = app.sign_up().await;
    let device_a = new_client();
    let first = login_from(&app, &device_a, &user.email, PASSWORD, "192.0.2.10", None).await;
    assert!(first["data"]["login"]["token"].is_string(), "{first}");

    // Act: twelve wrong passwords from another address.
    for i in 0..12 {
        let body = login_from(
            &app,
            &new_client(),
            &user.email,
            "wrong password",
            &format!("198.51.100.{i}"),
            None,
        )
        .await;
        let code = TestApp::error_code(&body);
        assert!(
            matches!(code.as_deref(), Some("UNAUTHENTICATED" | "RATE_LIMITED")),
            "{body}"
        );
    }

    // Assert: the owner, on A from a new address, signs in.
    let owner = login_from(&app, &device_a, &user.email, PASSWORD, "203.0.113.7", None).await;
    assert!(owner["data"]["login"]["token"].is_string(), "{owner}");
    // A client without the device credential is locked out with the attacker.
    let stranger = login_from(
        &app,
        &new_client(),
        &user.email,
        PASSWORD,
        "203.0.113.8",
        None,
    )
    .await;
    assert_eq!(
        TestApp::error_code(&stranger).as_deref(),
        Some("RATE_LIMITED"),
        "{stranger}"
    );
}

#[tokio::test]
async fn a_client_without_cookies_presents_its_device_credential_in_a_header() {
    let app = behind_a_proxy(3, 100).await;
    let user = app.sign_up().await;
    let first = login_from(
        &app,
        &new_client(),
        &user.email,
        PASSWORD,
        "192.0.2.20",
        None,
    )
    .await;
    let device = first["data"]["login"]["deviceToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    assert_eq!(device.len(), 64);
    for i in 0..5 {
        login_from(
            &app,
            &new_client(),
            &user.email,
            "wrong",
            &format!("198.51.100.{i}"),
            None,
        )
        .await;
    }
    let with_device = login_from(
        &app,
        &new_client(),
        &user.email,
        PASSWORD,
        "203.0.113.9",
        Some(&device),
    )
    .await;
    assert!(
        with_device["data"]["login"]["token"].is_string(),
        "{with_device}"
    );
    assert_eq!(with_device["data"]["login"]["deviceToken"], device.as_str());
    // Another account's device credential earns nothing for this account.
    let other = app.sign_up().await;
    let other_login = login_from(
        &app,
        &new_client(),
        &other.email,
        PASSWORD,
        "192.0.2.30",
        None,
    )
    .await;
    let other_device = other_login["data"]["login"]["deviceToken"]
        .as_str()
        .unwrap();
    let borrowed = login_from(
        &app,
        &new_client(),
        &user.email,
        PASSWORD,
        "203.0.113.10",
        Some(other_device),
    )
    .await;
    assert_eq!(
        TestApp::error_code(&borrowed).as_deref(),
        Some("RATE_LIMITED"),
        "{borrowed}"
    );
}

#[tokio::test]
async fn a_trusted_device_is_still_limited_on_its_own() {
    let app = behind_a_proxy(3, 100).await;
    let user = app.sign_up().await;
    let device = new_client();
    login_from(&app, &device, &user.email, PASSWORD, "192.0.2.40", None).await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        let body = login_from(&app, &device, &user.email, "wrong", "192.0.2.40", None).await;
        codes.push(TestApp::error_code(&body).unwrap_or_default());
    }
    assert_eq!(
        codes,
        [
            "UNAUTHENTICATED",
            "UNAUTHENTICATED",
            "UNAUTHENTICATED",
            "RATE_LIMITED",
            "RATE_LIMITED"
        ]
    );
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_a_trusted_proxy() {
    // No trusted proxy: a spoofed X-Forwarded-For changes nothing.
    let app = spawn_app_with(|c| c.login_limits.per_ip = 3).await;
    let user = app.sign_up().await;
    let spoofed = login_from(
        &app,
        &new_client(),
        &user.email,
        PASSWORD,
        "203.0.113.1",
        None,
    )
    .await;
    let token = spoofed["data"]["login"]["token"].as_str().unwrap();
    let sessions = app.gql_as(token, SESSIONS, json!({})).await;
    let mine: Vec<&Value> = sessions["data"]["mySessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["current"] == true)
        .collect();
    assert_eq!(mine[0]["ipAddress"], "127.0.0.1", "{sessions}");
    // Rotating spoofed addresses does not escape the per-address limit.
    for i in 0..3 {
        login_from(
            &app,
            &new_client(),
            &unique_email(),
            "wrong",
            &format!("198.51.100.{i}"),
            None,
        )
        .await;
    }
    let limited = login_from(
        &app,
        &new_client(),
        &user.email,
        PASSWORD,
        "198.51.100.99",
        None,
    )
    .await;
    assert_eq!(
        TestApp::error_code(&limited).as_deref(),
        Some("RATE_LIMITED"),
        "{limited}"
    );

    // Behind a trusted proxy: the forwarded address is the client's, for sessions and limits.
    let proxied = behind_a_proxy(5, 3).await;
    let user = proxied.sign_up().await;
    for i in 0..3 {
        login_from(
            &proxied,
            &new_client(),
            &unique_email(),
            "wrong",
            "198.51.100.1",
            None,
        )
        .await;
        let _ = i;
    }
    let blocked = login_from(
        &proxied,
        &new_client(),
        &user.email,
        PASSWORD,
        "198.51.100.1",
        None,
    )
    .await;
    assert_eq!(
        TestApp::error_code(&blocked).as_deref(),
        Some("RATE_LIMITED"),
        "{blocked}"
    );
    let other = login_from(
        &proxied,
        &new_client(),
        &user.email,
        PASSWORD,
        "198.51.100.2",
        None,
    )
    .await;
    let token = other["data"]["login"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{other}"));
    let sessions = proxied.gql_as(token, SESSIONS, json!({})).await;
    assert!(
        sessions["data"]["mySessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["current"] == true && s["ipAddress"] == "198.51.100.2"),
        "{sessions}"
    );
}

#[tokio::test]
async fn concurrent_correct_logins_are_never_refused_by_the_failure_limit() {
    let app = spawn_app_with(|c| {
        c.login_limits.per_account = 2;
        c.login_limits.per_ip = 2;
    })
    .await;
    let user = app.sign_up().await;
    let logins = (0..10).map(|_| app.log_in(&user.email, PASSWORD));
    let results = futures_util::future::join_all(logins).await;
    for result in &results {
        assert!(result.is_ok(), "{result:?}");
    }
}

/// A mailer that holds every mail until released.
struct HeldMailer {
    released: tokio::sync::Semaphore,
    sent: std::sync::Mutex<Vec<Mail>>,
}

#[async_trait::async_trait]
impl Mailer for HeldMailer {
    async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        let _go = self.released.acquire().await?;
        self.sent.lock().unwrap().push(mail);
        Ok(())
    }
}

#[tokio::test]
async fn a_password_reset_answers_before_its_mail_is_sent() {
    // Arrange: mail cannot leave until the test says so.
    let mailer = Arc::new(HeldMailer {
        released: tokio::sync::Semaphore::new(0),
        sent: std::sync::Mutex::default(),
    });
    let app = spawn_app_with_mailer(mailer.clone()).await;
    let user = app.sign_up().await;
    let request = "mutation($e: String!) { requestPasswordReset(email: $e) }";

    // Act: a known and an unknown email, while mail is held.
    let known = tokio::time::timeout(
        Duration::from_secs(10),
        app.gql(request, json!({ "e": user.email })),
    )
    .await
    .expect("the answer does not wait for the mail");
    let unknown = app.gql(request, json!({ "e": unique_email() })).await;

    // Assert: the same answer, and the mail goes out once released.
    assert_eq!(known, unknown);
    assert_eq!(known, json!({ "data": { "requestPasswordReset": true } }));
    assert!(mailer.sent.lock().unwrap().is_empty());
    mailer.released.add_permits(10);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while mailer.sent.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the mail never left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = mailer.sent.lock().unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, user.email);
}
