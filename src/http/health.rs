//! `/healthz` (alive), `/readyz` (databases and store reachable) and `/metrics`
//! (Prometheus), SPEC §5.

use super::router::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::OnceLock;
use std::time::Duration;

/// The one Prometheus recorder of the process (installed on first use).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed already; then ours just stays empty.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Alive.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Prometheus text format.
pub async fn metrics() -> String {
    metrics_handle().render()
}

/// How long `/readyz` waits for each dependency (SPEC §5: it answers within a second).
const READY_WAIT: Duration = Duration::from_millis(800);

/// `check`, or a failure when it takes longer than `READY_WAIT`.
async fn within(check: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::time::timeout(READY_WAIT, check)
        .await
        .map_err(|_| anyhow::anyhow!("no answer in time"))?
}

/// Ready when both databases and the store answer (each within `READY_WAIT`).
pub async fn readyz(State(state): State<AppState>) -> Response {
    let stack = &state.stack;
    let (identity, web, store) = tokio::join!(
        within(crate::db::ping(&stack.dbs.identity)),
        within(crate::db::ping(&stack.dbs.web)),
        within(stack.cache.store().ping()),
    );
    let status = |r: &anyhow::Result<()>| if r.is_ok() { "ok" } else { "unavailable" };
    let body = serde_json::json!({
        "identityDatabase": status(&identity),
        "webDatabase": status(&web),
        "store": status(&store),
    });
    let code = if identity.is_ok() && web.is_ok() && store.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}
