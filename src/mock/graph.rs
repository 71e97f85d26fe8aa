//! A mock Microsoft Graph (and its token endpoint) that speaks the real
//! shapes: client-credentials token, `transitiveMemberOf/microsoft.graph.group`
//! with `@odata.nextLink` paging. For tests and the demo.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

pub struct MockGraph {
    /// Its own base URL (`http://127.0.0.1:port`), for nextLinks.
    pub base: String,
    pub client_id: String,
    pub client_secret: String,
    /// Group ids by user object id.
    pub memberships: HashMap<String, Vec<String>>,
    /// User principal names by object id (`transitiveMembers`).
    pub upns: HashMap<String, String>,
    /// Groups per page.
    pub page_size: usize,
    /// Answer 503 to group queries (a Graph outage).
    pub down: bool,
    pub requests: AtomicUsize,
}

const TOKEN: &str = "mock-graph-access-token";

pub fn router(g: Arc<MockGraph>) -> Router {
    Router::new()
        .route("/token", post(token))
        .route(
            "/v1.0/users/{oid}/transitiveMemberOf/microsoft.graph.group",
            get(groups),
        )
        .route("/v1.0/groups/{gid}/transitiveMembers", get(members))
        .with_state(g)
}

async fn token(
    State(g): State<Arc<MockGraph>>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let ok = f.get("grant_type").map(String::as_str) == Some("client_credentials")
        && f.get("client_id") == Some(&g.client_id)
        && f.get("client_secret") == Some(&g.client_secret)
        && f.get("scope").map(String::as_str) == Some("https://graph.microsoft.com/.default");
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    Json(json!({"token_type": "Bearer", "expires_in": 3599, "access_token": TOKEN})).into_response()
}

/// Graph's answer to a request without the token, or while "down".
fn refused(g: &MockGraph, headers: &HeaderMap) -> Option<Response> {
    g.requests.fetch_add(1, Ordering::SeqCst);
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return Some(StatusCode::UNAUTHORIZED.into_response());
    }
    g.down
        .then(|| StatusCode::SERVICE_UNAVAILABLE.into_response())
}

/// One page of `all` from `$skiptoken`, as Graph pages: `@odata.nextLink`
/// (`next(skip)`) while more are left.
fn paged(
    g: &MockGraph,
    q: &HashMap<String, String>,
    context: &str,
    all: Vec<serde_json::Value>,
    next: impl Fn(usize) -> String,
) -> Response {
    let skip: usize = q
        .get("$skiptoken")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let more = skip + g.page_size < all.len();
    let page: Vec<_> = all.into_iter().skip(skip).take(g.page_size).collect();
    let mut body = json!({"@odata.context": context, "value": page});
    if more {
        body["@odata.nextLink"] = json!(next(skip + g.page_size));
    }
    Json(body).into_response()
}

async fn groups(
    State(g): State<Arc<MockGraph>>,
    Path(oid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refused(&g, &headers) {
        return r;
    }
    let all = g
        .memberships
        .get(&oid)
        .map(|ids| {
            ids.iter()
                .map(|id| json!({"@odata.type": "#microsoft.graph.group", "id": id}))
                .collect()
        })
        .unwrap_or_default();
    paged(
        &g,
        &q,
        "https://graph.microsoft.com/v1.0/$metadata#directoryObjects",
        all,
        |skip| {
            format!(
                "{}/v1.0/users/{oid}/transitiveMemberOf/microsoft.graph.group?$select=id&$top=999&$skiptoken={skip}",
                g.base
            )
        },
    )
}

/// The users whose (transitive) groups include `gid`, by object id order,
/// paged like the group listing.
async fn members(
    State(g): State<Arc<MockGraph>>,
    Path(gid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refused(&g, &headers) {
        return r;
    }
    let mut oids: Vec<&String> = g
        .memberships
        .iter()
        .filter(|(_, groups)| groups.contains(&gid))
        .map(|(oid, _)| oid)
        .collect();
    oids.sort();
    let all = oids
        .into_iter()
        .map(|oid| {
            let upn = g.upns.get(oid);
            json!({"@odata.type": "#microsoft.graph.user", "id": oid, "userPrincipalName": upn, "displayName": upn})
        })
        .collect();
    paged(
        &g,
        &q,
        "https://graph.microsoft.com/v1.0/$metadata#directoryObjects(id,userPrincipalName,displayName)",
        all,
        |skip| {
            format!(
                "{}/v1.0/groups/{gid}/transitiveMembers?$select=id,userPrincipalName,displayName&$top=999&$skiptoken={skip}",
                g.base
            )
        },
    )
}

/// Serve a mock Graph on a free loopback port (`graph-app` / `graph-secret`):
/// its base URL, the mock (to count requests), and a sender that stops it.
pub async fn serve_loopback(
    memberships: HashMap<String, Vec<String>>,
    page_size: usize,
    down: bool,
) -> std::io::Result<(String, Arc<MockGraph>, tokio::sync::oneshot::Sender<()>)> {
    serve_loopback_with(memberships, HashMap::new(), page_size, down).await
}

/// [`serve_loopback`], with the users' principal names.
pub async fn serve_loopback_with(
    memberships: HashMap<String, Vec<String>>,
    upns: HashMap<String, String>,
    page_size: usize,
    down: bool,
) -> std::io::Result<(String, Arc<MockGraph>, tokio::sync::oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let g = Arc::new(MockGraph {
        base: base.clone(),
        client_id: "graph-app".into(),
        client_secret: "graph-secret".into(),
        memberships,
        upns,
        page_size,
        down,
        requests: AtomicUsize::new(0),
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let served = g.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router(served))
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok((base, g, tx))
}

/// The `[tenants.graph]` block for a mock Graph at `base` (appended after a
/// configuration, it belongs to the last `[[tenants]]`); the secret goes to
/// `secret_file`.
pub fn tenant_toml(base: &str, secret_file: &std::path::Path) -> std::io::Result<String> {
    std::fs::write(secret_file, "graph-secret\n")?;
    Ok(format!(
        "\n[tenants.graph]\nclient_id = \"graph-app\"\nclient_secret_file = \"{}\"\ntoken_url = \"{base}/token\"\nbase_url = \"{base}/v1.0\"\n",
        secret_file.display()
    ))
}
