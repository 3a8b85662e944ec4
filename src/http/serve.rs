//! The accept loop (SPEC §4 "Connections"): HTTP/1.1 with a header timeout, an idle
//! keep-alive timeout, a body deadline, a connection cap, and a drain on shutdown that ends
//! within a bounded time whatever clients hold open.

use crate::config::ConnectionLimits;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, sleep, timeout};
use tower::ServiceExt;
use tower::util::Oneshot;
use tower_http::timeout::DeadlineBody;

/// How long a connection over the cap may wait for a free place, and how many may wait.
const SLOT_WAIT: Duration = Duration::from_secs(1);
const MAX_WAITING: usize = 64;
/// Pause after an accept error such as EMFILE: the listener stays readable, so an immediate
/// retry would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(250);
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\
    content-length: 0\r\nretry-after: 1\r\n\r\n";

/// What the drain left behind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Connections (HTTP and WebSocket) open when the stop signal came.
    pub open_at_stop: usize,
    /// HTTP connections dropped at the drain deadline.
    pub cut: usize,
    /// WebSockets still open after the deadline (dropped with the process).
    pub left: usize,
}

/// A connection's place under the cap, in every request's extensions. hyper lets go of a
/// connection once it is upgraded, so a WebSocket keeps this for the socket's life (to count
/// under the cap) and closes itself when `stopped()` completes.
#[derive(Clone)]
pub struct ConnSlot(Arc<Slot>);

struct Slot {
    _permit: OwnedSemaphorePermit,
    got_request: AtomicBool,
    stop: watch::Receiver<bool>,
}

impl ConnSlot {
    /// Completes when the server starts draining.
    pub async fn stopped(&self) {
        let _ = self.0.stop.clone().wait_for(|&stop| stop).await;
    }
}

/// Serves `router` on `listener` until `signal` completes, then drains for at most
/// `limits.drain_timeout`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    signal: impl Future<Output = ()>,
) -> DrainReport {
    let mut signal = pin!(signal);
    let (stop_tx, stop) = watch::channel(false);
    let max = limits.max_connections;
    let slots = Arc::new(Semaphore::new(max));
    let waiting = Arc::new(Semaphore::new(MAX_WAITING));
    let cut = Arc::new(AtomicUsize::new(0));
    let mut h1 = http1::Builder::new();
    // hyper (re)starts this timer whenever it waits for a request head: at accept and each
    // time the connection goes idle after a response. So it is the keep-alive idle timeout.
    h1.timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout);
    let h1 = Arc::new(h1);

    loop {
        let (stream, addr) = tokio::select! {
            biased;
            () = &mut signal => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) if is_connection_error(&err) => continue,
                Err(err) => {
                    tracing::error!(error = %err, "accept failed; backing off");
                    sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let conn = Accepted {
            stream,
            addr,
            stop: stop.clone(),
            h1: h1.clone(),
            router: router.clone(),
            limits: limits.clone(),
            cut: cut.clone(),
        };
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(conn.run(permit));
            }
            // Over the cap: wait briefly for a place, unless too many wait already.
            Err(_) => match waiting.clone().try_acquire_owned() {
                Ok(waiter) => {
                    let slots = slots.clone();
                    tokio::spawn(async move {
                        let permit = timeout(SLOT_WAIT, slots.acquire_owned()).await;
                        drop(waiter);
                        match permit {
                            Ok(Ok(permit)) => conn.run(permit).await,
                            _ => conn.reject(),
                        }
                    });
                }
                Err(_) => conn.reject(),
            },
        }
    }
    drop(listener);

    let open_at_stop = max - slots.available_permits();
    stop_tx.send_replace(true);
    tracing::info!(open_at_stop, "stopped accepting; draining open connections");
    // Connection tasks enforce the deadline themselves; the margin lets them finish.
    let grace = limits.drain_timeout + Duration::from_secs(1);
    let all_back = timeout(grace, slots.acquire_many(max as u32)).await.is_ok();
    DrainReport {
        open_at_stop,
        cut: cut.load(Ordering::Relaxed),
        left: if all_back {
            0
        } else {
            max - slots.available_permits()
        },
    }
}

/// An accepted connection on its way to being served.
struct Accepted {
    stream: TcpStream,
    addr: SocketAddr,
    stop: watch::Receiver<bool>,
    h1: Arc<http1::Builder>,
    router: Router,
    limits: ConnectionLimits,
    cut: Arc<AtomicUsize>,
}

impl Accepted {
    fn reject(self) {
        tracing::warn!(addr = %self.addr, "connection limit reached; refusing a connection");
        metrics::counter!("exchanger_connections_refused_total").increment(1);
        // Best effort: the client may not have sent its request yet.
        let _ = self.stream.try_write(BUSY);
    }

    async fn run(self, permit: OwnedSemaphorePermit) {
        let Self {
            stream,
            addr,
            stop,
            h1,
            router,
            limits,
            cut,
        } = self;
        let slot = ConnSlot(Arc::new(Slot {
            _permit: permit,
            got_request: AtomicBool::new(false),
            stop,
        }));
        let service = ConnService {
            router,
            addr,
            slot: slot.clone(),
            body_timeout: limits.body_timeout,
        };
        let conn = h1
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut conn = pin!(conn);
        let mut first_head = pin!(sleep(limits.header_timeout));
        let mut drain = pin!(sleep(Duration::ZERO));
        let (mut awaiting_first, mut draining) = (true, false);
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(%addr, error = %err, "connection ended with an error");
                    }
                    return;
                }
                () = first_head.as_mut(), if awaiting_first => {
                    if !slot.0.got_request.load(Ordering::Relaxed) {
                        tracing::debug!(%addr, "no request head in time; closing");
                        return;
                    }
                    awaiting_first = false;
                }
                () = slot.stopped(), if !draining => {
                    // Closes an idle connection now and a busy one after its response.
                    conn.as_mut().graceful_shutdown();
                    drain.as_mut().reset(Instant::now() + limits.drain_timeout);
                    draining = true;
                }
                () = drain.as_mut(), if draining => {
                    cut.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}

/// Per-connection service: what `into_make_service_with_connect_info` adds (`ConnectInfo`),
/// the slot, and the body deadline.
#[derive(Clone)]
struct ConnService {
    router: Router,
    addr: SocketAddr,
    slot: ConnSlot,
    body_timeout: Duration,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = Oneshot<Router, hyper::Request<DeadlineBody<Incoming>>>;

    fn call(&self, mut req: hyper::Request<Incoming>) -> Self::Future {
        self.slot.0.got_request.store(true, Ordering::Relaxed);
        req.extensions_mut().insert(ConnectInfo(self.addr));
        req.extensions_mut().insert(self.slot.clone());
        let req = req.map(|body| DeadlineBody::new(self.body_timeout, body));
        self.router.clone().oneshot(req)
    }
}

fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Raises the soft limit of open files to the hard limit; returns the new soft limit.
pub fn raise_open_files_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: as above; raising the soft limit up to the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}
