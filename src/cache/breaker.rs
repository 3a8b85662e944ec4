//! The circuit breaker in front of the store: after a failure the store is skipped for a
//! moment, so an outage costs one timeout, not one per request. In a server it also stays
//! open after any failure or stall until the outbox has been replayed (`coherence.rs`):
//! whatever was written while the store did not answer must reach it before anything read
//! from it is trusted again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long the store is skipped after a failure.
const COOLDOWN: Duration = Duration::from_secs(1);

/// Shared by everything that talks to one store.
#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
    /// Whether failures wait for a replay (a server runs one; a command-line process not).
    resyncs: bool,
}

#[derive(Debug)]
struct State {
    open_until: Option<Instant>,
    needs_sync: bool,
}

impl Breaker {
    /// A breaker; with `resyncs`, it starts open and stays open after failures until
    /// [`Breaker::synced`].
    pub fn new(resyncs: bool) -> Self {
        Self {
            state: Mutex::new(State {
                open_until: None,
                needs_sync: resyncs,
            }),
            resyncs,
        }
    }

    /// Whether the store is being skipped now.
    pub fn is_open(&self) -> bool {
        let state = self.lock();
        state.needs_sync || state.open_until.is_some_and(|t| Instant::now() < t)
    }

    /// Whether the store failed a moment ago (ignoring replays: what counters ask, whose
    /// values need no replay to be right).
    pub fn is_cooling_down(&self) -> bool {
        self.lock().open_until.is_some_and(|t| Instant::now() < t)
    }

    /// Whether the store waits for a replay before it is trusted again.
    pub fn needs_sync(&self) -> bool {
        self.lock().needs_sync
    }

    /// Records a failure: logs it once and skips the store for a moment (and, in a server,
    /// until the next replay).
    pub fn trip(&self, err: &anyhow::Error) {
        tracing::warn!(error = %format!("{err:#}"), "store unreachable; bypassing it");
        metrics::counter!("exchanger_store_errors_total").increment(1);
        let mut state = self.lock();
        state.open_until = Some(Instant::now() + COOLDOWN);
        state.needs_sync |= self.resyncs;
    }

    /// Records that messages may have been missed (a stall, a new subscription).
    pub fn stalled(&self) {
        let mut state = self.lock();
        if self.resyncs && !state.needs_sync {
            tracing::info!("store channel interrupted; caches wait for a replay");
        }
        state.needs_sync |= self.resyncs;
    }

    /// The outbox was replayed: the store can be trusted again.
    pub fn synced(&self) {
        let mut state = self.lock();
        state.needs_sync = false;
        state.open_until = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
