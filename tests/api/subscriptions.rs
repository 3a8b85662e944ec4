//! `rateChanged` over a real WebSocket client speaking `graphql-transport-ws`.

use crate::helpers::{TestApp, spawn_app};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const SET_RATE: &str =
    "mutation($input: SetExchangeRateInput!) { setExchangeRate(input: $input) { id rate } }";
const RATE_CHANGED: &str =
    r#"subscription { rateChanged(from: "USD", to: "UAH") { fromCurrency toCurrency rate } }"#;
/// Longest wait for anything the server should do promptly.
const PATIENCE: Duration = Duration::from_secs(15);

/// Opens `/graphql/ws` with the `graphql-transport-ws` subprotocol and, optionally, an
/// `Origin` header; the upgrade response's error when it is refused.
async fn open(app: &TestApp, origin: Option<&str>) -> Result<Socket, WsError> {
    let mut request = format!("ws://127.0.0.1:{}/graphql/ws", app.port)
        .into_client_request()
        .expect("valid WebSocket request");
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    if let Some(origin) = origin {
        headers.insert("Origin", HeaderValue::from_str(origin).expect("origin"));
    }
    let (socket, response) = timeout(PATIENCE, connect_async(request))
        .await
        .expect("upgrade answered in time")?;
    assert_eq!(
        response
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok()),
        Some("graphql-transport-ws"),
        "server picked the protocol"
    );
    Ok(socket)
}

async fn send(socket: &mut Socket, message: Value) {
    timeout(PATIENCE, socket.send(Message::text(message.to_string())))
        .await
        .expect("sent in time")
        .expect("sent");
}

/// The next protocol message, answering protocol pings on the way; `None` when nothing
/// arrives within `wait`.
async fn receive_within(socket: &mut Socket, wait: Duration) -> Option<Value> {
    let deadline = Instant::now() + wait;
    loop {
        let frame = timeout(
            deadline.saturating_duration_since(Instant::now()),
            socket.next(),
        )
        .await
        .ok()?
        .expect("socket still open")
        .expect("valid frame");
        match frame {
            Message::Text(text) => {
                let message: Value = serde_json::from_str(text.as_str()).expect("JSON message");
                if message["type"] == "ping" {
                    send(socket, json!({ "type": "pong" })).await;
                    continue;
                }
                return Some(message);
            }
            Message::Close(close) => panic!("server closed the socket: {close:?}"),
            // WebSocket-level pings are answered by tungstenite itself.
            _ => continue,
        }
    }
}

/// The next protocol message, which must come within `PATIENCE`.
async fn receive(socket: &mut Socket) -> Value {
    receive_within(socket, PATIENCE)
        .await
        .expect("a message within the deadline")
}

/// A socket past `connection_init`/`connection_ack`.
async fn initialised(app: &TestApp) -> Socket {
    let mut socket = open(app, None).await.expect("upgrade accepted");
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": {} }),
    )
    .await;
    let ack = receive(&mut socket).await;
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
}

async fn set_rate(app: &TestApp, operator: &str, from: &str, to: &str, rate: &str) {
    let body = app
        .gql_as(
            operator,
            SET_RATE,
            json!({ "input": { "fromCurrency": from, "toCurrency": to, "rate": rate } }),
        )
        .await;
    assert!(body["errors"].is_null(), "rate set: {body}");
}

/// The `rateChanged` value of a `next` message for subscription "1".
fn delivered(message: &Value) -> &Value {
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(message["id"], "1", "{message}");
    assert!(message["payload"]["errors"].is_null(), "{message}");
    &message["payload"]["data"]["rateChanged"]
}

#[tokio::test]
async fn rate_changed_delivers_new_rates_of_the_subscribed_pair_only() {
    // Arrange: a subscribed client and an operator.
    let app = spawn_app().await;
    let operator = app.operator(&["rates:write"]).await;
    let mut socket = initialised(&app).await;
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": RATE_CHANGED } }),
    )
    .await;

    // The server registers its receiver some time after `subscribe`: keep setting fresh
    // USD/UAH rates until the first one arrives, which proves the subscription is live.
    let mut warm_up: Vec<String> = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    let first = loop {
        assert!(
            Instant::now() < deadline,
            "no rate delivered after {} tries",
            warm_up.len()
        );
        let rate = format!("40.{:08}", warm_up.len() + 1);
        set_rate(&app, &operator, "USD", "UAH", &rate).await;
        warm_up.push(rate);
        if let Some(message) = receive_within(&mut socket, Duration::from_millis(200)).await {
            break message;
        }
    };
    let first = delivered(&first);
    assert_eq!(first["fromCurrency"], "USD");
    assert_eq!(first["toCurrency"], "UAH");
    assert!(
        warm_up.iter().any(|r| first["rate"] == json!(r)),
        "delivered a rate that was set: {first}"
    );

    // Act: another pair's rate, then the subscribed pair's.
    set_rate(&app, &operator, "EUR", "UAH", "44.1").await;
    set_rate(&app, &operator, "USD", "UAH", "41.5").await;

    // Assert: rates arrive in the order they were set, so a delivered EUR rate would come
    // before 41.5; anything before it is a late warm-up rate.
    loop {
        let message = receive(&mut socket).await;
        let rate = delivered(&message);
        assert_eq!(
            (&rate["fromCurrency"], &rate["toCurrency"]),
            (&json!("USD"), &json!("UAH")),
            "only the subscribed pair is delivered: {message}"
        );
        if rate["rate"] == "41.50000000" {
            assert_eq!(
                message,
                json!({
                    "id": "1",
                    "type": "next",
                    "payload": { "data": { "rateChanged": {
                        "fromCurrency": "USD", "toCurrency": "UAH", "rate": "41.50000000"
                    } } }
                })
            );
            break;
        }
        assert!(
            warm_up.iter().any(|r| rate["rate"] == json!(r)),
            "only rates that were set are delivered: {message}"
        );
    }

    // And nothing else was queued before the server ends the subscription: no EUR rate.
    send(&mut socket, json!({ "id": "1", "type": "complete" })).await;
    assert_eq!(
        receive(&mut socket).await,
        json!({ "id": "1", "type": "complete" })
    );
}

#[tokio::test]
async fn rate_changed_with_a_bad_pair_reports_bad_user_input_and_completes() {
    let app = spawn_app().await;
    let mut socket = initialised(&app).await;

    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": {
            "query": r#"subscription { rateChanged(from: "usd", to: "UAH") { rate } }"#
        } }),
    )
    .await;

    let message = receive(&mut socket).await;
    assert_eq!(message["type"], "next", "{message}");
    assert_eq!(message["id"], "1");
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{message}"
    );
    assert_eq!(
        message["payload"]["errors"][0]["extensions"]["field"], "from",
        "{message}"
    );
    let done = receive(&mut socket).await;
    assert_eq!(done, json!({ "id": "1", "type": "complete" }));
}

#[tokio::test]
async fn a_foreign_browser_origin_is_refused_at_the_websocket_upgrade() {
    let app = spawn_app().await;

    let refused = open(&app, Some("http://evil.example")).await;

    match refused {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
        }
        Err(other) => panic!("expected HTTP 403, got {other:?}"),
        Ok(_) => panic!("a foreign origin was upgraded"),
    }
}

#[tokio::test]
async fn no_origin_and_the_servers_own_origin_are_accepted_at_the_websocket_upgrade() {
    let app = spawn_app().await;

    let without = open(&app, None).await;
    let same_site = open(&app, Some(&format!("http://127.0.0.1:{}", app.port))).await;

    let mut without = without.expect("no Origin (not a browser) is accepted");
    same_site.expect("the server's own origin is accepted");
    // The accepted socket speaks the protocol.
    send(
        &mut without,
        json!({ "type": "connection_init", "payload": {} }),
    )
    .await;
    assert_eq!(receive(&mut without).await["type"], "connection_ack");
}

#[tokio::test]
async fn a_configured_cors_origin_is_accepted_at_the_websocket_upgrade() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.cors_origins = vec!["https://app.example".to_owned()];
    })
    .await;

    let allowed = open(&app, Some("https://app.example")).await;
    let other = open(&app, Some("https://evil.example")).await;

    allowed.expect("configured origin is accepted");
    assert!(
        matches!(other, Err(WsError::Http(ref r)) if r.status() == StatusCode::FORBIDDEN),
        "other origins stay refused"
    );
}
