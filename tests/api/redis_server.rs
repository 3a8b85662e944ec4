//! A private `redis-server` for fault tests: started on a free loopback port in a temporary
//! folder, frozen (SIGSTOP) and thawed on demand, killed by PID when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private `redis-server`, killed when dropped (even when the test fails while it is
/// stopped: SIGKILL ends a stopped process too).
pub struct RedisServer {
    child: Child,
    /// `redis://127.0.0.1:{port}`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one and waits until it answers.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("temp dir");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let server = Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.ping().await.is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        redis::Client::open(self.url.as_str())?
            .get_multiplexed_async_connection()
            .await
    }

    async fn ping(&self) -> redis::RedisResult<String> {
        redis::cmd("PING")
            .query_async(&mut self.connection().await?)
            .await
    }

    /// `GET key`.
    pub async fn get(&self, key: &str) -> Option<String> {
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.connection().await.expect("redis is back"))
            .await
            .expect("GET")
    }

    /// `DEL key`.
    pub async fn delete(&self, key: &str) {
        let _: i64 = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut self.connection().await.expect("redis is back"))
            .await
            .expect("DEL");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Freezes Redis: connections stay open but nothing answers (the nastiest outage).
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// Lets it answer again.
    pub fn thaw(&self) {
        self.signal("CONT");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
