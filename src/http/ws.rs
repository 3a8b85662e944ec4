//! Subscriptions over WebSocket (SPEC §3, §4), the `graphql-transport-ws` protocol: origin
//! check, a cap per client address, `connection_init` within a deadline (4408), sign-in from
//! its payload or the cookie, subscribe only after the ack (4401), unique ids (4409),
//! malformed messages (4400), messages no larger than an HTTP body (refused before parsing),
//! a cap on subscriptions per connection, the document gate on every operation, and a
//! `1001` close when the server stops.

use super::auth::{bearer, client_address, client_info, resolve_viewer, token_from_headers};
use super::router::AppState;
use super::serve::ConnSlot;
use super::{error_response, response_body};
use crate::graphql::context::request_data;
use crate::graphql::errors::{add_request_id, code, take_request_error};
use crate::graphql::gate::{self, Budget, Transport};
use crate::identity::{ClientInfo, Viewer};
use async_graphql::parser::types::OperationType;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{ConnectInfo, Extension, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tracing::Instrument;

/// The one subprotocol spoken.
const PROTOCOL: &str = "graphql-transport-ws";

/// Close codes of graphql-transport-ws (and RFC 6455's "going away").
mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    pub const INVALID_MESSAGE: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const SUBPROTOCOL_NOT_ACCEPTABLE: u16 = 4406;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const DUPLICATE_ID: u16 = 4409;
    pub const TOO_MANY_INITS: u16 = 4429;
    pub const INTERNAL_ERROR: u16 = 4500;
}

/// Open WebSockets per client address.
#[derive(Default)]
pub struct WsClients {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open WebSocket of an address; counts until dropped.
struct WsClient {
    clients: Arc<WsClients>,
    ip: IpAddr,
}

impl WsClients {
    fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<WsClient> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(WsClient {
            clients: self.clone(),
            ip,
        })
    }
}

impl Drop for WsClient {
    fn drop(&mut self) {
        let mut open = self.clients.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Whether a browser origin may open a WebSocket: same host, or a configured CORS origin.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true; // not a browser
    };
    if allowed.iter().any(|o| o == origin) {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest == host)
}

/// `GET /graphql/ws`.
pub async fn graphql_ws(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    slot: Option<Extension<ConnSlot>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let config = &state.stack.config;
    if !origin_allowed(&headers, &config.cors_origins) {
        return error_response(StatusCode::FORBIDDEN, code::FORBIDDEN, "origin not allowed");
    }
    let client = client_info(&headers, addr, &config.trusted_proxies);
    let ip = client_address(&headers, addr.ip(), &config.trusted_proxies);
    let Some(seat) = state.ws_clients.enter(ip, config.ws.max_per_ip) else {
        return error_response(
            StatusCode::TOO_MANY_REQUESTS,
            code::RATE_LIMITED,
            "too many WebSockets from this address",
        );
    };
    let limit = config.limits.max_body_bytes;
    let upgrade = upgrade
        .protocols([PROTOCOL])
        .max_message_size(limit)
        .max_frame_size(limit);
    let speaks_protocol = upgrade.selected_protocol().is_some();
    let connection = Connection {
        state: state.clone(),
        client,
        cookie_token: token_from_headers(&headers),
        slot: slot.map(|Extension(slot)| slot),
        _seat: seat,
    };
    upgrade.on_upgrade(move |socket| connection.run(socket, speaks_protocol))
}

/// A message from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<serde_json::Value>,
    },
    Ping {},
    Pong {},
    Subscribe {
        id: String,
        payload: SubscribePayload,
    },
    Complete {
        id: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscribePayload {
    query: String,
    #[serde(default)]
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<serde_json::Value>,
}

/// One WebSocket connection.
struct Connection {
    state: AppState,
    client: ClientInfo,
    cookie_token: Option<crate::domain::SessionToken>,
    slot: Option<ConnSlot>,
    _seat: WsClient,
}

/// Why the connection ends.
struct Close(u16, String);

impl Connection {
    async fn run(self, socket: WebSocket, speaks_protocol: bool) {
        let (mut sink, mut incoming) = socket.split();
        let Close(code, reason) = if speaks_protocol {
            self.serve(&mut sink, &mut incoming).await
        } else {
            Close(
                close::SUBPROTOCOL_NOT_ACCEPTABLE,
                "Subprotocol not acceptable".into(),
            )
        };
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = sink.send(Message::Close(Some(frame))).await;
    }

    async fn serve(
        &self,
        sink: &mut (impl futures_util::Sink<Message> + Unpin),
        incoming: &mut (impl futures_util::Stream<Item = Result<Message, axum::Error>> + Unpin),
    ) -> Close {
        let config = &self.state.stack.config;
        let (out_tx, mut out_rx) = mpsc::channel::<String>(64);
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<String>();
        let mut subscriptions: HashMap<String, AbortHandle> = HashMap::new();
        let mut viewer: Option<Option<Viewer>> = None;
        let init_deadline = tokio::time::sleep(config.ws.init_timeout);
        tokio::pin!(init_deadline);
        let stopped = async {
            match &self.slot {
                Some(slot) => slot.stopped().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(stopped);

        let close = loop {
            tokio::select! {
                message = incoming.next() => {
                    let text = match message {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                        Some(Ok(Message::Binary(_))) => {
                            break Close(close::INVALID_MESSAGE, "Binary messages are not accepted".into());
                        }
                        Some(Err(err)) => break read_error(err),
                        // The client closed or went away.
                        Some(Ok(Message::Close(_))) | None => break Close(1000, String::new()),
                    };
                    let Ok(message) = serde_json::from_str::<ClientMessage>(&text) else {
                        break Close(close::INVALID_MESSAGE, "Invalid message received".into());
                    };
                    match message {
                        ClientMessage::ConnectionInit { payload } => {
                            if viewer.is_some() {
                                break Close(close::TOO_MANY_INITS, "Too many initialisation requests".into());
                            }
                            match self.sign_in(payload.as_ref()).await {
                                Ok(v) => viewer = Some(v),
                                Err(()) => break Close(close::INTERNAL_ERROR, "Internal server error".into()),
                            }
                            if send(sink, r#"{"type":"connection_ack"}"#.into()).await.is_err() {
                                break Close(1000, String::new());
                            }
                        }
                        ClientMessage::Ping {} => {
                            if send(sink, r#"{"type":"pong"}"#.into()).await.is_err() {
                                break Close(1000, String::new());
                            }
                        }
                        ClientMessage::Pong {} => {}
                        ClientMessage::Subscribe { id, payload } => {
                            let Some(viewer) = &viewer else {
                                break Close(close::UNAUTHORIZED, "Unauthorized".into());
                            };
                            if subscriptions.contains_key(&id) {
                                break Close(close::DUPLICATE_ID, format!("Subscriber for {} already exists", truncate(&id)));
                            }
                            if subscriptions.len() >= config.ws.max_subscriptions {
                                let refusal = format!("a connection holds at most {} subscriptions", config.ws.max_subscriptions);
                                let _ = out_tx.send(error_message(&id, code::BAD_USER_INPUT, &refusal)).await;
                                continue;
                            }
                            match self.subscribe(id.clone(), payload, viewer.clone(), out_tx.clone(), done_tx.clone()) {
                                Ok(task) => {
                                    subscriptions.insert(id, task);
                                }
                                Err(refusal) => {
                                    if send(sink, refusal).await.is_err() {
                                        break Close(1000, String::new());
                                    }
                                }
                            }
                        }
                        ClientMessage::Complete { id } => {
                            let Some(task) = subscriptions.remove(&id) else { continue };
                            task.abort();
                            // Confirm it after whatever the subscription had queued, so the
                            // client knows nothing more comes for this id.
                            let mut flushed = Ok(());
                            while let (Ok(text), Ok(())) = (out_rx.try_recv(), &flushed) {
                                flushed = send(sink, text).await;
                            }
                            let complete = serde_json::json!({ "type": "complete", "id": id });
                            if flushed.is_err() || send(sink, complete.to_string()).await.is_err() {
                                break Close(1000, String::new());
                            }
                        }
                    }
                }
                Some(text) = out_rx.recv() => {
                    if send(sink, text).await.is_err() {
                        break Close(1000, String::new());
                    }
                }
                Some(id) = done_rx.recv() => {
                    subscriptions.remove(&id);
                }
                () = &mut init_deadline, if viewer.is_none() => {
                    break Close(close::INIT_TIMEOUT, "Connection initialisation timeout".into());
                }
                () = &mut stopped => break Close(close::GOING_AWAY, "server shutting down".into()),
            }
        };
        for task in subscriptions.values() {
            task.abort();
        }
        close
    }

    /// The viewer of this connection: `connection_init` may carry
    /// `{"Authorization": "Bearer …"}`; else the cookie of the upgrade request.
    async fn sign_in(&self, payload: Option<&serde_json::Value>) -> Result<Option<Viewer>, ()> {
        let from_payload = payload
            .and_then(|p| p.get("Authorization").or_else(|| p.get("authorization")))
            .and_then(|v| v.as_str())
            .and_then(bearer);
        resolve_viewer(
            &self.state.stack,
            from_payload.or_else(|| self.cookie_token.clone()),
        )
        .await
        .map_err(|err| tracing::error!(error = ?err, "session validation failed"))
    }

    /// Admits and starts one operation; when it is refused, the `error` message to send.
    fn subscribe(
        &self,
        id: String,
        payload: SubscribePayload,
        viewer: Option<Viewer>,
        out: mpsc::Sender<String>,
        done: mpsc::UnboundedSender<String>,
    ) -> Result<AbortHandle, String> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let span = tracing::info_span!("subscription", id = %truncate(&id), request_id);
        let stack = &self.state.stack;
        let mut request = async_graphql::Request::new(payload.query);
        request.operation_name = payload.operation_name;
        if let Some(variables) = payload.variables {
            request.variables = async_graphql::Variables::from_json(variables);
        }
        let ty = match gate::admit(
            &mut request,
            Transport::WebSocket,
            &stack.config.limits,
            &Budget::default(),
        ) {
            Ok(ty) => ty,
            Err(refusal) => {
                let mut response =
                    async_graphql::Response::from_errors(vec![refusal.to_server_error()]);
                add_request_id(&mut response, &request_id);
                let message =
                    serde_json::json!({ "type": "error", "id": id, "payload": response.errors });
                return Err(message.to_string());
            }
        };
        let request = request_data(request, stack, &viewer, &self.client);
        let schema = self.state.schema.clone();
        let query_timeout = (ty == OperationType::Query).then_some(stack.config.query_timeout);
        let task = async move {
            let mut stream = schema.execute_stream(request);
            loop {
                let next = match query_timeout {
                    Some(limit) => match tokio::time::timeout(limit, stream.next()).await {
                        Ok(next) => next,
                        Err(_) => {
                            let message =
                                error_message(&id, code::TIMEOUT, "the query took too long");
                            let _ = out.send(message).await;
                            break;
                        }
                    },
                    None => stream.next().await,
                };
                let Some(mut response) = next else {
                    let complete = serde_json::json!({ "type": "complete", "id": id });
                    let _ = out.send(complete.to_string()).await;
                    break;
                };
                add_request_id(&mut response, &request_id);
                let message = if take_request_error(&mut response) {
                    serde_json::json!({ "type": "error", "id": id, "payload": response.errors })
                } else {
                    serde_json::json!({ "type": "next", "id": id, "payload": response_body(&response, false) })
                };
                let request_error = message["type"] == "error";
                if out.send(message.to_string()).await.is_err() || request_error {
                    break;
                }
            }
            let _ = done.send(id);
        };
        Ok(tokio::spawn(task.instrument(span)).abort_handle())
    }
}

/// The close for a failed read: a message over the size limit (refused as it arrives,
/// before any of it is parsed) or a broken frame.
fn read_error(err: axum::Error) -> Close {
    match err
        .into_inner()
        .downcast::<tungstenite::Error>()
        .map(|e| *e)
    {
        Ok(tungstenite::Error::Capacity(_)) => {
            Close(close::MESSAGE_TOO_BIG, "Message too big".into())
        }
        _ => Close(close::PROTOCOL_ERROR, "Protocol error".into()),
    }
}

async fn send(
    sink: &mut (impl futures_util::Sink<Message> + Unpin),
    text: String,
) -> Result<(), ()> {
    sink.send(Message::Text(text.into())).await.map_err(drop)
}

/// An `error` message for `id` with one coded error.
fn error_message(id: &str, code: &str, message: &str) -> String {
    serde_json::json!({
        "type": "error",
        "id": id,
        "payload": [{ "message": message, "extensions": { "code": code } }],
    })
    .to_string()
}

/// A client-chosen id, cut short for logs and close reasons (which hold 123 bytes at most).
fn truncate(id: &str) -> &str {
    let mut end = id.len().min(64);
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    &id[..end]
}
