//! Account security: two-factor sign-in (TOTP and recovery codes), secrets at rest, step-up
//! for sensitive mutations, operators without a second factor, security activity, idle
//! sessions, and context isolation.
//!
//! The tests play the authenticator app with `exchanger::identity::totp::code_at`. A code is
//! valid in its 30 s step ±1, so each test takes the current step once enough of it remains
//! (`settled_step`) and names its codes relative to it.

use crate::helpers::{
    PASSWORD, SessionTime, SignUp, TestApp, TestUser, backend, move_session_time, new_client,
    spawn_app, spawn_app_with, token_hash,
};
use crate::process::{ServerProcess, exchanger};
use exchanger::context::ApplicationContext;
use exchanger::domain::SessionToken;
use exchanger::identity::ClientInfo;
use exchanger::identity::totp::code_at;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

const ENROLL: &str = "mutation { enrollTotp { secret otpauthUri } }";
const CONFIRM: &str = "mutation($code: String!) { confirmTotp(code: $code) }";
const STEP_UP: &str = "mutation($code: String!) { stepUp(code: $code) }";
const LOGIN: &str =
    "mutation($input: LoginInput!) { login(input: $input) { token user { totpEnabled } } }";
const SESSIONS: &str = "{ mySessions { id current mfa authenticatedAt lastSeenAt } }";
const EVENTS: &str = "query($first: Int, $after: String) { mySecurityEvents(first: $first, after: $after) { edges { cursor node { id kind occurredAt ipAddress userAgent newDevice } } pageInfo { hasNextPage endCursor } } }";
const SET_RATE: &str = "mutation($rate: Decimal!) { setExchangeRate(input: { fromCurrency: \"USD\", toCurrency: \"UAH\", rate: $rate }) { rate } }";
const RATE: &str = "{ exchangeRate(from: \"USD\", to: \"UAH\") { rate } }";

/// Seconds per TOTP step.
const STEP: u64 = 30;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// The current TOTP step, once at least 12 s of it remain: a code of the step before is
/// then still accepted by the server a moment later.
async fn settled_step() -> u64 {
    let now = unix_now();
    if STEP - now % STEP < 12 {
        tokio::time::sleep(Duration::from_secs(STEP - now % STEP)).await;
    }
    unix_now() / STEP
}

/// Waits until the clock is in `step` (or later).
async fn wait_for_step(step: u64) {
    let start = step * STEP;
    let now = unix_now();
    if now < start {
        tokio::time::sleep(Duration::from_secs(start - now) + Duration::from_millis(200)).await;
    }
    assert!(unix_now() / STEP >= step);
}

/// A test user's authenticator app.
struct Authenticator {
    secret: Vec<u8>,
    /// The secret as `enrollTotp` showed it (base32).
    base32: String,
}

impl Authenticator {
    fn new(base32: &str) -> Self {
        let secret = totp_rs::Secret::Encoded(base32.to_owned())
            .to_bytes()
            .expect("enrollTotp returns base32");
        Self {
            secret,
            base32: base32.to_owned(),
        }
    }

    /// The code of `step`.
    fn code(&self, step: u64) -> String {
        code_at(&self.secret, step * STEP)
    }

    /// A six-digit code that is the code of no step within two of `step`.
    fn wrong_code(&self, step: u64) -> String {
        let taken: HashSet<String> = (step - 2..=step + 2).map(|s| self.code(s)).collect();
        (0..)
            .map(|n| format!("{:06}", 123_456 + n))
            .find(|c| !taken.contains(c))
            .expect("a free code")
    }
}

/// A user with two-factor sign-in on: enrolled and confirmed with the code of `step - 1`,
/// so the codes of `step` and `step + 1` are still unused. Its registration session proved
/// the second factor when it confirmed.
struct TwoFactorUser {
    user: TestUser,
    authenticator: Authenticator,
    recovery_codes: Vec<String>,
    step: u64,
}

async fn enroll(app: &TestApp, token: &str) -> Authenticator {
    let body = app.gql_as(token, ENROLL, json!({})).await;
    let enrollment = &body["data"]["enrollTotp"];
    let secret = enrollment["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("enrollTotp: {body}"));
    let uri = enrollment["otpauthUri"].as_str().expect("otpauthUri");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    Authenticator::new(secret)
}

async fn turn_on_two_factor(app: &TestApp, user: TestUser) -> TwoFactorUser {
    let authenticator = enroll(app, &user.token).await;
    let step = settled_step().await;
    let body = app
        .gql_as(
            &user.token,
            CONFIRM,
            json!({ "code": authenticator.code(step - 1) }),
        )
        .await;
    let recovery_codes: Vec<String> = serde_json::from_value(body["data"]["confirmTotp"].clone())
        .unwrap_or_else(|_| panic!("confirmTotp: {body}"));
    TwoFactorUser {
        user,
        authenticator,
        recovery_codes,
        step,
    }
}

impl TwoFactorUser {
    /// `login` with the password and `code`, from a fresh client.
    async fn sign_in(&self, app: &TestApp, code: &str) -> Value {
        login(app, &self.user.email, PASSWORD, Some(code)).await
    }
}

/// `stepUp` with `code` as the holder of `token`.
async fn step_up(app: &TestApp, token: &str, code: &str) -> Value {
    app.gql_as(token, STEP_UP, json!({ "code": code })).await
}

async fn two_factor_user(app: &TestApp) -> TwoFactorUser {
    let user = app.sign_up().await;
    turn_on_two_factor(app, user).await
}

/// `login` with a fresh client and, if given, a second factor.
async fn login(app: &TestApp, email: &str, password: &str, code: Option<&str>) -> Value {
    let mut input = json!({ "email": email, "password": password });
    if let Some(code) = code {
        input["totpCode"] = json!(code);
    }
    app.gql(LOGIN, json!({ "input": input })).await
}

fn token_of(body: &Value) -> String {
    body["data"]["login"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login refused: {body}"))
        .to_owned()
}

fn code_of(body: &Value) -> String {
    TestApp::error_code(body).unwrap_or_else(|| format!("no error: {body}"))
}

/// How many sessions `user_id` has, any context.
async fn sessions_of(app: &TestApp, user_id: &str) -> usize {
    app.session_rows()
        .await
        .iter()
        .filter(|s| s.user_id.to_string() == user_id)
        .count()
}

/// Every security event of the holder of `token`, newest first, read a page of `page` at a
/// time: (kind, newDevice, userAgent) each.
async fn all_events(app: &TestApp, token: &str, page: i64) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let body = app
            .gql_as(token, EVENTS, json!({ "first": page, "after": after }))
            .await;
        let connection = &body["data"]["mySecurityEvents"];
        let edges = connection["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("mySecurityEvents: {body}"));
        assert!(edges.len() <= usize::try_from(page).unwrap());
        events.extend(edges.iter().map(|e| e["node"].clone()));
        if connection["pageInfo"]["hasNextPage"] != json!(true) {
            return events;
        }
        assert_eq!(
            edges.last().unwrap()["cursor"],
            connection["pageInfo"]["endCursor"]
        );
        after = connection["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned);
    }
}

/// The USD→UAH rate, normalised ("41", not "41.00000000").
async fn rate_now(app: &TestApp) -> String {
    let body = app.gql(RATE, json!({})).await;
    let rate: rust_decimal::Decimal = body["data"]["exchangeRate"]["rate"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .parse()
        .expect("a decimal");
    rate.normalize().to_string()
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_owned())
        .collect()
}

// ---- Two-factor sign-in ----

#[tokio::test]
async fn with_two_factor_on_a_password_alone_is_mfa_required_and_opens_no_session() {
    // Arrange
    let app = spawn_app().await;
    let tf = two_factor_user(&app).await;
    let before = sessions_of(&app, &tf.user.id).await;

    // Act
    let password_only = login(&app, &tf.user.email, PASSWORD, None).await;
    let wrong_password = login(&app, &tf.user.email, "not the password", None).await;
    let wrong_password_right_code = login(
        &app,
        &tf.user.email,
        "not the password",
        Some(&tf.authenticator.code(tf.step)),
    )
    .await;

    // Assert: the right password asks for the code; a wrong one says nothing of 2FA.
    assert_eq!(code_of(&password_only), "MFA_REQUIRED", "{password_only}");
    assert!(password_only["data"].is_null(), "{password_only}");
    assert_eq!(code_of(&wrong_password), "UNAUTHENTICATED");
    assert_eq!(code_of(&wrong_password_right_code), "UNAUTHENTICATED");
    assert_eq!(sessions_of(&app, &tf.user.id).await, before, "no session");

    // Act: the password is checked first, so the code it came with is still unused.
    let with_code = tf.sign_in(&app, &tf.authenticator.code(tf.step)).await;

    // Assert
    assert_eq!(with_code["data"]["login"]["user"]["totpEnabled"], true);
    let token = token_of(&with_code);
    let sessions = app.gql_as(&token, SESSIONS, json!({})).await;
    let current = sessions["data"]["mySessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .cloned()
        .expect("the current session is listed");
    assert_eq!(current["mfa"], true, "{sessions}");
    assert!(current["authenticatedAt"].is_string(), "{sessions}");
    assert_eq!(sessions_of(&app, &tf.user.id).await, before + 1);
    let me = app
        .gql_as(&token, "{ me { totpEnabled } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["totpEnabled"], true);
}

#[tokio::test]
async fn a_wrong_code_is_unauthenticated_and_counts_as_a_failed_login() {
    // Arrange: three failures per account.
    let app = spawn_app_with(|c| {
        c.login_limits.per_account = 3;
        c.login_limits.per_ip = 1_000;
    })
    .await;
    let tf = two_factor_user(&app).await;
    let wrong = tf.authenticator.wrong_code(tf.step);

    // Act
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(login(&app, &tf.user.email, PASSWORD, Some(&wrong)).await);
    }
    let right = tf.sign_in(&app, &tf.authenticator.code(tf.step)).await;

    // Assert
    for answer in &answers {
        assert_eq!(code_of(answer), "UNAUTHENTICATED", "{answer}");
        assert!(answer["data"].is_null());
    }
    assert_eq!(code_of(&right), "RATE_LIMITED", "{right}");
    assert!(right["errors"][0]["extensions"]["retryAfter"].is_number());
    let events = all_events(&app, &tf.user.token, 100).await;
    let failed = kinds(&events)
        .iter()
        .filter(|k| *k == "SIGN_IN_FAILED")
        .count();
    assert_eq!(failed, 3, "{events:?}");
}

#[tokio::test]
async fn wrong_step_up_codes_are_limited_like_failed_logins() {
    // Arrange
    let app = spawn_app_with(|c| c.login_limits.per_account = 3).await;
    let tf = two_factor_user(&app).await;
    let wrong = tf.authenticator.wrong_code(tf.step);

    // Act
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(step_up(&app, &tf.user.token, &wrong).await);
    }
    let right = step_up(&app, &tf.user.token, &tf.authenticator.code(tf.step)).await;

    // Assert
    for answer in &answers {
        assert_eq!(code_of(answer), "BAD_USER_INPUT", "{answer}");
        assert_eq!(TestApp::error_field(answer).as_deref(), Some("code"));
    }
    assert_eq!(code_of(&right), "RATE_LIMITED", "{right}");
}

#[tokio::test]
async fn a_code_counts_in_its_step_and_the_next_but_not_two_away_and_never_twice() {
    // Arrange: a user who confirmed with the code of the step before `step`.
    let app = spawn_app().await;
    let ann = two_factor_user(&app).await;
    let step = ann.step;

    // Act + Assert: two steps ahead is refused, one step ahead accepted, and only once.
    let two_ahead = ann.sign_in(&app, &ann.authenticator.code(step + 2)).await;
    assert_eq!(code_of(&two_ahead), "UNAUTHENTICATED", "{two_ahead}");
    let one_ahead = ann.sign_in(&app, &ann.authenticator.code(step + 1)).await;
    token_of(&one_ahead);
    let replayed = ann.sign_in(&app, &ann.authenticator.code(step + 1)).await;
    assert_eq!(code_of(&replayed), "UNAUTHENTICATED", "replay: {replayed}");
    // A code of an earlier step than one already used is a replay too.
    let earlier = ann.sign_in(&app, &ann.authenticator.code(step)).await;
    assert_eq!(code_of(&earlier), "UNAUTHENTICATED", "{earlier}");

    // Arrange: another user, confirmed (with the code of the step before `bob.step`).
    let bob = two_factor_user(&app).await;
    // The code used to confirm is never accepted again.
    let confirm_code = step_up(&app, &bob.user.token, &bob.authenticator.code(bob.step - 1)).await;
    assert_eq!(code_of(&confirm_code), "BAD_USER_INPUT", "{confirm_code}");

    // Act: once the clock has moved on a step, the code of the step before still counts.
    wait_for_step(bob.step + 1).await;
    let one_behind = bob.sign_in(&app, &bob.authenticator.code(bob.step)).await;

    // Assert
    token_of(&one_behind);
}

#[tokio::test]
async fn a_recovery_code_stands_in_for_a_code_once() {
    // Arrange
    let app = spawn_app().await;
    let tf = two_factor_user(&app).await;
    assert_eq!(tf.recovery_codes.len(), 10);
    assert_eq!(
        tf.recovery_codes.iter().collect::<HashSet<_>>().len(),
        10,
        "distinct codes"
    );
    let first = &tf.recovery_codes[0];
    // Typed the way people type: upper case, a space for the dash.
    let typed = first.to_uppercase().replace('-', " ");

    // Act
    let signed_in = login(&app, &tf.user.email, PASSWORD, Some(&typed)).await;
    let again = login(&app, &tf.user.email, PASSWORD, Some(first)).await;
    let step_up_with_used = step_up(&app, &tf.user.token, first).await;
    let step_up_with_another = step_up(&app, &tf.user.token, &tf.recovery_codes[1]).await;

    // Assert
    let token = token_of(&signed_in);
    assert_eq!(code_of(&again), "UNAUTHENTICATED", "{again}");
    assert_eq!(code_of(&step_up_with_used), "BAD_USER_INPUT");
    assert_eq!(step_up_with_another["data"]["stepUp"], true);
    let events = kinds(&all_events(&app, &token, 100).await);
    let used = events.iter().filter(|k| *k == "RECOVERY_CODE_USED").count();
    assert_eq!(used, 2, "{events:?}");
}

#[tokio::test]
async fn enrolment_is_pending_until_confirmed_and_a_new_one_replaces_it() {
    // Arrange
    let app = spawn_app().await;
    let user = app.sign_up().await;
    let replaced = enroll(&app, &user.token).await;
    let current = enroll(&app, &user.token).await;
    let step = settled_step().await;

    // Act: before confirming, the password alone still signs in.
    let before = login(&app, &user.email, PASSWORD, None).await;
    let with_replaced = app
        .gql_as(&user.token, CONFIRM, json!({ "code": replaced.code(step) }))
        .await;
    let with_current = app
        .gql_as(&user.token, CONFIRM, json!({ "code": current.code(step) }))
        .await;
    let twice = app
        .gql_as(
            &user.token,
            CONFIRM,
            json!({ "code": current.code(step + 1) }),
        )
        .await;

    // Assert
    token_of(&before);
    assert_eq!(code_of(&with_replaced), "BAD_USER_INPUT", "{with_replaced}");
    assert_eq!(
        TestApp::error_field(&with_replaced).as_deref(),
        Some("code")
    );
    assert_eq!(
        with_current["data"]["confirmTotp"].as_array().map(Vec::len),
        Some(10),
        "{with_current}"
    );
    assert_eq!(code_of(&twice), "CONFLICT", "{twice}");
    let after = login(&app, &user.email, PASSWORD, None).await;
    assert_eq!(code_of(&after), "MFA_REQUIRED");
    let anonymous = app.gql(ENROLL, json!({})).await;
    assert_eq!(code_of(&anonymous), "UNAUTHENTICATED");
}

// ---- Secrets at rest ----

#[tokio::test]
async fn totp_secrets_are_sealed_and_recovery_codes_kept_only_as_hashes() {
    // Arrange
    let app = spawn_app().await;
    let tf = two_factor_user(&app).await;

    // Act
    let row = app.user_row(&tf.user.email).await.expect("user row");
    let codes = {
        use entity::identity::recovery_codes;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        recovery_codes::Entity::find()
            .filter(recovery_codes::Column::UserId.eq(row.id))
            .all(&app.stack.dbs.identity)
            .await
            .expect("read recovery codes")
    };

    // Assert: the secret is neither in base32 nor in hex anywhere in the row.
    let sealed = row.totp_secret.clone().expect("a secret is stored");
    let dump = format!("{row:?}");
    assert!(!dump.contains(&tf.authenticator.base32), "{dump}");
    assert!(
        !dump.contains(&hex::encode(&tf.authenticator.secret)),
        "{dump}"
    );
    assert!(
        !dump
            .to_lowercase()
            .contains(&tf.authenticator.base32.to_lowercase())
    );
    assert!(row.totp_pending_secret.is_none(), "confirmed: none pending");
    assert!(sealed.len() > 40, "{sealed}");
    assert_eq!(codes.len(), 10);
    for stored in &codes {
        assert_eq!(stored.code_hash.len(), 64, "{stored:?}");
        assert!(stored.code_hash.bytes().all(|b| b.is_ascii_hexdigit()));
        for code in &tf.recovery_codes {
            assert!(!stored.code_hash.contains(code.as_str()));
            assert_ne!(stored.code_hash, token_hash(code), "an unkeyed hash");
        }
    }

    // Act: a server with another key cannot open the secret (the cipher is
    // authenticated), so it cannot be made to accept a code.
    let mut other_key = app.config.clone();
    other_key.security.secret_key = Some(
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            .to_owned()
            .into(),
    );
    let other = app.another_instance_with(other_key).await;
    let refused = tf.sign_in(&other, &tf.authenticator.code(tf.step)).await;

    // Assert: refused, and the error gives nothing away.
    assert!(refused["data"].is_null(), "{refused}");
    let text = refused.to_string();
    assert!(!text.contains(&sealed) && !text.contains(&tf.authenticator.base32));
}

#[tokio::test]
async fn a_server_without_a_key_makes_one_on_the_embedded_default_and_refuses_to_start_on_postgres()
{
    let app = spawn_app().await;
    if let crate::helpers::Backend::Postgres { .. } = backend() {
        // Act: `exchanger serve` over PostgreSQL without SECRET_KEY.
        let stderr = refused_start(&app, None).await;

        // Assert
        assert!(stderr.contains("SECRET_KEY"), "{stderr}");
        assert!(!stderr.contains("listening"), "{stderr}");
        return;
    }
    // Arrange: the embedded default with no key configured.
    let app = spawn_app_with(|c| c.security.secret_key = None).await;
    let exchanger::config::Storage::Embedded { data_dir } = &app.config.storage else {
        unreachable!("embedded backend");
    };
    let key_file = data_dir.join("secret.key");

    // Act
    let tf = two_factor_user(&app).await;
    let second = app.another_instance().await;
    let on_second = tf.sign_in(&second, &tf.authenticator.code(tf.step)).await;

    // Assert: one key, made once, readable by its owner only, used by every process.
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::metadata(&key_file).expect("the key was generated");
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(key.trim().len(), 64, "{key}");
    token_of(&on_second);
}

/// `exchanger serve` over `app`'s storage with `SECRET_KEY` set to `key` (or unset): what it
/// printed before it gave up (it must give up, within 60 s).
async fn refused_start(app: &TestApp, key: Option<&str>) -> String {
    let mut command = exchanger(app);
    match key {
        Some(key) => command.env("SECRET_KEY", key),
        None => command.env_remove("SECRET_KEY"),
    };
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        command
            .env("BIND_ADDR", "127.0.0.1:0")
            .arg("serve")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the server gave up within 60 s")
    .expect("exchanger runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "it started: {stderr}");
    stderr
}

#[tokio::test]
async fn a_malformed_secret_key_is_refused_naming_the_variable() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let stderr = refused_start(&app, Some("not-a-key")).await;

    // Assert
    assert!(stderr.contains("SECRET_KEY"), "{stderr}");
    assert!(
        !stderr.contains("not-a-key"),
        "the value is echoed: {stderr}"
    );
}

#[tokio::test]
async fn no_password_secret_or_code_reaches_the_log() {
    // Arrange: a server process logging everything it logs at debug level.
    let app = spawn_app().await;
    let server = ServerProcess::start(&app, &[("RUST_LOG", "debug")], None).await;
    let client = new_client();
    let post = |query: &'static str, variables: Value, token: Option<String>| {
        let mut request = client
            .post(format!("{}/graphql", server.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            request
                .send()
                .await
                .expect("sent")
                .json::<Value>()
                .await
                .expect("JSON")
        }
    };
    let email = crate::helpers::unique_email();
    let password = "a password to keep out of logs";
    let registered = post(
        "mutation($input: RegisterInput!) { register(input: $input) { token } }",
        json!({ "input": { "email": email, "password": password } }),
        None,
    )
    .await;
    let token = registered["data"]["register"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{registered}"))
        .to_owned();

    // Act: enrol, confirm, sign in with a code and a recovery code, fail with both.
    let enrolled = post(ENROLL, json!({}), Some(token.clone())).await;
    let authenticator = Authenticator::new(
        enrolled["data"]["enrollTotp"]["secret"]
            .as_str()
            .unwrap_or_else(|| panic!("{enrolled}")),
    );
    let step = settled_step().await;
    let confirmed = post(
        CONFIRM,
        json!({ "code": authenticator.code(step - 1) }),
        Some(token.clone()),
    )
    .await;
    let recovery: Vec<String> = serde_json::from_value(confirmed["data"]["confirmTotp"].clone())
        .unwrap_or_else(|_| panic!("{confirmed}"));
    let wrong = authenticator.wrong_code(step);
    let mut secrets = vec![
        password.to_owned(),
        authenticator.base32.clone(),
        authenticator.code(step - 1),
        authenticator.code(step),
        wrong.clone(),
        token.clone(),
    ];
    secrets.extend(recovery.iter().cloned());
    for code in [
        authenticator.code(step),
        wrong,
        recovery[0].clone(),
        "zzzzz-zzzzz".to_owned(),
    ] {
        post(
            LOGIN,
            json!({ "input": { "email": email, "password": password, "totpCode": code } }),
            None,
        )
        .await;
    }
    let signed_in = post(
        LOGIN,
        json!({ "input": { "email": email, "password": password, "totpCode": recovery[1] } }),
        None,
    )
    .await;
    let second_token = signed_in["data"]["login"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{signed_in}"))
        .to_owned();
    secrets.push(second_token);

    // Assert
    let log = server.log();
    assert!(
        log.contains("code=\"UNAUTHENTICATED\""),
        "the refused sign-ins are logged: {log}"
    );
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "{secret:?} is in the log");
    }
}

// ---- Step-up ----

/// Every mutation that needs a recent second factor, with arguments that pass the guard
/// and then fail or succeed harmlessly (`other_user` is the one permissions are granted to).
fn sensitive_mutations(other_user: &str) -> Vec<(&'static str, &'static str, Value)> {
    let nobody = uuid::Uuid::new_v4().to_string();
    vec![
        ("setExchangeRate", SET_RATE, json!({ "rate": "50" })),
        (
            "settlePayment",
            "mutation($id: ID!) { settlePayment(id: $id, status: SUCCEEDED) { id } }",
            json!({ "id": nobody }),
        ),
        (
            "completeOrder",
            "mutation($id: ID!) { completeOrder(id: $id) { id } }",
            json!({ "id": nobody }),
        ),
        (
            "grantPermission",
            "mutation($id: ID!) { grantPermission(userId: $id, permission: \"rates:write\") }",
            json!({ "id": other_user }),
        ),
        (
            "revokePermission",
            "mutation($id: ID!) { revokePermission(userId: $id, permission: \"rates:write\") }",
            json!({ "id": other_user }),
        ),
        (
            "changePassword",
            "mutation { changePassword(currentPassword: \"not the password\", newPassword: \"another good password\") }",
            json!({}),
        ),
        (
            "regenerateRecoveryCodes",
            "mutation { regenerateRecoveryCodes(code: \"000000\") }",
            json!({}),
        ),
        (
            "disableTotp",
            "mutation { disableTotp(code: \"000000\") }",
            json!({}),
        ),
        ("logoutAll", "mutation { logoutAll }", json!({})),
    ]
}

#[tokio::test]
async fn sensitive_mutations_need_a_recent_second_factor_and_step_up_renews_it() {
    // Arrange: an operator with two-factor sign-in on and every operator permission.
    let app = spawn_app().await;
    let operator = app.sign_up().await;
    let id = uuid::Uuid::parse_str(&operator.id).unwrap();
    for p in [
        "rates:write",
        "payments:write",
        "orders:write",
        "permissions:write",
    ] {
        let permission = exchanger::domain::Permission::parse("permission", p).unwrap();
        app.stack.users.grant(id, &permission).await.unwrap();
    }
    let tf = turn_on_two_factor(&app, operator).await;
    let token = tf.user.token.clone();
    let other = app.sign_up().await;
    app.set_rate("USD", "UAH", "41").await;
    let window = app.config.security.step_up_window;
    let minutes = i64::try_from(window.as_secs() / 60).unwrap();

    // Act + Assert: confirming proved the second factor; within the window it holds.
    let fresh = app.gql_as(&token, SET_RATE, json!({ "rate": "42" })).await;
    assert!(fresh["errors"].is_null(), "{fresh}");
    move_session_time(
        &app.stack,
        &token,
        SessionTime::SecondFactor,
        chrono::Utc::now() - chrono::Duration::minutes(minutes - 1),
    )
    .await;
    let inside = app.gql_as(&token, SET_RATE, json!({ "rate": "43" })).await;
    assert!(inside["errors"].is_null(), "{inside}");

    // Act: the window passes.
    move_session_time(
        &app.stack,
        &token,
        SessionTime::SecondFactor,
        chrono::Utc::now() - chrono::Duration::minutes(minutes + 1),
    )
    .await;

    // Assert: every sensitive mutation is refused, and none changes anything.
    for (name, query, variables) in sensitive_mutations(&other.id) {
        let body = app.gql_as(&token, query, variables).await;
        assert_eq!(code_of(&body), "STEP_UP_REQUIRED", "{name}: {body}");
        assert!(body["data"].is_null(), "{name}: {body}");
    }
    assert_eq!(rate_now(&app).await, "43");
    let me = app
        .gql_as(&token, "{ me { totpEnabled } }", json!({}))
        .await;
    assert_eq!(me["data"]["me"]["totpEnabled"], true, "{me}");
    // The password is unchanged: it still gets as far as asking for the code.
    let password_only = login(&app, &tf.user.email, PASSWORD, None).await;
    assert_eq!(code_of(&password_only), "MFA_REQUIRED", "{password_only}");
    let sessions = app.gql_as(&token, SESSIONS, json!({})).await;
    assert_eq!(sessions["data"]["mySessions"][0]["mfa"], true, "{sessions}");

    // Act: step up.
    let stepped = step_up(&app, &token, &tf.authenticator.code(tf.step)).await;

    // Assert: every one of them now gets past the guard.
    assert_eq!(stepped["data"]["stepUp"], true, "{stepped}");
    for (name, query, variables) in sensitive_mutations(&other.id) {
        let body = app.gql_as(&token, query, variables).await;
        assert_ne!(
            TestApp::error_code(&body).as_deref(),
            Some("STEP_UP_REQUIRED"),
            "{name}: {body}"
        );
    }
    assert_eq!(rate_now(&app).await, "50");
    // logoutAll, last of the list, went through.
    assert!(app.me_as(&token).await.is_null());
}

#[tokio::test]
async fn a_session_that_never_proved_the_second_factor_must_step_up() {
    // Arrange: a session opened before two-factor sign-in was turned on elsewhere.
    let app = spawn_app().await;
    let user = app.sign_up().await;
    let older = app.log_in(&user.email, PASSWORD).await.expect("signed in");
    let tf = turn_on_two_factor(&app, user).await;
    let change = "mutation { changePassword(currentPassword: \"correct horse battery\", newPassword: \"a brand new password\") }";

    // Act
    let sessions = app.gql_as(&older, SESSIONS, json!({})).await;
    let refused = app.gql_as(&older, change, json!({})).await;
    let stepped = step_up(&app, &older, &tf.authenticator.code(tf.step)).await;
    let changed = app.gql_as(&older, change, json!({})).await;

    // Assert
    let current = sessions["data"]["mySessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .cloned()
        .unwrap();
    assert_eq!(current["mfa"], false, "{sessions}");
    assert_eq!(code_of(&refused), "STEP_UP_REQUIRED", "{refused}");
    assert_eq!(stepped["data"]["stepUp"], true, "{stepped}");
    assert_eq!(changed["data"]["changePassword"], true, "{changed}");
    // A user without two-factor sign-in has nothing to step up with.
    let plain = app.sign_up().await;
    let nothing = step_up(&app, &plain.token, "123456").await;
    assert_eq!(code_of(&nothing), "CONFLICT", "{nothing}");
}

#[tokio::test]
async fn operators_without_two_factor_are_forbidden_where_it_is_required() {
    // Arrange
    let app = spawn_app_with(|c| c.security.require_mfa_for_operators = true).await;
    app.set_rate("USD", "UAH", "41").await;
    let operator = app.sign_up().await;
    let id = uuid::Uuid::parse_str(&operator.id).unwrap();
    let rates_write = exchanger::domain::Permission::parse("permission", "rates:write").unwrap();
    app.stack.users.grant(id, &rates_write).await.unwrap();

    // Act
    let refused = app
        .gql_as(&operator.token, SET_RATE, json!({ "rate": "42" }))
        .await;

    // Assert: FORBIDDEN, saying why; nothing changed; customers are not affected.
    assert_eq!(code_of(&refused), "FORBIDDEN", "{refused}");
    let message = refused["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("two-factor"), "{message}");
    assert_eq!(rate_now(&app).await, "41");
    let customer = app.sign_up().await;
    let order = app.create_order(&customer.token, "USD", "UAH", "10").await;
    assert!(order["errors"].is_null(), "{order}");

    // Act: the operator turns two-factor sign-in on.
    let tf = turn_on_two_factor(&app, operator).await;
    let allowed = app
        .gql_as(&tf.user.token, SET_RATE, json!({ "rate": "42" }))
        .await;

    // Assert
    assert!(allowed["errors"].is_null(), "{allowed}");
}

// ---- Security activity ----

#[tokio::test]
async fn every_kind_of_security_event_is_listed_newest_first_to_its_owner_only() {
    // Arrange
    let app = spawn_app().await;
    let user = app.sign_up().await;
    let email = user.email.clone();
    let mut expected = vec!["SIGN_IN"];
    let wrong = login(&app, &email, "not the password", None).await;
    assert_eq!(code_of(&wrong), "UNAUTHENTICATED");
    expected.push("SIGN_IN_FAILED");

    app.gql_as(
        &user.token,
        "mutation { requestEmailVerification }",
        json!({}),
    )
    .await;
    let mail = app.wait_for_mails(&email, 1).await.remove(0);
    let verified = app
        .gql(
            "mutation($t: String!) { verifyEmail(token: $t) { emailVerified } }",
            json!({ "t": mail.token }),
        )
        .await;
    assert_eq!(verified["data"]["verifyEmail"]["emailVerified"], true);
    expected.push("EMAIL_VERIFIED");

    let second_password = "a second good password";
    let changed = app
        .gql_as(
            &user.token,
            "mutation($new: String!) { changePassword(currentPassword: \"correct horse battery\", newPassword: $new) }",
            json!({ "new": second_password }),
        )
        .await;
    assert_eq!(changed["data"]["changePassword"], true, "{changed}");
    expected.push("PASSWORD_CHANGED");

    app.gql(
        "mutation($e: String!) { requestPasswordReset(email: $e) }",
        json!({ "e": email }),
    )
    .await;
    let reset_mail = app.wait_for_mails(&email, 2).await.remove(1);
    let reset = app
        .gql(
            "mutation($t: String!) { resetPassword(token: $t, newPassword: \"correct horse battery\") }",
            json!({ "t": reset_mail.token }),
        )
        .await;
    assert_eq!(reset["data"]["resetPassword"], true, "{reset}");
    expected.push("PASSWORD_RESET");

    let token = app.log_in(&email, PASSWORD).await.expect("signed in");
    expected.push("SIGN_IN");
    let user = TestUser {
        token: token.clone(),
        ..user
    };
    let tf = turn_on_two_factor(&app, user).await;
    expected.push("TOTP_ENABLED");

    let other = token_of(&login(&app, &email, PASSWORD, Some(&tf.recovery_codes[0])).await);
    expected.extend(["RECOVERY_CODE_USED", "SIGN_IN"]);

    let stepped = step_up(&app, &token, &tf.authenticator.code(tf.step)).await;
    assert_eq!(stepped["data"]["stepUp"], true, "{stepped}");
    expected.push("STEP_UP");

    let regenerated = app
        .gql_as(
            &token,
            "mutation($c: String!) { regenerateRecoveryCodes(code: $c) }",
            json!({ "c": tf.recovery_codes[1] }),
        )
        .await;
    let new_codes: Vec<String> =
        serde_json::from_value(regenerated["data"]["regenerateRecoveryCodes"].clone())
            .unwrap_or_else(|_| panic!("{regenerated}"));
    expected.extend(["RECOVERY_CODE_USED", "RECOVERY_CODES_REGENERATED"]);
    // The old codes went with the regeneration.
    let old = login(&app, &email, PASSWORD, Some(&tf.recovery_codes[2])).await;
    assert_eq!(code_of(&old), "UNAUTHENTICATED");
    expected.push("SIGN_IN_FAILED");

    let other_id = app.gql_as(&other, SESSIONS, json!({})).await["data"]["mySessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .clone();
    let revoked = app
        .gql_as(
            &token,
            "mutation($id: ID!) { revokeSession(id: $id) }",
            json!({ "id": other_id }),
        )
        .await;
    assert_eq!(revoked["data"]["revokeSession"], true, "{revoked}");
    expected.push("SESSION_REVOKED");

    let disabled = app
        .gql_as(
            &token,
            "mutation($c: String!) { disableTotp(code: $c) }",
            json!({ "c": new_codes[0] }),
        )
        .await;
    assert_eq!(disabled["data"]["disableTotp"], true, "{disabled}");
    expected.extend(["RECOVERY_CODE_USED", "TOTP_DISABLED"]);

    let last = app.log_in(&email, PASSWORD).await.expect("signed in");
    expected.push("SIGN_IN");
    let out = app.gql_as(&token, "mutation { logout }", json!({})).await;
    assert_eq!(out["data"]["logout"], true);
    expected.push("SIGN_OUT");
    expected.reverse();

    // Act: read them three at a time, and all at once.
    let paged = all_events(&app, &last, 3).await;
    let at_once = all_events(&app, &last, 100).await;

    // Assert: all twelve kinds, newest first, the same either way.
    assert_eq!(kinds(&paged), expected);
    assert_eq!(paged, at_once);
    let every: HashSet<String> = kinds(&paged).into_iter().collect();
    assert_eq!(every.len(), 12, "{every:?}");
    let times: Vec<chrono::DateTime<chrono::Utc>> = paged
        .iter()
        .map(|e| e["occurredAt"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert!(
        paged
            .iter()
            .all(|e| e["ipAddress"] == "127.0.0.1" && e["newDevice"] == false),
        "{paged:?}"
    );
    // Nothing secret is stored with them.
    let rows = {
        use entity::identity::security_events;
        use sea_orm::EntityTrait;
        security_events::Entity::find()
            .all(&app.stack.dbs.identity)
            .await
            .unwrap()
    };
    let dump = format!("{rows:?}");
    for secret in [PASSWORD, second_password, &tf.authenticator.base32]
        .into_iter()
        .chain(tf.recovery_codes.iter().map(String::as_str))
        .chain(new_codes.iter().map(String::as_str))
    {
        assert!(!dump.contains(secret), "{secret} is stored with the events");
    }
    // Another user sees only their own; anonymous callers none.
    let stranger = app.sign_up().await;
    assert_eq!(
        kinds(&all_events(&app, &stranger.token, 100).await),
        vec!["SIGN_IN"]
    );
    let anonymous = app.gql(EVENTS, json!({})).await;
    assert_eq!(code_of(&anonymous), "UNAUTHENTICATED");
}

#[tokio::test]
async fn security_events_refuse_bad_paging_arguments() {
    // Arrange
    let app = spawn_app().await;
    let user = app.sign_up().await;

    for (variables, field) in [
        (json!({ "first": 0 }), "first"),
        (json!({ "first": 101 }), "first"),
        (json!({ "after": "not a cursor" }), "after"),
    ] {
        // Act
        let body = app.gql_as(&user.token, EVENTS, variables.clone()).await;

        // Assert
        assert_eq!(code_of(&body), "BAD_USER_INPUT", "{variables}: {body}");
        assert_eq!(TestApp::error_field(&body).as_deref(), Some(field));
    }
}

#[tokio::test]
async fn a_sign_in_from_a_device_not_seen_before_is_marked_and_mailed() {
    // Arrange: a browser (keeping cookies) registers and signs in again.
    let app = spawn_app().await;
    let browser = new_client();
    let user = app
        .sign_up_with(SignUp {
            client: Some(&browser),
            ..SignUp::default()
        })
        .await;
    let again = app
        .request(LOGIN)
        .client(&browser)
        .variables(json!({ "input": { "email": user.email, "password": PASSWORD } }))
        .send()
        .await;
    token_of(&again);

    // Act: a phone, never seen before, without a device credential.
    let phone = app
        .request(LOGIN)
        .header("user-agent", "ExchangerPhone/1.0")
        .variables(json!({ "input": { "email": user.email, "password": PASSWORD } }))
        .send()
        .await;
    let phone_token = token_of(&phone);
    // The same phone (address and user agent) again, still without a credential.
    let phone_again = app
        .request(LOGIN)
        .header("user-agent", "ExchangerPhone/1.0")
        .variables(json!({ "input": { "email": user.email, "password": PASSWORD } }))
        .send()
        .await;
    token_of(&phone_again);

    // Assert: only the phone's first sign-in is new, and it alone was mailed.
    let events = all_events(&app, &phone_token, 100).await;
    let sign_ins: Vec<(Value, Value)> = events
        .iter()
        .filter(|e| e["kind"] == "SIGN_IN")
        .map(|e| (e["newDevice"].clone(), e["userAgent"].clone()))
        .collect();
    assert_eq!(
        sign_ins,
        vec![
            (json!(false), json!("ExchangerPhone/1.0")),
            (json!(true), json!("ExchangerPhone/1.0")),
            (json!(false), Value::Null),
            (json!(false), Value::Null),
        ],
        "{events:?}"
    );
    let mails = app.wait_for_mails(&user.email, 1).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].subject.contains("New sign-in"), "{mails:?}");
    assert!(mails[0].body.contains("ExchangerPhone/1.0"), "{mails:?}");
    assert!(!mails[0].body.contains(PASSWORD));
}

// ---- Session lifetimes ----

#[tokio::test]
async fn a_session_unused_for_the_idle_timeout_is_refused_by_every_instance() {
    // Arrange: two instances over the same storage; the session is cached in both.
    let app = spawn_app().await;
    let second = app.another_instance().await;
    let user = app.sign_up().await;
    let other = app.log_in(&user.email, PASSWORD).await.unwrap();
    assert!(!app.me_as(&user.token).await.is_null());
    assert!(!second.me_as(&user.token).await.is_null());
    let idle = chrono::Duration::from_std(app.config.security.session_idle).unwrap();

    // Act: a session used a while ago, but within the timeout, is refreshed.
    let a_while_ago = chrono::Utc::now() - chrono::Duration::minutes(5);
    move_session_time(&app.stack, &user.token, SessionTime::LastSeen, a_while_ago).await;
    assert!(!app.me_as(&user.token).await.is_null());

    // Assert
    let hash = token_hash(&user.token);
    eventually(&app, &hash, |seen| {
        seen > a_while_ago + chrono::Duration::minutes(4)
    })
    .await;

    // Act: the timeout passes without a use (as every process sees it).
    let long_ago = chrono::Utc::now() - idle - chrono::Duration::minutes(1);
    move_session_time(&app.stack, &user.token, SessionTime::LastSeen, long_ago).await;
    move_session_time(&second.stack, &user.token, SessionTime::LastSeen, long_ago).await;

    // Assert: refused on both instances, and no longer listed.
    assert!(app.me_as(&user.token).await.is_null());
    assert!(second.me_as(&user.token).await.is_null());
    let listed = app.gql_as(&other, SESSIONS, json!({})).await;
    assert_eq!(
        listed["data"]["mySessions"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    // Using it again does not bring it back.
    assert!(app.me_as(&user.token).await.is_null());
}

#[tokio::test]
async fn a_session_in_use_elsewhere_outlives_an_old_cached_copy() {
    // Arrange: the second instance cached the session long ago; the first saw it used
    // since (its database row says so).
    let app = spawn_app().await;
    let second = app.another_instance().await;
    let user = app.sign_up().await;
    assert!(!second.me_as(&user.token).await.is_null());
    let idle = chrono::Duration::from_std(app.config.security.session_idle).unwrap();
    let long_ago = chrono::Utc::now() - idle - chrono::Duration::minutes(1);
    move_session_time(&second.stack, &user.token, SessionTime::LastSeen, long_ago).await;
    let recently = chrono::Utc::now() - chrono::Duration::minutes(2);
    move_session_time(&app.stack, &user.token, SessionTime::LastSeen, recently).await;

    // Act
    let me = second.me_as(&user.token).await;

    // Assert
    assert_eq!(me["email"], user.email.as_str());
}

#[tokio::test]
async fn a_session_in_use_never_idles_out_and_an_unused_one_does_in_real_time() {
    // Arrange: a six-second idle timeout (the configuration allows whole minutes; the
    // rule is the same).
    let idle = Duration::from_secs(6);
    let app = spawn_app_with(|c| c.security.session_idle = idle).await;
    let user = app.sign_up().await;

    // Act + Assert: used every second for well past the timeout, it stays.
    let until = std::time::Instant::now() + 2 * idle;
    while std::time::Instant::now() < until {
        assert!(
            !app.me_as(&user.token).await.is_null(),
            "a session in use was refused"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Act: unused for longer than the timeout.
    tokio::time::sleep(idle + Duration::from_secs(1)).await;

    // Assert
    assert!(app.me_as(&user.token).await.is_null());
}

/// Waits until the `sessions` row of `hash` says it was last seen as `check` wants.
async fn eventually(
    app: &TestApp,
    hash: &str,
    check: impl Fn(chrono::DateTime<chrono::Utc>) -> bool,
) {
    crate::helpers::eventually(
        Duration::from_secs(10),
        "the session use is recorded",
        || {
            let app = &app;
            let check = &check;
            async move {
                app.session_rows()
                    .await
                    .iter()
                    .find(|s| s.token_hash == hash)
                    .and_then(|s| s.last_seen_at)
                    .is_some_and(check)
            }
        },
    )
    .await;
}

// ---- Context isolation ----

#[tokio::test]
async fn a_step_up_in_one_context_does_not_count_in_another() {
    // Arrange: a user with two-factor sign-in on has a session in web and one in admin.
    let app = spawn_app().await;
    let admin = app.stack_for(ApplicationContext::Admin);
    let tf = two_factor_user(&app).await;
    let without_code = admin
        .users
        .login(&tf.user.email, PASSWORD, None, ClientInfo::default())
        .await;
    assert!(
        matches!(without_code, Err(exchanger::error::AppError::MfaRequired)),
        "2FA is per user, so admin asks for it too"
    );
    let admin_session = admin
        .users
        .login(
            &tf.user.email,
            PASSWORD,
            Some(&tf.authenticator.code(tf.step)),
            ClientInfo::default(),
        )
        .await
        .expect("signed in to admin with a code");
    let admin_token = admin_session.token.expose().to_owned();
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    move_session_time(&admin, &admin_token, SessionTime::SecondFactor, past).await;
    move_session_time(&app.stack, &tf.user.token, SessionTime::SecondFactor, past).await;

    // Act: step up in web.
    let stepped = step_up(&app, &tf.user.token, &tf.authenticator.code(tf.step + 1)).await;

    // Assert: web may, admin may not.
    assert_eq!(stepped["data"]["stepUp"], true, "{stepped}");
    let in_web = app
        .stack
        .users
        .validate_session(&SessionToken::from_client(&tf.user.token).unwrap())
        .await
        .unwrap()
        .expect("web session");
    assert!(app.stack.users.require_step_up(&in_web).is_ok());
    let in_admin = admin
        .users
        .validate_session(&admin_session.token)
        .await
        .unwrap()
        .expect("admin session");
    assert!(matches!(
        admin.users.require_step_up(&in_admin),
        Err(exchanger::error::AppError::StepUpRequired)
    ));
    // Events are the user's, each with the context it happened in.
    let rows = {
        use entity::identity::security_events;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        security_events::Entity::find()
            .filter(security_events::Column::UserId.eq(uuid::Uuid::parse_str(&tf.user.id).unwrap()))
            .all(&app.stack.dbs.identity)
            .await
            .unwrap()
    };
    let contexts: HashSet<(String, String)> = rows
        .iter()
        .map(|r| (r.kind.clone(), r.application_context.clone()))
        .collect();
    assert!(
        contexts.contains(&("SIGN_IN".to_owned(), "admin".to_owned())),
        "{contexts:?}"
    );
    assert!(
        contexts.contains(&("STEP_UP".to_owned(), "web".to_owned())),
        "{contexts:?}"
    );
    let listed = kinds(&all_events(&app, &tf.user.token, 100).await);
    assert_eq!(
        listed.iter().filter(|k| *k == "SIGN_IN").count(),
        2,
        "{listed:?}"
    );
}
