//! Microsoft Graph, for one thing: a user's transitive group ids when Entra
//! sent an overage link instead of the groups (more than 150 in SAML, 200 in
//! a JWT). Client-credentials grant with the tenant's app registration,
//! `GET /users/{oid}/transitiveMemberOf/microsoft.graph.group?$select=id`,
//! paged. Never "no groups": any failure is an error with its own code.
//!
//! No HTTP redirect is followed, every request has a timeout, and a
//! `@odata.nextLink` is followed only on the configured Graph origin.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::identity::ErrorCode;

/// Why the groups could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// The client-credentials grant failed (secret, app registration, network).
    #[error("Graph token request failed: {0}")]
    Token(String),
    /// The group query failed (permissions: GroupMember.Read.All; network).
    #[error("Graph group query failed: {0}")]
    Request(String),
    /// Graph answered something that is not a group listing.
    #[error("Graph answered an unexpected document: {0}")]
    Invalid(String),
}

impl ErrorCode for GraphError {
    fn code(&self) -> &'static str {
        match self {
            GraphError::Token(_) => "graph.token_failed",
            GraphError::Request(_) => "graph.request_failed",
            GraphError::Invalid(_) => "graph.response_invalid",
        }
    }
}

/// A tenant's Graph access.
pub struct GraphClient {
    http: reqwest::Client,
    token_url: String,
    base_url: String,
    client_id: String,
    credential: crate::trust::credential::ClientCredential,
    token: Mutex<Option<(String, Instant)>>,
    cache: Mutex<HashMap<String, (Vec<String>, Instant)>>,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret or the token.
        f.debug_struct("GraphClient")
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct Page<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next: Option<String>,
}

#[derive(Deserialize)]
struct Member {
    id: String,
}

/// A member of a group, as Graph lists it (`transitiveMembers`).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct DirectoryObject {
    pub id: String,
    /// `#microsoft.graph.user`, `#microsoft.graph.servicePrincipal`, …
    #[serde(rename = "@odata.type", default)]
    pub kind: String,
    #[serde(rename = "userPrincipalName", default)]
    pub upn: Option<String>,
    #[serde(rename = "displayName", default)]
    pub display_name: Option<String>,
}

fn object_id_ok(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// How long resolved groups are reused for the same user.
const CACHE_FOR: Duration = Duration::from_secs(600);
/// At most this many pages (999 groups each).
const MAX_PAGES: usize = 50;

impl GraphClient {
    pub fn new(
        token_url: String,
        base_url: String,
        client_id: String,
        credential: crate::trust::credential::ClientCredential,
    ) -> Result<Self, GraphError> {
        crate::trust::install_crypto_provider();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| GraphError::Request(e.to_string()))?;
        Ok(GraphClient {
            http,
            token_url,
            base_url: base_url.trim_end_matches('/').to_string(),
            client_id,
            credential,
            token: Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
        })
    }

    async fn access_token(&self) -> Result<String, GraphError> {
        if let Ok(t) = self.token.lock() {
            if let Some((tok, until)) = t.as_ref() {
                if Instant::now() < *until {
                    return Ok(tok.clone());
                }
            }
        }
        let mut form = self
            .credential
            .form_params(
                &self.client_id,
                &self.token_url,
                time::OffsetDateTime::now_utc(),
            )
            .map_err(|e| GraphError::Token(e.to_string()))?;
        form.push(("grant_type", "client_credentials".into()));
        form.push(("scope", "https://graph.microsoft.com/.default".into()));
        let resp = self
            .http
            .post(&self.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| GraphError::Token(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(GraphError::Token(format!("HTTP {}", resp.status())));
        }
        let t: TokenResponse = resp
            .json()
            .await
            .map_err(|e| GraphError::Token(format!("not a token response: {e}")))?;
        // Renew a minute early.
        let life = t.expires_in.unwrap_or(300).saturating_sub(60);
        if let Ok(mut slot) = self.token.lock() {
            *slot = Some((
                t.access_token.clone(),
                Instant::now() + Duration::from_secs(life),
            ));
        }
        Ok(t.access_token)
    }

    /// The user's transitive group ids.
    pub async fn transitive_groups(&self, object_id: &str) -> Result<Vec<String>, GraphError> {
        if !object_id_ok(object_id) {
            return Err(GraphError::Invalid(format!(
                "{object_id:?} is not an object id"
            )));
        }
        if let Ok(c) = self.cache.lock() {
            if let Some((groups, until)) = c.get(object_id) {
                if Instant::now() < *until {
                    return Ok(groups.clone());
                }
            }
        }
        let url = format!(
            "{}/users/{object_id}/transitiveMemberOf/microsoft.graph.group?$select=id&$top=999",
            self.base_url
        );
        let groups: Vec<String> = self
            .paged::<Member>(url)
            .await?
            .into_iter()
            .map(|m| m.id)
            .collect();
        if let Ok(mut c) = self.cache.lock() {
            c.insert(
                object_id.to_string(),
                (groups.clone(), Instant::now() + CACHE_FOR),
            );
        }
        Ok(groups)
    }

    /// A group's transitive members (users, service principals, devices),
    /// for access reviews: `GET /groups/{id}/transitiveMembers`, paged.
    pub async fn group_members(&self, group_id: &str) -> Result<Vec<DirectoryObject>, GraphError> {
        if !object_id_ok(group_id) {
            return Err(GraphError::Invalid(format!(
                "{group_id:?} is not an object id"
            )));
        }
        let url = format!(
            "{}/groups/{group_id}/transitiveMembers?$select=id,userPrincipalName,displayName&$top=999",
            self.base_url
        );
        self.paged(url).await
    }

    /// Every page of a listing, following `@odata.nextLink` on Graph only,
    /// at most [`MAX_PAGES`].
    async fn paged<T: serde::de::DeserializeOwned>(
        &self,
        mut url: String,
    ) -> Result<Vec<T>, GraphError> {
        let token = self.access_token().await?;
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let resp = self
                .http
                .get(&url)
                .bearer_auth(&token)
                .send()
                .await
                .map_err(|e| GraphError::Request(e.to_string()))?;
            if !resp.status().is_success() {
                return Err(GraphError::Request(format!("HTTP {}", resp.status())));
            }
            let page: Page<T> = resp
                .json()
                .await
                .map_err(|e| GraphError::Invalid(e.to_string()))?;
            out.extend(page.value);
            match page.next {
                None => return Ok(out),
                // Follow paging only on Graph itself: a link elsewhere would
                // send the bearer token to a stranger.
                Some(next) if next.starts_with(&format!("{}/", self.base_url)) => url = next,
                Some(next) => {
                    return Err(GraphError::Invalid(format!(
                        "nextLink {next} is not on {}",
                        self.base_url
                    )))
                }
            }
        }
        Err(GraphError::Invalid(format!("more than {MAX_PAGES} pages")))
    }
}
