//! SPEC §4 "Connections": raw sockets that send half a request, a short body, nothing at
//! all, or just stay open; a server started with a low open-files limit; SIGTERM with
//! clients holding connections open. Every wait is bounded.

use crate::helpers::{TestApp, spawn_app_with};
use crate::process::ServerProcess;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// Reads until the server closes the connection; what it sent. Fails if the connection is
/// still open after `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&received).into_owned(),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "the connection was still open after {within:?}; received {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connected")
}

async fn quick_limits() -> TestApp {
    spawn_app_with(|c| {
        c.connections.header_timeout = Duration::from_millis(500);
        c.connections.body_timeout = Duration::from_millis(500);
        c.connections.idle_timeout = Duration::from_millis(800);
    })
    .await
}

#[tokio::test]
async fn a_slowloris_request_head_is_cut_at_the_header_timeout() {
    let app = quick_limits().await;
    // Nothing at all, and half a request line.
    let mut silent = connect(&app).await;
    let mut half = connect(&app).await;
    half.write_all(b"GET /healthz HT").await.unwrap();

    assert_eq!(
        read_until_closed(&mut silent, Duration::from_secs(10)).await,
        ""
    );
    assert_eq!(
        read_until_closed(&mut half, Duration::from_secs(10)).await,
        ""
    );
    // The server goes on serving.
    let ok = reqwest::get(format!("{}/healthz", app.address))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_cut_at_the_body_timeout() {
    let app = quick_limits().await;
    let mut stream = connect(&app).await;
    stream
        .write_all(
            b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"query\":",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("BAD_USER_INPUT"), "{answer}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = quick_limits().await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with("ok"),
        "one response, then the close: {answer}"
    );
}

#[tokio::test]
async fn silent_connections_under_a_low_open_files_limit_cannot_lock_out_a_fresh_client() {
    // Arrange: a server process allowed 128 open files.
    let app = spawn_app_with(|_| {}).await;
    let server = ServerProcess::start(
        &app,
        &[
            ("HTTP_HEADER_TIMEOUT_SECS", "2"),
            ("SIGNUP_MAX_PER_IP", "1000"),
        ],
        Some(128),
    )
    .await;
    assert!(
        server.log().contains("MAX_CONNECTIONS lowered"),
        "the cap fits the file limit: {}",
        server.log()
    );

    // Act: more silent connections than the process has files.
    let mut silent = Vec::new();
    for _ in 0..200 {
        if let Ok(Ok(stream)) = timeout(
            Duration::from_secs(2),
            TcpStream::connect(("127.0.0.1", server.port)),
        )
        .await
        {
            silent.push(stream);
        }
    }
    assert!(silent.len() >= 100, "{} connections opened", silent.len());

    // Assert: a fresh client is answered once the silent ones are shed.
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = client
            .get(format!("{}/healthz", server.address))
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        if answer.as_ref().is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no /healthz within 30 s: {answer:?}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(silent);
}

#[tokio::test]
async fn sigterm_ends_within_the_drain_timeout_whatever_clients_hold_open() {
    // Arrange: a server with a 1 s drain, and clients that never finish anything.
    let app = spawn_app_with(|_| {}).await;
    let mut server = ServerProcess::start(&app, &[("SHUTDOWN_TIMEOUT_SECS", "1")], None).await;
    let _silent = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    let mut half = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .unwrap();
    half.write_all(b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-length: 50\r\n\r\n{")
        .await
        .unwrap();
    let (_socket, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/graphql/ws", server.port))
            .await
            .expect("websocket open");

    // Act
    server.signal(libc::SIGTERM);

    // Assert: it is gone well within the drain deadline plus its margin, and says so.
    let status = server
        .exited_within(Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("still running 15 s after SIGTERM: {}", server.log()));
    assert!(status.success(), "{status}: {}", server.log());
    assert!(server.log().contains("stopped"), "{}", server.log());
}
