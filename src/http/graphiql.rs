//! GraphiQL, served by the server itself: the page that `GET /graphql` returns to browsers and
//! the assets it loads from `/graphiql/<tag>/<file>`, all embedded in the binary from
//! `assets/graphiql/` (React and GraphiQL are vendored by `scripts/vendor-graphiql.sh`).
//!
//! The page loads nothing from other hosts and has no inline script, so it runs offline and
//! under a strict Content-Security-Policy. `<tag>` is a hash of every asset, so assets are
//! cached for good (`immutable`) and a new build changes their URLs; the page itself is
//! revalidated on each load (`no-cache` with an `ETag`). Vendored assets carry precompressed
//! gzip copies, sent when the client's `Accept-Encoding` allows.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// One embedded file under `/graphiql/<tag>/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// The same bytes compressed with `gzip -9n`, if the vendoring script wrote them.
    gzip: Option<&'static [u8]>,
}

macro_rules! vendored {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../assets/graphiql/vendor/", $name)),
            gzip: Some(include_bytes!(concat!(
                "../../assets/graphiql/vendor/",
                $name,
                ".gz"
            ))),
        }
    };
}

macro_rules! own {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../assets/graphiql/", $name)),
            gzip: None,
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

static ASSETS: [Asset; 6] = [
    vendored!("react.production.min.js", JS),
    vendored!("react-dom.production.min.js", JS),
    vendored!("graphiql.min.js", JS),
    vendored!("graphiql.min.css", CSS),
    own!("init.js", JS),
    own!("page.css", CSS),
];

/// The page, with `{{tag}}` where the asset tag goes.
const PAGE_TEMPLATE: &str = include_str!("../../assets/graphiql/index.html");

/// Asset cache lifetime: a year, the longest that caches honour.
const ASSET_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// What is derived from the embedded files once per process.
struct Bundle {
    /// Path segment of every asset URL: a hash over all assets.
    tag: String,
    /// Quoted `ETag` of each entry of [`ASSETS`], by index.
    etags: Vec<String>,
    page: String,
    page_etag: String,
}

fn bundle() -> &'static Bundle {
    static BUNDLE: OnceLock<Bundle> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let hashes: Vec<String> = ASSETS
            .iter()
            .map(|asset| hex::encode(&Sha256::digest(asset.body)[..12]))
            .collect();
        let mut all = Sha256::new();
        for (asset, hash) in ASSETS.iter().zip(&hashes) {
            all.update(asset.name.as_bytes());
            all.update(b"\0");
            all.update(hash.as_bytes());
            all.update(b"\0");
        }
        let tag = hex::encode(&all.finalize()[..8]);
        let page = PAGE_TEMPLATE.replace("{{tag}}", &tag);
        let page_etag = format!(
            "\"{}\"",
            hex::encode(&Sha256::digest(page.as_bytes())[..12])
        );
        Bundle {
            tag,
            etags: hashes.iter().map(|h| format!("\"{h}\"")).collect(),
            page,
            page_etag,
        }
    })
}

/// The routes of the GraphiQL assets, `GET /graphiql/<tag>/<file>`; merge them into the app.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/graphiql/{tag}/{file}", get(asset))
}

/// The GraphiQL page for a browser's `GET /graphql`, with its Content-Security-Policy;
/// `304 Not Modified` when the request's `If-None-Match` names the current page.
pub fn page(headers: &HeaderMap) -> Response {
    let bundle = bundle();
    let mut response = if etag_matches(headers, &bundle.page_etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            bundle.page.clone(),
        )
            .into_response()
    };
    let out = response.headers_mut();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(header::VARY, HeaderValue::from_static("Accept"));
    insert(out, header::ETAG, &bundle.page_etag);
    insert(
        out,
        header::CONTENT_SECURITY_POLICY,
        &content_security_policy(headers),
    );
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn asset(Path((tag, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let bundle = bundle();
    let found = ASSETS.iter().position(|a| a.name == file);
    let (Some(index), true) = (found, tag == bundle.tag) else {
        // Unknown file, or one from another build: its bytes are not ours to vouch for.
        return (
            StatusCode::NOT_FOUND,
            [(header::X_CONTENT_TYPE_OPTIONS, "nosniff")],
            "not found",
        )
            .into_response();
    };
    let asset = &ASSETS[index];
    let gzip = asset
        .gzip
        .filter(|_| accepts_gzip(headers.get(header::ACCEPT_ENCODING)));
    // Each representation has its own entity tag.
    let etag = match gzip {
        Some(_) => format!("{}.gz\"", bundle.etags[index].trim_end_matches('"')),
        None => bundle.etags[index].clone(),
    };
    let mut response = if etag_matches(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = gzip.unwrap_or(asset.body).into_response();
        let out = response.headers_mut();
        out.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        if gzip.is_some() {
            out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    };
    let out = response.headers_mut();
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(ASSET_CACHE_CONTROL),
    );
    insert(out, header::ETAG, &etag);
    if asset.gzip.is_some() {
        out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Inserts a header value built from ASCII this module made; a value that is not a valid
/// header value is left out rather than sent malformed.
fn insert(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// The page's policy: everything from this origin only, no inline script. GraphiQL's
/// WebSocket for subscriptions goes to `ws:`/`wss:` of the request's own host (named
/// explicitly for browsers whose `'self'` does not cover WebSockets). Inline `<style>`
/// elements are allowed, inline `style` attributes are not: GraphiQL's dialogs (Radix, via
/// react-remove-scroll) add a `<style>` element to lock scrolling while they are open.
fn content_security_policy(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| is_plain_host(h));
    let websockets = host.map_or_else(String::new, |h| format!(" ws://{h} wss://{h}"));
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; \
         style-src-elem 'self' 'unsafe-inline'; connect-src 'self'{websockets}; img-src 'self' data:; font-src 'self' data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// Whether a `Host` header is a bare `host[:port]` that can go into a policy verbatim.
fn is_plain_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// Whether `Accept-Encoding` allows gzip: named (or `*`) with a non-zero quality.
fn accepts_gzip(accept_encoding: Option<&HeaderValue>) -> bool {
    let Some(value) = accept_encoding.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut wildcard = None;
    for item in value.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let quality = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            return quality > 0.0;
        }
        if coding == "*" {
            wildcard = Some(quality > 0.0);
        }
    }
    wildcard.unwrap_or(false)
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks for it) or is `*`.
fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip_ok(value: &str) -> bool {
        accepts_gzip(Some(&HeaderValue::from_str(value).unwrap()))
    }

    #[test]
    fn accept_encoding_is_read_with_its_qualities() {
        assert!(!accepts_gzip(None));
        assert!(gzip_ok("gzip"));
        assert!(gzip_ok("gzip, deflate, br, zstd"));
        assert!(gzip_ok("br;q=1.0, GZIP;q=0.5"));
        assert!(gzip_ok("*"));
        assert!(!gzip_ok("identity"));
        assert!(!gzip_ok("br"));
        assert!(!gzip_ok("gzip;q=0"));
        assert!(!gzip_ok("*, gzip;q=0"));
        assert!(!gzip_ok("*;q=0"));
    }

    #[test]
    fn host_goes_into_the_policy_only_when_plain() {
        let policy = |host: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            content_security_policy(&headers)
        };
        assert!(
            policy("127.0.0.1:8080")
                .contains("connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080;")
        );
        assert!(policy("[::1]:80").contains("ws://[::1]:80"));
        assert!(policy("evil; script-src *").contains("connect-src 'self';"));
    }

    /// The vendored files are the ones `scripts/vendor-graphiql.sh` listed, and each gzip
    /// copy holds as many bytes as its original (gzip's trailer ends with that length).
    #[test]
    fn vendored_assets_match_versions_file() {
        let versions = include_str!("../../assets/graphiql/VERSIONS");
        for asset in ASSETS.iter().filter(|a| a.gzip.is_some()) {
            let listed = |path: &str| {
                versions
                    .lines()
                    .find_map(|line| {
                        let mut fields = line.split_whitespace().skip(1);
                        (fields.next() == Some(path))
                            .then(|| fields.next())
                            .flatten()
                    })
                    .unwrap_or_else(|| panic!("{path} is not in VERSIONS"))
            };
            let path = format!("vendor/{}", asset.name);
            assert_eq!(
                hex::encode(Sha256::digest(asset.body)),
                listed(&path),
                "{path}"
            );
            let gzip = asset.gzip.unwrap();
            assert_eq!(
                hex::encode(Sha256::digest(gzip)),
                listed(&format!("{path}.gz")),
                "{path}.gz"
            );
            let size = u32::from_le_bytes(gzip[gzip.len() - 4..].try_into().unwrap());
            assert_eq!(size as usize, asset.body.len(), "{path}.gz");
        }
    }

    #[test]
    fn page_names_every_asset_and_only_assets() {
        let bundle = bundle();
        let prefix = format!("/graphiql/{}/", bundle.tag);
        let referenced: Vec<&str> = bundle
            .page
            .split(['"', '\''])
            .filter_map(|s| s.strip_prefix(&prefix))
            .collect();
        let mut names: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        let mut sorted = referenced.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, names);
        assert!(!bundle.page.contains("{{"), "{}", bundle.page);
    }
}
