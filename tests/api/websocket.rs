//! SPEC §4 for WebSockets: the graphql-transport-ws rules (init deadline 4408, subscribe
//! before ack 4401, duplicate id 4409, malformed message 4400, no subprotocol 4406), the
//! message size limit (refused before parsing), the document limits, and the caps on
//! subscriptions per connection and sockets per client address.

use crate::edge::fragment_bomb;
use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const PATIENCE: Duration = Duration::from_secs(15);
const RATE_CHANGED: &str = "subscription { rateChanged(from: \"USD\", to: \"UAH\") { rate } }";

async fn open_with(app: &TestApp, protocol: Option<&str>) -> Result<Socket, WsError> {
    let mut request = format!("ws://127.0.0.1:{}/graphql/ws", app.port)
        .into_client_request()
        .expect("valid request");
    if let Some(protocol) = protocol {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(protocol).expect("header"),
        );
    }
    timeout(PATIENCE, tokio_tungstenite::connect_async(request))
        .await
        .expect("upgrade answered in time")
        .map(|(socket, _)| socket)
}

async fn open(app: &TestApp) -> Socket {
    open_with(app, Some("graphql-transport-ws"))
        .await
        .expect("upgrade accepted")
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .expect("sent");
}

/// The next protocol message (text), or `None` when the server closed.
async fn next_message(socket: &mut Socket) -> Option<Value> {
    loop {
        let frame = timeout(PATIENCE, socket.next())
            .await
            .expect("the server answers in time")?;
        match frame {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).expect("JSON")),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Reads until the server closes; the close code and reason.
async fn close_of(socket: &mut Socket) -> (u16, String) {
    loop {
        let frame = timeout(PATIENCE, socket.next())
            .await
            .expect("the server closes in time")
            .expect("a close frame before the end");
        match frame {
            Ok(Message::Close(Some(frame))) => {
                return (frame.code.into(), frame.reason.to_string());
            }
            Ok(Message::Close(None)) => return (1005, String::new()),
            Ok(_) => continue,
            Err(err) => panic!("no close frame: {err}"),
        }
    }
}

async fn initialised(app: &TestApp) -> Socket {
    let mut socket = open(app).await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    let ack = next_message(&mut socket).await.expect("an ack");
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
}

fn subscribe(id: &str, query: &str) -> Value {
    json!({ "id": id, "type": "subscribe", "payload": { "query": query } })
}

#[tokio::test]
async fn a_socket_that_never_initialises_is_closed_with_4408() {
    let app = spawn_app_with(|c| c.ws.init_timeout = Duration::from_millis(300)).await;
    let mut socket = open(&app).await;
    let (code, reason) = close_of(&mut socket).await;
    assert_eq!(code, 4408, "{reason}");
}

#[tokio::test]
async fn subscribing_before_the_ack_is_closed_with_4401() {
    let app = spawn_app().await;
    let mut socket = open(&app).await;
    send(&mut socket, subscribe("1", RATE_CHANGED)).await;
    assert_eq!(close_of(&mut socket).await.0, 4401);
}

#[tokio::test]
async fn a_duplicate_subscription_id_is_closed_with_4409() {
    let app = spawn_app().await;
    let mut socket = initialised(&app).await;
    send(&mut socket, subscribe("same", RATE_CHANGED)).await;
    send(&mut socket, subscribe("same", RATE_CHANGED)).await;
    let (code, reason) = close_of(&mut socket).await;
    assert_eq!(code, 4409, "{reason}");
    assert!(reason.contains("same"), "{reason}");
}

#[tokio::test]
async fn malformed_messages_and_binary_frames_are_closed_with_4400() {
    let app = spawn_app().await;
    for bad in [
        Message::text("not json"),
        Message::text(r#"{"type":"subscribe","id":"1"}"#),
        Message::text(r#"{"type":"no_such_type"}"#),
        Message::binary(br#"{"type":"connection_init"}"#.to_vec()),
    ] {
        let mut socket = open(&app).await;
        socket.send(bad.clone()).await.expect("sent");
        assert_eq!(close_of(&mut socket).await.0, 4400, "{bad:?}");
    }
}

#[tokio::test]
async fn a_second_connection_init_is_closed_with_4429() {
    let app = spawn_app().await;
    let mut socket = initialised(&app).await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(close_of(&mut socket).await.0, 4429);
}

#[tokio::test]
async fn a_client_without_the_subprotocol_is_closed_with_4406() {
    let app = spawn_app().await;
    let mut socket = open_with(&app, None).await.expect("upgrade accepted");
    assert_eq!(close_of(&mut socket).await.0, 4406);
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_before_parsing() {
    let app = spawn_app_with(|c| c.limits.max_body_bytes = 4096).await;
    let mut socket = initialised(&app).await;
    let huge = format!("{{ {} }}", "__typename ".repeat(1_000));
    send(&mut socket, subscribe("1", &huge)).await;
    let (code, _) = close_of(&mut socket).await;
    assert_eq!(code, u16::from(CloseCode::Size), "closed as too big");
}

#[tokio::test]
async fn the_document_limits_hold_over_websocket_too() {
    let app = spawn_app().await;
    let mut socket = initialised(&app).await;
    send(
        &mut socket,
        subscribe("bomb", &fragment_bomb(12, 10, "__typename")),
    )
    .await;
    let refused = next_message(&mut socket).await.expect("an answer");
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "bomb");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{refused}"
    );
    // The connection goes on: a query over the socket still answers.
    send(&mut socket, subscribe("q", "{ exchangeRates { id } }")).await;
    let answer = next_message(&mut socket).await.expect("an answer");
    assert_eq!(answer["type"], "next", "{answer}");
    assert_eq!(answer["payload"]["data"]["exchangeRates"], json!([]));
    assert_eq!(next_message(&mut socket).await.unwrap()["type"], "complete");
}

#[tokio::test]
async fn subscriptions_per_connection_and_sockets_per_address_are_capped() {
    let app = spawn_app_with(|c| {
        c.ws.max_subscriptions = 2;
        c.ws.max_per_ip = 2;
    })
    .await;
    let mut socket = initialised(&app).await;
    send(&mut socket, subscribe("1", RATE_CHANGED)).await;
    send(&mut socket, subscribe("2", RATE_CHANGED)).await;
    send(&mut socket, subscribe("3", RATE_CHANGED)).await;
    let refused = next_message(&mut socket).await.expect("an answer");
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "3");

    let _second = open(&app).await;
    match open_with(&app, Some("graphql-transport-ws")).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 429),
        other => panic!("a third socket from one address was let in: {other:?}"),
    }
}
