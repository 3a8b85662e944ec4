//! The CLI against the same storage as the test server.

use crate::helpers::spawn_app;
use serde_json::json;

fn cli(app: &crate::helpers::TestApp) -> tokio::process::Command {
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
