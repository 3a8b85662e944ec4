//! SPEC §4 at the GraphQL edge: documents that would cost too much (fragment bombs, huge
//! selections), client mistakes that must come back with client codes, strings with control
//! characters, the sign-up limit, request errors without `data`, and query timeouts.

use crate::helpers::{PASSWORD, TestApp, spawn_app, spawn_app_with, unique_email};
use serde_json::{Value, json};
use std::time::Duration;

/// A fragment bomb: `levels` fragments, each spreading the previous one `fan_out` times,
/// with `leaf` at the bottom: `fan_out ^ levels` copies of `leaf` once expanded.
pub fn fragment_bomb(levels: usize, fan_out: usize, leaf: &str) -> String {
    let mut doc = format!("query {{ ...F{levels} }}\nfragment F0 on Query {{ {leaf} }}\n");
    for i in 1..=levels {
        let spreads = format!(" ...F{}", i - 1).repeat(fan_out);
        doc.push_str(&format!("fragment F{i} on Query {{{spreads} }}\n"));
    }
    doc
}

/// Posts a raw JSON body with an `Accept` header; status, headers' content type and body.
async fn post_accepting(app: &TestApp, body: Value, accept: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/graphql", app.address))
        .header("accept", accept)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    crate::helpers::assert_every_error_has_a_code(&body);
    (status, body)
}

#[tokio::test]
async fn fragment_bombs_are_refused_before_execution() {
    let app = spawn_app().await;
    // 10^12 `__typename`s in a few hundred bytes, and 10^9 real fields.
    for bomb in [
        fragment_bomb(12, 10, "__typename"),
        fragment_bomb(9, 10, "exchangeRates { id rate }"),
    ] {
        assert!(bomb.len() < 2_000);
        let body = app.gql(&bomb, json!({})).await;
        assert_eq!(
            TestApp::error_code(&body).as_deref(),
            Some("GRAPHQL_VALIDATION_FAILED"),
            "{body}"
        );
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("fields"),
            "{body}"
        );
    }
    // The server is still all there.
    let ok = app.gql("{ exchangeRates { id } }", json!({})).await;
    assert_eq!(ok["data"]["exchangeRates"], json!([]), "{ok}");
}

#[tokio::test]
async fn typename_and_introspection_fields_count_towards_the_size_limit() {
    let app = spawn_app_with(|c| c.limits.max_complexity = 10).await;
    let typenames = format!(
        "{{ {} }}",
        (0..11)
            .map(|i| format!("t{i}: __typename"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let body = app.gql(&typenames, json!({})).await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );
    // Eleven introspection fields.
    let introspection = "{ __schema { types { name kind description specifiedByURL isOneOf \
                         fields { name description isDeprecated } } } }";
    let body = app.gql(introspection, json!({})).await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );
}

#[tokio::test]
async fn the_standard_introspection_query_works_on_the_default_limits() {
    let app = spawn_app().await;
    let query = include_str!("../fixtures/introspection-query.graphql");
    let body = app.gql(query, json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
    let types = body["data"]["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == "Query"), "{body}");
    // Introspection that multiplies by the schema at every level is still refused.
    let nested =
        "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
    let body = app.gql(nested, json!({})).await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );
}

#[tokio::test]
async fn root_mutations_are_bounded_and_sign_in_mutations_run_once_per_request() {
    let app = spawn_app().await;
    let six_logouts = format!(
        "mutation {{ {} }}",
        (0..6)
            .map(|i| format!("l{i}: logout"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let body = app.gql(&six_logouts, json!({})).await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );

    // Two registrations aliased in one operation, and then spread over a batch.
    let register = |alias: &str, email: &str| {
        format!(
            "{alias}: register(input: {{email: \"{email}\", password: \"{PASSWORD}\"}}) {{ token }}"
        )
    };
    let (a, b) = (unique_email(), unique_email());
    let aliased = format!("mutation {{ {} {} }}", register("a", &a), register("b", &b));
    let body = app.gql(&aliased, json!({})).await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("GRAPHQL_VALIDATION_FAILED"),
        "{body}"
    );
    let batch = json!([
        { "query": format!("mutation {{ {} }}", register("a", &a)) },
        { "query": format!("mutation {{ {} }}", register("b", &b)) },
    ]);
    let (status, body) = post_accepting(&app, batch, "application/json").await;
    assert_eq!(status, 200);
    assert!(body[0]["errors"].is_null(), "{body}");
    assert_eq!(
        body[1]["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{body}"
    );
    assert!(app.user_row(&a).await.is_some());
    assert!(
        app.user_row(&b).await.is_none(),
        "the second sign-up never ran"
    );
}

#[tokio::test]
async fn client_mistakes_get_client_codes_never_internal() {
    let app = spawn_app().await;
    let cases = [
        // A required variable left out.
        (
            json!({ "query": "query($id: ID!) { order(id: $id) { id } }" }),
            "BAD_USER_INPUT",
        ),
        // Several operations, no operationName.
        (
            json!({ "query": "query A { me { id } } query B { me { id } }" }),
            "BAD_USER_INPUT",
        ),
        // An operationName that names nothing.
        (
            json!({ "query": "query A { me { id } }", "operationName": "B" }),
            "BAD_USER_INPUT",
        ),
        // A variable of the wrong type.
        (
            json!({ "query": "query($n: Int) { rateHistory(from: \"USD\", to: \"UAH\", first: $n) { id } }",
                    "variables": { "n": "many" } }),
            "BAD_USER_INPUT",
        ),
        // A subscription over POST.
        (
            json!({ "query": "subscription { rateChanged(from: \"USD\", to: \"UAH\") { rate } }" }),
            "BAD_USER_INPUT",
        ),
    ];
    for (request, expected) in cases {
        let (status, body) = post_accepting(&app, request.clone(), "application/json").await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], expected,
            "{request} -> {status} {body}"
        );
        assert!(status < 500, "{request} -> {status}");
    }
}

#[tokio::test]
async fn strings_with_control_characters_are_refused_before_any_database() {
    let app = spawn_app().await;
    let login = app
        .gql(
            "mutation($input: LoginInput!) { login(input: $input) { token } }",
            json!({ "input": { "email": "a\u{0}@example.com", "password": PASSWORD } }),
        )
        .await;
    assert_eq!(
        TestApp::error_code(&login).as_deref(),
        Some("BAD_USER_INPUT"),
        "{login}"
    );
    let email = format!("nul\u{1}{}", unique_email());
    let register = app
        .gql(
            "mutation($input: RegisterInput!) { register(input: $input) { token } }",
            json!({ "input": { "email": email, "password": PASSWORD } }),
        )
        .await;
    assert_eq!(
        TestApp::error_code(&register).as_deref(),
        Some("BAD_USER_INPUT")
    );

    // A NUL in a payment method, inline in the document: no payment is made.
    app.set_rate("USD", "UAH", "41.25").await;
    let user = app.sign_up().await;
    let order = app.order_id(&user.token, "10").await;
    let pay = format!(
        "mutation {{ createPayment(input: {{orderId: \"{order}\", paymentMethod: \"card\\u0000x\", \
         amount: \"10\", idempotencyKey: \"k1\"}}) {{ id }} }}"
    );
    let body = app.gql_as(&user.token, &pay, json!({})).await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("BAD_USER_INPUT"),
        "{body}"
    );
    let order = app
        .gql_as(
            &user.token,
            "query($id: ID!) { order(id: $id) { payments { id } } }",
            json!({ "id": order }),
        )
        .await;
    assert_eq!(order["data"]["order"]["payments"], json!([]), "{order}");
}

#[tokio::test]
async fn sign_ups_are_limited_per_client_address() {
    let app = spawn_app_with(|c| c.signup_limits.per_ip = 3).await;
    for _ in 0..3 {
        app.sign_up().await;
    }
    let body = app
        .gql(
            "mutation($input: RegisterInput!) { register(input: $input) { token } }",
            json!({ "input": { "email": unique_email(), "password": PASSWORD } }),
        )
        .await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("RATE_LIMITED"),
        "{body}"
    );
    assert!(
        body["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(app.user_count().await, 3);
}

#[tokio::test]
async fn password_reset_requests_are_limited_per_client_address_whatever_the_email() {
    // Arrange: a known account; the limit is 3 an hour.
    let app = spawn_app_with(|c| c.signup_limits.resets_per_ip = 3).await;
    let known = app.sign_up().await.email;
    let ask = |email: String| {
        let app = &app;
        async move {
            app.gql(
                "mutation($e: String!) { requestPasswordReset(email: $e) }",
                json!({ "e": email }),
            )
            .await
        }
    };

    // Act: three asks for unknown addresses use up the address's allowance.
    for _ in 0..3 {
        let body = ask(unique_email()).await;
        assert_eq!(body["data"]["requestPasswordReset"], true, "{body}");
    }
    let refused = ask(known.clone()).await;

    // Assert: refused for the known email too (the answer depends on the client, never on
    // the account), and no mail went out.
    assert_eq!(
        TestApp::error_code(&refused).as_deref(),
        Some("RATE_LIMITED"),
        "{refused}"
    );
    assert!(app.mails_to(&known).is_empty());
}

#[tokio::test]
async fn request_errors_carry_no_data_entry() {
    let app = spawn_app().await;
    for (query, code) in [
        ("{ exchangeRates { id ", "GRAPHQL_PARSE_FAILED"),
        ("{ noSuchField }", "GRAPHQL_VALIDATION_FAILED"),
    ] {
        for (accept, status) in [
            ("application/graphql-response+json", 400),
            ("application/json", 200),
        ] {
            let (got, body) = post_accepting(&app, json!({ "query": query }), accept).await;
            assert_eq!(got, status, "{accept}: {body}");
            assert_eq!(body["errors"][0]["extensions"]["code"], code);
            assert!(body.get("data").is_none(), "{accept}: {body}");
        }
    }
    // An execution error keeps its `data` (null or not).
    let (status, body) = post_accepting(
        &app,
        json!({ "query": "{ exchangeRate(from: \"usd\", to: \"UAH\") { rate } }" }),
        "application/graphql-response+json",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("data").is_some(), "{body}");
}

#[tokio::test]
async fn with_introspection_off_there_are_no_suggestions_and_no_graphiql() {
    let app = spawn_app_with(|c| c.limits.introspection = false).await;
    let body = app.gql("{ exchangeRatez { id } }", json!({})).await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(!message.contains("Did you mean"), "{message}");
    let page = reqwest::Client::new()
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_ne!(page.status(), 200);
    assert!(!page.text().await.unwrap().contains("<html"));

    let on = spawn_app().await;
    let body = on.gql("{ exchangeRatez { id } }", json!({})).await;
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Did you mean"),
        "{body}"
    );
}

/// Holds the web database locked until released: PostgreSQL, an open transaction that took
/// `ACCESS EXCLUSIVE` on `exchange_rates` (readers and writers wait); SQLite, an open write
/// transaction (writers wait; WAL readers never do).
struct WebDatabaseLock {
    release: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl WebDatabaseLock {
    async fn take(app: &TestApp) -> Self {
        use exchanger::config::Storage;
        use sea_orm::{ConnectionTrait, TransactionTrait};
        let (locked_tx, locked) = tokio::sync::oneshot::channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let storage = app.config.storage.clone();
        let pool = app.stack.dbs.web.clone();
        let done = tokio::spawn(async move {
            match storage {
                Storage::External { .. } => {
                    let txn = pool.begin().await.expect("transaction");
                    txn.execute_unprepared("LOCK TABLE exchange_rates IN ACCESS EXCLUSIVE MODE")
                        .await
                        .expect("lock taken");
                    let _ = locked_tx.send(());
                    let _ = released.await;
                    txn.rollback().await.expect("released");
                }
                Storage::Embedded { .. } => {
                    let txn = pool
                        .begin_with_options(exchanger::db::write_txn())
                        .await
                        .expect("write transaction");
                    txn.execute_unprepared("DELETE FROM exchange_rates WHERE 1 = 0")
                        .await
                        .expect("lock taken");
                    let _ = locked_tx.send(());
                    let _ = released.await;
                    txn.rollback().await.expect("released");
                }
            }
        });
        locked.await.expect("lock taken");
        Self { release, done }
    }

    async fn release(self) {
        let _ = self.release.send(());
        self.done.await.expect("lock task");
    }
}

#[tokio::test]
async fn a_query_that_outlives_its_timeout_answers_timeout() {
    let app = spawn_app_with(|c| c.query_timeout = Duration::from_millis(500)).await;
    if matches!(
        app.config.storage,
        exchanger::config::Storage::Embedded { .. }
    ) {
        // Nothing can hold an SQLite (WAL) read: the PostgreSQL pass runs this test.
        return;
    }
    let lock = WebDatabaseLock::take(&app).await;
    let body = app.gql("{ exchangeRates { id } }", json!({})).await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("TIMEOUT"),
        "{body}"
    );
    lock.release().await;
    let body = app.gql("{ exchangeRates { id } }", json!({})).await;
    assert!(body["errors"].is_null(), "{body}");
}

#[tokio::test]
async fn a_write_that_waits_past_the_statement_timeout_answers_timeout_and_commits_nothing() {
    let app = spawn_app_with(|c| c.statement_timeout = Duration::from_millis(500)).await;
    let operator = app.operator(&["rates:write"]).await;
    let lock = WebDatabaseLock::take(&app).await;
    let body = app
        .gql_as(
            &operator,
            "mutation { setExchangeRate(input: {fromCurrency: \"USD\", toCurrency: \"UAH\", rate: \"41\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        TestApp::error_code(&body).as_deref(),
        Some("TIMEOUT"),
        "{body}"
    );
    lock.release().await;
    let history = app
        .gql(
            "{ rateHistory(from: \"USD\", to: \"UAH\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(history["data"]["rateHistory"], json!([]), "{history}");
}
