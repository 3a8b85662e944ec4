//! The `exchanger` binary as its own process, over a test app's storage: for the CLI, and
//! for servers started the way an operator starts them (a second instance, a low open-files
//! limit, a real SIGTERM). Every process started here is killed, by PID, when dropped.

use crate::helpers::TestApp;
use exchanger::config::{Redis, Storage};
use secrecy::ExposeSecret;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `exchanger` with a clean environment pointing at `app`'s databases and store, to run
/// without blocking the runtime (a server in this process may have to answer it).
pub fn exchanger(app: &TestApp) -> tokio::process::Command {
    tokio::process::Command::from(std_command(app))
}

/// `exchanger` as a blocking command (for processes started and watched by hand).
fn std_command(app: &TestApp) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_exchanger"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("REDIS_KEY_PREFIX", &app.config.key_prefix)
        .env("SECRET_KEY", crate::helpers::TEST_SECRET_KEY)
        .env(
            "REQUIRE_MFA_FOR_OPERATORS",
            app.config.security.require_mfa_for_operators.to_string(),
        );
    match &app.config.storage {
        Storage::Embedded { data_dir } => {
            cmd.env("DATA_DIR", data_dir);
        }
        Storage::External {
            identity_url,
            web_url,
            redis,
        } => {
            cmd.env("DATABASE_IDENTITY_URL", identity_url.expose_secret())
                .env("DATABASE_WEB_URL", web_url.expose_secret());
            match redis {
                Redis::Standalone(url) => cmd.env("REDIS_URL", url.expose_secret()),
                Redis::Cluster(nodes) => {
                    let nodes: Vec<&str> = nodes.iter().map(|n| n.expose_secret()).collect();
                    cmd.env("REDIS_CLUSTER_NODES", nodes.join(","))
                }
            };
        }
    }
    cmd
}

/// A server process (`exchanger serve`) on a free loopback port.
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:{port}`.
    pub address: String,
    /// The port.
    pub port: u16,
    log: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `exchanger serve` over `app`'s storage with `env` added, and waits until it
    /// answers `/healthz`. With `open_files`, the process's open-files limit (soft and hard)
    /// is set to it before the server starts.
    pub async fn start(app: &TestApp, env: &[(&str, &str)], open_files: Option<u64>) -> Self {
        let mut cmd = std_command(app);
        cmd.env("BIND_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "text")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(limit) = open_files {
            use std::os::unix::process::CommandExt;
            // SAFETY: only async-signal-safe setrlimit runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let rlimit = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().expect("exchanger starts");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap_or_else(|p| p.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            if let Some(port) = listening_port(&log.lock().unwrap_or_else(|p| p.into_inner())) {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "the server exited ({status}): {}",
                    log.lock().unwrap_or_else(|p| p.into_inner())
                );
            }
            assert!(
                Instant::now() < deadline,
                "the server never said where it listens"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let server = Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
            port,
            log,
        };
        server.wait_until_healthy().await;
        server
    }

    async fn wait_until_healthy(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = client
                .get(format!("{}/healthz", self.address))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "no /healthz: {}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the process.
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid fits");
        // SAFETY: a plain kill(2) of our own child.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill failed");
    }

    /// Waits up to `within` for the process to exit; its exit status, if it did.
    pub async fn exited_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("process status") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port in the server's "listening" log line.
fn listening_port(log: &str) -> Option<u16> {
    log.lines()
        .filter(|line| line.contains("listening"))
        .find_map(|line| {
            let at = line.find("127.0.0.1:")? + "127.0.0.1:".len();
            let digits: String = line[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
}
