//! A minimal scripted browser for the demo and the tests.

use super::{err, parse_form};

/// A minimal browser for scripted logins: follows redirects itself (so each
/// hop is visible), keeps cookies per host, and auto-submits fedgate's
/// self-posting forms when asked.
pub struct Browser {
    http: reqwest::Client,
    cookies: std::sync::Mutex<Vec<(String, String, String)>>,
}

/// Where a browser navigation ended.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub url: String,
    pub body: String,
    /// Every URL visited, in order.
    pub hops: Vec<String>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            cookies: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn host_of(url: &str) -> String {
        url.split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or_default()
            .to_string()
    }

    fn cookie_header(&self, url: &str) -> Option<String> {
        let host = Self::host_of(url);
        let jar = self.cookies.lock().ok()?;
        let v: Vec<String> = jar
            .iter()
            .filter(|(h, _, _)| *h == host)
            .map(|(_, k, v)| format!("{k}={v}"))
            .collect();
        (!v.is_empty()).then(|| v.join("; "))
    }

    fn keep_cookies(&self, url: &str, resp: &reqwest::Response) {
        let host = Self::host_of(url);
        let Ok(mut jar) = self.cookies.lock() else {
            return;
        };
        for v in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let Some((k, val)) = v
                .to_str()
                .ok()
                .and_then(|s| s.split(';').next())
                .and_then(|kv| kv.split_once('='))
            else {
                continue;
            };
            jar.retain(|(h, n, _)| !(*h == host && n == k));
            jar.push((host.clone(), k.trim().to_string(), val.trim().to_string()));
        }
    }

    /// GET `url` and follow redirects (at most 15).
    pub async fn get(&self, url: &str) -> Result<Page, String> {
        self.navigate(url.to_string(), None).await
    }

    /// POST a form and follow redirects.
    pub async fn post_form(&self, url: &str, form: &[(String, String)]) -> Result<Page, String> {
        self.navigate(url.to_string(), Some(form.to_vec())).await
    }

    async fn navigate(
        &self,
        mut url: String,
        mut form: Option<Vec<(String, String)>>,
    ) -> Result<Page, String> {
        let mut hops = Vec::new();
        for _ in 0..15 {
            hops.push(url.clone());
            let mut req = match &form {
                Some(f) => self.http.post(&url).form(f),
                None => self.http.get(&url),
            };
            if let Some(c) = self.cookie_header(&url) {
                req = req.header(reqwest::header::COOKIE, c);
            }
            let resp = req.send().await.map_err(err)?;
            self.keep_cookies(&url, &resp);
            let status = resp.status().as_u16();
            if resp.status().is_redirection() {
                let loc = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or("a redirect without Location")?
                    .to_string();
                url = if loc.starts_with("http") {
                    loc
                } else {
                    let origin: String = url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
                    format!("{origin}{loc}")
                };
                form = None;
                continue;
            }
            let body = resp.text().await.map_err(err)?;
            return Ok(Page {
                status,
                url,
                body,
                hops,
            });
        }
        Err("more than 15 redirects".into())
    }

    /// Submit the auto-posting form on `page` (what a browser's script does).
    pub async fn submit(&self, page: &Page) -> Result<Page, String> {
        let (action, fields) = parse_form(&page.body).ok_or("the page holds no form")?;
        self.post_form(&action, &fields).await
    }
}
