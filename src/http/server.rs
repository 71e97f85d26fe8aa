//! fedgate's own accept loop (HTTP/1.1 on hyper, TLS with tokio-rustls):
//! the connection hygiene of `[server]`.
//!
//! - the request head must arrive within `header_timeout_secs`, which also
//!   bounds a keep-alive connection waiting for its next request (hyper's
//!   header timer starts again when a connection goes idle); on plain TCP
//!   the first head is read by fedgate before hyper gets the connection
//!   (`first_head`), so one that trickles holds ~6 KB, not hyper's ~25 KB;
//! - the body within `body_timeout_secs` (else 408 `http.body_timeout`), and
//!   at most [`MAX_BODY_BYTES`] of it, [`MAX_SAML_BODY_BYTES`] on `/saml/…`
//!   (else 413 `http.body_too_large`);
//! - the request head at most [`MAX_HEAD_BYTES`] (else 431, from hyper),
//!   and each connection's read buffer at most as large: a body is read
//!   through it in pieces, and a kept-alive connection that posted 512 KiB
//!   keeps 64 KiB of buffer, not hyper's 400 KB;
//! - the TLS handshake within `tls_handshake_timeout_secs`;
//! - at most `max_connections` open at once, clamped below the open-file
//!   limit: one more is accepted and closed at once, so the listen backlog
//!   never fills with clients nobody serves;
//! - at most `max_body_bytes_in_flight` of request bodies held at once,
//!   over all connections (each body is read whole, up to 2 MiB, before a
//!   handler runs): past it, 503 `server.busy` with `Retry-After: 1`;
//! - at most `max_connections_per_client` of them from one client (an IPv4
//!   address, an IPv6 /64; trusted proxies exempt), likewise, so one host
//!   cannot hold every slot (and the memory of each: about 20 KB an idle
//!   connection, docs/performance.md);
//! - on shutdown: stop accepting, let in-flight requests finish for up to
//!   `shutdown_grace_secs`, close the rest.
//!
//! Handlers see the TCP peer as `ConnectInfo<SocketAddr>`, as with
//! `axum::serve(… into_make_service_with_connect_info)`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::first_head::{self, FirstHead, Prefixed};
use crate::gateway::{App, Live};
use crate::metrics::ConnectionTimeout;
use crate::metrics::Metrics;

/// The largest request body fedgate reads: axum's default body limit, which
/// the form extractors applied before fedgate had its own server. A SAML
/// response is tens of kilobytes.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The largest body posted to a SAML endpoint (`/saml/…`: the ACS, and
/// `/idp/sso`: a console's AuthnRequest). An
/// Entra response with 150 groups and every optional claim is tens of
/// kilobytes; a body of 512 KiB holds a 384 KiB document, ten times any
/// real one. A smaller bound means a hostile document is refused before it
/// is read, and the bytes one request holds while it is parsed are fewer.
pub const MAX_SAML_BODY_BYTES: usize = 512 * 1024;

/// The largest request head (the request line and headers): past it,
/// hyper answers 431 and closes. Without it hyper buffers up to its read
/// buffer's limit, about 400 KB, which a client could hold on each of its
/// connections for the whole header timeout (256 of them: 100 MB); a
/// browser's head with every cookie is a few KB, and nginx takes 32 KB by
/// default. It is also the largest a connection's read buffer grows
/// (hyper's `max_buf_size`): the buffer grows as reads fill it and is kept
/// while the connection lives, so without the bound every connection that
/// once posted a large body would hold ~400 KB until it closes
/// (`scripts/kept_connections.py`: 250 such connections +90 MB, with it
/// +16 to +26 MB).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The body limit of a request to `path`.
pub fn body_limit(path: &str) -> usize {
    if path.starts_with("/saml/") || path.starts_with(crate::outbound::sso::SSO_PATH) {
        MAX_SAML_BODY_BYTES
    } else {
        MAX_BODY_BYTES
    }
}

/// File descriptors kept free below the open-file limit for what is not a
/// client connection: the listener, the store (Redis pool), the audit file,
/// metadata and Graph fetches, logs.
pub const FD_MARGIN: u64 = 128;

/// The connection bounds, from `[server]`.
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub max_connections: u64,
    pub max_connections_per_client: u64,
    /// Request-body bytes held at once, in KiB permits.
    pub bodies: Arc<tokio::sync::Semaphore>,
    pub shutdown_grace: Duration,
}

impl Limits {
    pub fn from_config(s: &crate::config::Server) -> Limits {
        Limits {
            header_timeout: Duration::from_secs(s.header_timeout_secs),
            body_timeout: Duration::from_secs(s.body_timeout_secs),
            tls_handshake_timeout: Duration::from_secs(s.tls_handshake_timeout_secs),
            max_connections: s.max_connections,
            max_connections_per_client: s.max_connections_per_client,
            bodies: Arc::new(tokio::sync::Semaphore::new(
                usize::try_from(s.max_body_bytes_in_flight / 1024)
                    .unwrap_or(usize::MAX)
                    .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
            )),
            shutdown_grace: Duration::from_secs(s.shutdown_grace_secs),
        }
    }
}

/// Connections open per client, for `server.max_connections_per_client`.
/// A client has an entry only while it has a connection open, so the map
/// never holds more than `max_connections` entries.
pub struct PerClient {
    limit: u64,
    exempt: Vec<crate::net::Cidr>,
    open: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, u64>>,
}

/// One connection's place in [`PerClient`]: given back when dropped.
pub struct ClientSlot {
    table: Arc<PerClient>,
    key: std::net::IpAddr,
}

impl PerClient {
    pub fn new(limit: u64, exempt: Vec<crate::net::Cidr>) -> Arc<PerClient> {
        Arc::new(PerClient {
            limit: limit.max(1),
            exempt,
            open: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// A slot for one more connection from `peer`: `Ok(None)` for an
    /// exempt peer (a trusted proxy), `Err(())` when the client is at the
    /// limit (or the table is poisoned: fail closed).
    #[allow(clippy::result_unit_err)]
    pub fn try_open(self: &Arc<Self>, peer: std::net::IpAddr) -> Result<Option<ClientSlot>, ()> {
        if self.exempt.iter().any(|c| c.contains(peer)) {
            return Ok(None);
        }
        let key = crate::net::bucket(peer);
        let mut open = self.open.lock().map_err(|_| ())?;
        let n = open.entry(key).or_insert(0);
        if *n >= self.limit {
            return Err(());
        }
        *n += 1;
        Ok(Some(ClientSlot {
            table: self.clone(),
            key,
        }))
    }

    /// Clients with a connection open now.
    pub fn clients(&self) -> usize {
        self.open.lock().map_or(0, |m| m.len())
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.table.open.lock() {
            if let Some(n) = open.get_mut(&self.key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(&self.key);
                }
            }
        }
    }
}

/// `configured` connections, or fewer if the open-file soft limit
/// (`nofile`) cannot hold them and [`FD_MARGIN`] more. Never below 1.
pub fn clamp_max_connections(configured: u64, nofile: Option<u64>) -> u64 {
    match nofile {
        Some(limit) => configured.min(limit.saturating_sub(FD_MARGIN).max(1)),
        None => configured,
    }
}

/// The soft "Max open files" of `/proc/self/limits` (`None`: unlimited,
/// or not Linux).
pub fn open_files_soft_limit() -> Option<u64> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| parse_open_files_limit(&t))
}

fn parse_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The router of the App in force: made again after a configuration
/// reload swapped the App, by the first request that sees the new one.
/// A request runs under one App from start to end.
pub struct Routes {
    live: Arc<Live>,
    made: std::sync::RwLock<(Arc<App>, Router)>,
}

impl Routes {
    fn new(live: Arc<Live>) -> Routes {
        let app = live.app();
        let router = super::router(app.clone());
        Routes {
            live,
            made: std::sync::RwLock::new((app, router)),
        }
    }

    fn current(&self) -> Router {
        let app = self.live.app();
        if let Ok(made) = self.made.read() {
            if Arc::ptr_eq(&made.0, &app) {
                return made.1.clone();
            }
        }
        let router = super::router(app.clone());
        if let Ok(mut made) = self.made.write() {
            *made = (app, router.clone());
        }
        router
    }
}

/// Serve the App `live` holds on `listener` (over TLS with `tls`) until
/// `shutdown` resolves, then drain as `server.shutdown_grace_secs` says.
/// `[server]` is read once, here: a reload cannot change it.
pub async fn run(
    live: Arc<Live>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = live.app();
    let metrics = app.metrics.clone();
    let mut limits = Limits::from_config(&app.config.server);
    let configured = limits.max_connections;
    let nofile = open_files_soft_limit();
    limits.max_connections = clamp_max_connections(configured, nofile);
    if limits.max_connections < configured {
        tracing::warn!(
            configured,
            open_files_limit = nofile.unwrap_or_default(),
            max_connections = limits.max_connections,
            "server.max_connections clamped below the open-file limit (raise LimitNOFILE / ulimit -n to allow more)"
        );
    }
    let per_client = PerClient::new(
        limits.max_connections_per_client,
        app.config.server.trusted_proxies(),
    );
    let limits = Arc::new(limits);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    drop(app);
    let routes = Arc::new(Routes::new(live));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: the clamp should prevent them;
                        // do not spin on a listener that keeps failing.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let connections = &metrics.connections;
                if connections.open() >= limits.max_connections {
                    // Accepted and closed at once: the client learns now, and
                    // the backlog does not fill.
                    connections.refused();
                    tracing::debug!(%peer, "connection refused: server.max_connections open");
                    drop(stream);
                    continue;
                }
                let Ok(slot) = per_client.try_open(peer.ip()) else {
                    connections.refused_per_client();
                    tracing::debug!(%peer, "connection refused: server.max_connections_per_client open from this client");
                    drop(stream);
                    continue;
                };
                let open = Open::new(metrics.clone(), slot);
                tasks.spawn(connection(
                    stream,
                    peer,
                    acceptor.clone(),
                    routes.clone(),
                    limits.clone(),
                    stop_rx.clone(),
                    open,
                ));
            }
        }
    }
    // New connections are now refused by the kernel.
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            "shutdown grace (server.shutdown_grace_secs) over: closing the connections still open"
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    Ok(())
}

/// One open connection, counted in `fedgate_connections_open` (and in its
/// client's count) while it lives.
struct Open {
    metrics: Arc<Metrics>,
    /// Held for its Drop, which gives the client's slot back.
    _slot: Option<ClientSlot>,
}

impl Open {
    fn new(metrics: Arc<Metrics>, slot: Option<ClientSlot>) -> Open {
        metrics.connections.opened();
        Open {
            metrics,
            _slot: slot,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.metrics.connections.closed();
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    router: Arc<Routes>,
    limits: Arc<Limits>,
    mut stop: watch::Receiver<bool>,
    open: Open,
) {
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = acceptor else {
        // The first head is read here, so a connection that trickles it
        // holds no hyper buffers meanwhile (`first_head`).
        let first = tokio::select! {
            r = tokio::time::timeout(limits.header_timeout, first_head::read(&stream)) => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        let head = match first {
            Ok(FirstHead::Ready(head)) => head,
            Ok(FirstHead::Closed) => return,
            Err(_) => {
                open.metrics
                    .connections
                    .timed_out(ConnectionTimeout::Header);
                tracing::debug!(%peer, "header timeout (first request)");
                return;
            }
        };
        let io = TokioIo::new(Prefixed::new(head, stream));
        return http(io, peer, router, &limits, stop, &open).await;
    };
    let handshake = tokio::select! {
        r = tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(stream)) => r,
        _ = stop.wait_for(|s| *s) => return,
    };
    match handshake {
        Ok(Ok(tls)) => http(TokioIo::new(tls), peer, router, &limits, stop, &open).await,
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => {
            open.metrics
                .connections
                .timed_out(ConnectionTimeout::TlsHandshake);
            tracing::debug!(%peer, "TLS handshake timeout");
        }
    }
}

async fn http<I>(
    io: I,
    peer: SocketAddr,
    router: Arc<Routes>,
    limits: &Limits,
    mut stop: watch::Receiver<bool>,
    open: &Open,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let metrics = open.metrics.clone();
    let (body_timeout, bodies) = (limits.body_timeout, limits.bodies.clone());
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let router = router.clone();
        let metrics = metrics.clone();
        let bodies = bodies.clone();
        async move {
            Ok::<_, Infallible>(
                request(req, peer, router.current(), body_timeout, &bodies, &metrics).await,
            )
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(MAX_HEAD_BYTES)
        // Also bounds the read buffer a kept-alive connection holds on to.
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = false;
    let result = loop {
        tokio::select! {
            r = conn.as_mut() => break r,
            _ = stop.wait_for(|s| *s), if !stopping => {
                // Finish the request in flight (if any), then close.
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    };
    if let Err(e) = result {
        if e.is_timeout() {
            open.metrics
                .connections
                .timed_out(ConnectionTimeout::Header);
            tracing::debug!(%peer, "header timeout");
        } else if e.is_parse_too_large() {
            open.metrics.connections.head_too_large();
            tracing::debug!(%peer, "request head too large (431)");
        } else {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

/// Read the body (bounded in time and size), then hand the request to the router.
async fn request(
    req: Request<Incoming>,
    peer: SocketAddr,
    router: Router,
    body_timeout: Duration,
    bodies: &Arc<tokio::sync::Semaphore>,
    metrics: &Metrics,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let json = parts.uri.path().starts_with("/oauth2/");
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = body_limit(parts.uri.path());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(json, limit);
    }
    // The body's bytes are held under the in-flight budget (one permit a
    // KiB) until the answer is made.
    let mut held: Option<tokio::sync::OwnedSemaphorePermit> = None;
    let hint = declared.map_or(0, |n| usize::try_from(n).unwrap_or(limit));
    let read = read_body(body, limit, hint, bodies, &mut held);
    let bytes = match tokio::time::timeout(body_timeout, read).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(BodyError::TooLarge)) => return too_large(json, limit),
        Ok(Err(BodyError::OverBudget)) => {
            metrics.connections.refused_body_budget();
            tracing::debug!(%peer, "request body refused: server.max_body_bytes_in_flight held");
            let mut resp = refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "server.busy",
                "fedgate holds as many request bodies as server.max_body_bytes_in_flight allows: try again in a second",
                json,
            );
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::cpu::RETRY_AFTER_SECS),
            );
            return resp;
        }
        Ok(Err(BodyError::Unreadable(e))) => {
            tracing::debug!(%peer, error = %e, "request body unreadable");
            return refusal(
                StatusCode::BAD_REQUEST,
                "http.body_invalid",
                "the request body could not be read (connection closed or malformed chunked encoding)",
                json,
            );
        }
        Err(_) => {
            metrics.connections.timed_out(ConnectionTimeout::Body);
            return refusal(
                StatusCode::REQUEST_TIMEOUT,
                "http.body_timeout",
                "the request body did not arrive within server.body_timeout_secs",
                json,
            );
        }
    };
    parts.extensions.insert(ConnectInfo(peer));
    let req = Request::from_parts(parts, axum::body::Body::from(bytes));
    let resp = match router.oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    };
    drop(held);
    resp
}

enum BodyError {
    TooLarge,
    OverBudget,
    Unreadable(hyper::Error),
}

/// The whole body, at most `limit` bytes, taking a permit of `bodies` for
/// every KiB as it arrives (into `held`); never waiting for one.
async fn read_body(
    mut body: Incoming,
    limit: usize,
    declared: usize,
    bodies: &Arc<tokio::sync::Semaphore>,
    held: &mut Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<axum::body::Bytes, BodyError> {
    // Sized once from Content-Length (at most `limit`; the permits follow
    // the bytes that really arrive).
    let mut buf = Vec::with_capacity(declared.min(limit));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Unreadable)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if buf.len() + data.len() > limit {
            return Err(BodyError::TooLarge);
        }
        let want = (buf.len() + data.len()).div_ceil(1024);
        let have = held.as_ref().map_or(0, |p| p.num_permits());
        if want > have {
            let more = u32::try_from(want - have).map_err(|_| BodyError::TooLarge)?;
            let permit = bodies
                .clone()
                .try_acquire_many_owned(more)
                .map_err(|_| BodyError::OverBudget)?;
            match held {
                Some(p) => p.merge(permit),
                None => *held = Some(permit),
            }
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.into())
}

fn too_large(json: bool, limit: usize) -> Response {
    refusal(
        StatusCode::PAYLOAD_TOO_LARGE,
        "http.body_too_large",
        &format!("the request body is larger than {limit} bytes"),
        json,
    )
}

/// The house error answer (the error page, or JSON on the OAuth endpoints),
/// on a connection that closes after it: its body was not read to the end.
fn refusal(status: StatusCode, code: &'static str, message: &str, json: bool) -> Response {
    let mut resp = if json {
        (
            status,
            axum::Json(serde_json::json!({
                "error": "invalid_request",
                "error_description": message,
                "code": code,
            })),
        )
            .into_response()
    } else {
        let page = super::pages::error(&crate::gateway::Refusal::new(
            status.as_u16(),
            code,
            message,
        ));
        (status, Html(page)).into_response()
    };
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_per_client_are_bounded_and_given_back() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let proxies = vec![crate::net::Cidr::parse("10.0.0.0/8").unwrap()];
        let t = PerClient::new(2, proxies);
        let a = t.try_open(ip("198.51.100.7")).unwrap();
        let b = t.try_open(ip("198.51.100.7")).unwrap();
        assert!(
            t.try_open(ip("198.51.100.7")).is_err(),
            "the third is refused"
        );
        // One IPv6 host is its /64: the same client under any address.
        let v6a = t.try_open(ip("2001:db8:1:2::1")).unwrap();
        let _v6b = t.try_open(ip("2001:db8:1:2::ffff")).unwrap();
        assert!(t.try_open(ip("2001:db8:1:2:abcd::9")).is_err());
        // A trusted proxy is not limited and takes no entry.
        for _ in 0..10 {
            assert!(t.try_open(ip("10.1.2.3")).unwrap().is_none());
        }
        assert_eq!(t.clients(), 2);
        drop(a);
        assert!(
            t.try_open(ip("198.51.100.7")).is_ok(),
            "a closed slot is given back"
        );
        drop(b);
        drop(v6a);
        drop(_v6b);
        assert_eq!(
            t.clients(),
            0,
            "no entry is left for a client with nothing open"
        );
    }

    #[test]
    fn max_connections_is_clamped_below_the_open_file_limit() {
        assert_eq!(clamp_max_connections(4096, Some(1024)), 1024 - FD_MARGIN);
        assert_eq!(clamp_max_connections(4096, Some(65536)), 4096);
        assert_eq!(clamp_max_connections(4096, None), 4096);
        assert_eq!(clamp_max_connections(4096, Some(10)), 1);
    }

    #[test]
    fn the_open_file_soft_limit_is_read_from_proc_limits() {
        let text =
            "Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_files_limit(text), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files     \n";
        assert_eq!(parse_open_files_limit(unlimited), None);
        assert_eq!(parse_open_files_limit("nothing here"), None);
    }
}
