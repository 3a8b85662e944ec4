//! The CLI against the same storage as the test server.

use crate::helpers::{Socket, TestApp, next_payload, spawn_app, subscriber};
use crate::process::ServerProcess;
use exchanger::config::Storage;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn cli(app: &TestApp) -> tokio::process::Command {
    crate::process::exchanger(app)
}

#[tokio::test]
async fn rates_set_writes_a_rate_the_server_serves() {
    let app = spawn_app().await;
    let out = cli(&app)
        .args(["rates", "set", "USD", "UAH", "41.25"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body = app
        .gql(
            r#"{ exchangeRate(from: "USD", to: "UAH") { rate } }"#,
            json!({}),
        )
        .await;
    assert_eq!(body["data"]["exchangeRate"]["rate"], "41.25000000");

    let bad = cli(&app)
        .args(["rates", "set", "USD", "usd", "1"])
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("TO"));
}

#[tokio::test]
async fn grant_gives_a_permission_in_the_named_context_only() {
    let app = spawn_app().await;
    let user = app.sign_up().await;
    let id: uuid::Uuid = user.id.parse().unwrap();
    // The CLI runs in its own process: the server reads the permissions it wrote from the
    // database (the user is not cached until a request validates the session).
    let fresh = app.sign_up().await;
    for args in [
        vec![
            "grant",
            fresh.email.as_str(),
            "rates:write",
            "--context",
            "admin",
        ],
        vec!["grant", fresh.email.as_str(), "orders:write"],
    ] {
        let out = cli(&app).args(&args).output().await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let me = app
        .gql_as(&fresh.token, "{ me { permissions } }", json!({}))
        .await;
    assert_eq!(
        me["data"]["me"]["permissions"],
        json!(["orders:write"]),
        "only the web permission counts: {me}"
    );

    let out = cli(&app)
        .args(["grant", &user.email, "rates:write"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        app.stack.users.adapter().permissions(id).await.unwrap(),
        vec!["rates:write".to_owned()]
    );
    let out = cli(&app)
        .args(["revoke", &user.email, "rates:write"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    assert!(
        app.stack
            .users
            .adapter()
            .permissions(id)
            .await
            .unwrap()
            .is_empty()
    );

    let unknown = cli(&app)
        .args(["grant", "nobody@example.com", "rates:write"])
        .output()
        .await
        .unwrap();
    assert!(!unknown.status.success());
}

#[test]
fn an_unknown_or_unserved_context_stops_start_up_with_its_name() {
    for (value, needle) in [("bogus", "APP_CONTEXT"), ("admin", "APP_CONTEXT")] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_exchanger"))
            .env_clear()
            .env("APP_CONTEXT", value)
            .arg("schema")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr).to_uppercase();
        assert!(
            stderr.contains(needle) || stderr.contains("APP-CONTEXT"),
            "{stderr}"
        );
    }
}

/// `exchanger` with `args` over `app`'s storage and `env` added: (success, stdout, stderr).
async fn run(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = cli(app)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The same binary with nothing but `env` and `args` (no storage of a test app).
fn bare(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_exchanger"))
        .env_clear()
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const USD_UAH: &str = r#"{ exchangeRate(from: "USD", to: "UAH") { rate } }"#;

async fn usd_uah(app: &TestApp) -> Value {
    app.gql(USD_UAH, json!({})).await["data"]["exchangeRate"]["rate"].clone()
}

#[tokio::test]
async fn grant_refuses_a_permission_the_server_never_checks_and_names_the_known_ones() {
    let app = spawn_app().await;
    let user = app.sign_up().await;
    let (ok, _, stderr) = run(&app, &["grant", &user.email, "rates:writ"], &[]).await;
    assert!(!ok);
    for known in [
        "rates:write",
        "orders:write",
        "payments:write",
        "analytics:read",
        "permissions:write",
    ] {
        assert!(stderr.contains(known), "{stderr}");
    }
    let id: uuid::Uuid = user.id.parse().unwrap();
    assert!(
        app.stack
            .users
            .adapter()
            .permissions(id)
            .await
            .unwrap()
            .is_empty()
    );
    // Revoking accepts any well-formed name (one stored before names were checked).
    let (ok, stdout, stderr) = run(&app, &["revoke", &user.email, "rates:writ"], &[]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("did not have"), "{stdout}");
}

#[tokio::test]
async fn options_work_before_and_after_the_subcommand() {
    let app = spawn_app().await;
    let (ok, _, stderr) = run(
        &app,
        &["rates", "set", "USD", "UAH", "40", "--log-format", "json"],
        &[],
    )
    .await;
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = run(
        &app,
        &["--log-format", "json", "rates", "set", "USD", "UAH", "41"],
        &[],
    )
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(usd_uah(&app).await, "41.00000000");
    // A bad option after the subcommand is read too (and refused).
    let (ok, stderr) = bare(&["schema", "--max-depth", "abc"], &[]);
    assert!(!ok);
    assert!(stderr.contains("--max-depth"), "{stderr}");
}

#[test]
fn a_bad_setting_in_the_environment_is_named_by_its_variable() {
    for (variable, value) in [
        ("GRAPHQL_MAX_DEPTH", "abc"),
        ("LOG_FORMAT", "xml"),
        ("BIND_ADDR", "nope"),
        ("COOKIE_SECURE", "maybe"),
        ("PAYMENT_WINDOW_MINUTES", "-1"),
    ] {
        let (ok, stderr) = bare(&["schema"], &[(variable, value)]);
        assert!(!ok, "{variable}={value} was accepted");
        assert!(
            stderr.contains(&format!("'{value}' in {variable}")),
            "{variable}: {stderr}"
        );
    }
    // Checks made after parsing name the variable as well.
    let (ok, stderr) = bare(&["schema"], &[("TRUSTED_PROXIES", "10.0.0.0/99")]);
    assert!(!ok);
    assert!(stderr.contains("TRUSTED_PROXIES"), "{stderr}");
}

#[test]
fn an_unreachable_database_is_reported_once_with_its_cause_and_without_the_password() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let (ok, stderr) = bare(
        &["migrate"],
        &[
            (
                "DATABASE_IDENTITY_URL",
                "postgres://ann:s3cret-pw@127.0.0.1:1/exchanger_identity",
            ),
            (
                "DATABASE_WEB_URL",
                "postgres://ann:s3cret-pw@127.0.0.1:1/exchanger_web",
            ),
            ("REDIS_URL", "redis://127.0.0.1:1"),
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("DATABASE_IDENTITY_URL"), "{stderr}");
    assert!(
        stderr.contains("127.0.0.1:1/exchanger_identity"),
        "{stderr}"
    );
    assert_eq!(
        stderr.to_lowercase().matches("connection refused").count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("timed out"), "{stderr}");
    assert!(!stderr.contains("s3cret-pw"), "{stderr}");
}

#[tokio::test]
async fn an_unreachable_redis_is_a_warning_or_with_redis_required_an_error() {
    let app = spawn_app().await;
    if matches!(app.config.storage, Storage::Embedded { .. }) {
        return; // no Redis on the embedded default
    }
    let redis_var = match &app.config.storage {
        Storage::External {
            redis: exchanger::config::Redis::Cluster(_),
            ..
        } => "REDIS_CLUSTER_NODES",
        _ => "REDIS_URL",
    };
    let down = [(redis_var, "redis://127.0.0.1:1")];
    let (ok, _, stderr) = run(&app, &["rates", "set", "USD", "UAH", "39"], &down).await;
    assert!(ok, "{stderr}");
    assert!(stderr.contains(&format!("{redis_var}: Redis")), "{stderr}");
    assert!(stderr.contains("does not answer"), "{stderr}");
    assert_eq!(usd_uah(&app).await, "39.00000000");

    let required = [down[0], ("REDIS_REQUIRED", "true")];
    let (ok, _, stderr) = run(&app, &["rates", "set", "USD", "UAH", "38"], &required).await;
    assert!(!ok, "started without Redis although REDIS_REQUIRED is set");
    assert!(stderr.contains("REDIS_REQUIRED"), "{stderr}");
    assert_eq!(usd_uah(&app).await, "39.00000000");
}

#[tokio::test]
async fn rates_import_sets_every_rate_and_tells_running_servers() {
    // Arrange: a cached rate and a live subscription to it.
    let app = spawn_app().await;
    app.set_rate("USD", "UAH", "41.25").await;
    assert_eq!(usd_uah(&app).await, "41.25000000");
    let mut socket = subscriber(&app).await;
    // The subscription is live once a rate set now reaches it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        app.set_rate("USD", "UAH", "41.30").await;
        if next_rate(&mut socket, Duration::from_millis(300))
            .await
            .is_some()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the subscription never started");
    }
    while next_rate(&mut socket, Duration::from_millis(200))
        .await
        .is_some()
    {}
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        "from,to,rate,valid_from,valid_until\n\
         # morning rates\n\
         USD,UAH,42.5\n\
         EUR,UAH,44.10\n\
         GBP,UAH,52.125,2020-01-01T00:00:00Z\n",
    )
    .unwrap();

    // Act
    let (ok, stdout, stderr) = run(
        &app,
        &["rates", "import", &file.path().to_string_lossy()],
        &[],
    )
    .await;

    // Assert: all three served at once, the cached one replaced, subscribers told.
    assert!(ok, "{stderr}");
    assert!(stdout.contains("imported 3 rates"), "{stdout}");
    assert_eq!(usd_uah(&app).await, "42.50000000");
    let eur = app
        .gql(
            r#"{ exchangeRate(from: "EUR", to: "UAH") { rate } }"#,
            json!({}),
        )
        .await;
    assert_eq!(eur["data"]["exchangeRate"]["rate"], "44.10000000", "{eur}");
    let gbp = app
        .gql(
            r#"{ exchangeRate(from: "GBP", to: "UAH") { rate validFrom } }"#,
            json!({}),
        )
        .await;
    assert_eq!(gbp["data"]["exchangeRate"]["rate"], "52.12500000", "{gbp}");
    assert_eq!(
        next_rate(&mut socket, Duration::from_secs(10)).await,
        Some(json!("42.50000000"))
    );
}

#[tokio::test]
async fn rates_import_is_all_or_nothing_with_the_line_of_every_error() {
    let app = spawn_app().await;
    app.set_rate("USD", "UAH", "41.25").await;
    app.set_rate("EUR", "UAH", "44").await;
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().to_string_lossy().into_owned();

    // Lines that cannot be read: each reported, nothing written.
    std::fs::write(
        &path,
        "USD,UAH,50\nEUR,UAH,abc\nUSD,usd,1\nGBP,UAH,2,yesterday\n",
    )
    .unwrap();
    let (ok, _, stderr) = run(&app, &["rates", "import", &path], &[]).await;
    assert!(!ok);
    for line in ["line 2:", "line 3:", "line 4:"] {
        assert!(stderr.contains(line), "{line} missing: {stderr}");
    }
    assert!(!stderr.contains("line 1:"), "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert_eq!(usd_uah(&app).await, "41.25000000");

    // A line the database refuses (a start before the pair's latest rate): the earlier
    // lines are rolled back too.
    std::fs::write(&path, "USD,UAH,50\nEUR,UAH,45,2000-01-01T00:00:00Z\n").unwrap();
    let (ok, _, stderr) = run(&app, &["rates", "import", &path], &[]).await;
    assert!(!ok);
    assert!(stderr.contains("line 2: valid_from"), "{stderr}");
    assert_eq!(usd_uah(&app).await, "41.25000000");

    let (ok, _, stderr) = run(&app, &["rates", "import", "/nonexistent/rates.csv"], &[]).await;
    assert!(!ok);
    assert!(stderr.contains("/nonexistent/rates.csv"), "{stderr}");
}

/// The rate of the next `rateChanged` event on `socket`, if one comes within `within`.
async fn next_rate(socket: &mut Socket, within: Duration) -> Option<Value> {
    next_payload(socket, within)
        .await
        .map(|payload| payload["data"]["rateChanged"]["rate"].clone())
}

#[tokio::test]
async fn the_development_mailer_shows_a_reset_token_that_works() {
    // Arrange: a server process with the development mailer over the app's storage.
    let app = spawn_app().await;
    let user = app.sign_up().await;
    let mail_home = tempfile::tempdir().unwrap();
    let data_dir = match &app.config.storage {
        Storage::Embedded { data_dir } => data_dir.clone(),
        Storage::External { .. } => mail_home.path().to_owned(),
    };
    let data_dir = data_dir.to_string_lossy().into_owned();
    let env = [("MAILER", "dev"), ("DATA_DIR", data_dir.as_str())];
    let server = ServerProcess::start(&app, &env, None).await;
    let post = |query: &'static str, variables: Value| {
        let url = format!("{}/graphql", server.address);
        async move {
            reqwest::Client::new()
                .post(url)
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };

    // Act: ask for a reset, read the token with `exchanger mail list`.
    let asked = post(
        "mutation($e: String!) { requestPasswordReset(email: $e) }",
        json!({ "e": user.email }),
    )
    .await;
    assert_eq!(asked["data"]["requestPasswordReset"], true, "{asked}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let token = loop {
        let (ok, stdout, stderr) = run(
            &app,
            &["mail", "list", "--to", &user.email, "--last", "1"],
            &env,
        )
        .await;
        assert!(ok, "{stderr}");
        if let Some(token) = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("token: "))
        {
            break token.to_owned();
        }
        assert!(Instant::now() < deadline, "no mail was written: {stdout}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Assert: the token resets the password; the log names the file and the token.
    let reset = post(
        "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }",
        json!({ "t": token, "p": "a brand new passphrase" }),
    )
    .await;
    assert_eq!(reset["data"]["resetPassword"], true, "{reset}");
    assert!(
        app.log_in(&user.email, "a brand new passphrase")
            .await
            .is_ok()
    );
    let log = server.log();
    assert!(log.contains(&token), "the token is not in the log:\n{log}");
    assert!(log.contains("GraphiQL: http://127.0.0.1:"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log that is not a terminal"
    );
}
