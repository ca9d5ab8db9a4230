//! A small wrapper over `reqwest`: the base URL, the bearer key, and the
//! server's `{"error":{"code","message"}}` turned into one-line errors.

use super::output::one_line;
use super::Connection;
use anyhow::{anyhow, bail, Context, Result};
use reqwest::{Method, Response, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Upper bound on an ordinary (non-streaming) request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Client {
    http: reqwest::Client,
    base: Url,
    /// The URL as the user gave it, for messages.
    shown: String,
    key: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

impl Client {
    /// Checks the URL and finds the key (flag, environment, or the admin key
    /// file in the data directory).
    pub fn new(conn: &Connection) -> Result<Client> {
        let url = match &conn.url {
            Some(url) => url.clone(),
            None => config_url()?.unwrap_or_else(|| DEFAULT_URL.to_owned()),
        };
        let shown = url.trim().trim_end_matches('/').to_owned();
        let base = parse_base(&shown)?;
        let key = resolve_key(conn.api_key.as_deref(), conn.data_dir.as_deref())?;
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(tenant) = conn.as_tenant.as_deref() {
            let value = reqwest::header::HeaderValue::from_str(tenant.trim())
                .map_err(|_| anyhow!("--as-tenant `{tenant}` cannot be sent in a header"))?;
            headers.insert("x-roster-tenant", value);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .default_headers(headers)
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Client {
            http,
            base,
            shown,
            key,
        })
    }

    /// `base/segments…?query`, each segment percent-encoded.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        // The base is checked to be http(s), which always has a path.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// The server's URL as given, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.shown.trim_end_matches('/')
    }

    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Value> {
        let url = self.url(segments, query);
        let response = self
            .send(Method::GET, url.clone(), None, true, None)
            .await?;
        read_json(response, &url).await
    }

    pub async fn post(&self, segments: &[&str], body: &Value) -> Result<Value> {
        let url = self.url(segments, &[]);
        let response = self
            .send(Method::POST, url.clone(), Some(body), true, None)
            .await?;
        read_json(response, &url).await
    }

    pub async fn patch(&self, segments: &[&str], body: &Value) -> Result<Value> {
        let url = self.url(segments, &[]);
        let response = self
            .send(Method::PATCH, url.clone(), Some(body), true, None)
            .await?;
        read_json(response, &url).await
    }

    pub async fn put(&self, segments: &[&str], body: &Value) -> Result<Value> {
        let url = self.url(segments, &[]);
        let response = self
            .send(Method::PUT, url.clone(), Some(body), true, None)
            .await?;
        read_json(response, &url).await
    }

    /// Any method with a query and an optional JSON body; the JSON answer
    /// (`Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let url = self.url(segments, query);
        let response = self.send(method, url.clone(), body, true, None).await?;
        read_json(response, &url).await
    }

    pub async fn delete(&self, segments: &[&str]) -> Result<()> {
        let url = self.url(segments, &[]);
        self.send(Method::DELETE, url, None, true, None).await?;
        Ok(())
    }

    /// `PUT`s a file's bytes, streamed from disk. No overall timeout: a
    /// large document is parsed and embedded before the server answers.
    pub async fn put_file(
        &self,
        segments: &[&str],
        file: &Path,
        content_type: &str,
    ) -> Result<Value> {
        let url = self.url(segments, &[]);
        let handle = tokio::fs::File::open(file)
            .await
            .with_context(|| format!("cannot open {}", file.display()))?;
        let length = handle
            .metadata()
            .await
            .with_context(|| format!("cannot read {}", file.display()))?
            .len();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(handle));
        let response = self
            .http
            .put(url.clone())
            .bearer_auth(&self.key)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(body)
            .send()
            .await
            .map_err(|e| self.send_error(&e))?;
        let response = check(response, &url).await?;
        read_json(response, &url).await
    }

    /// `GET`s raw bytes (a workspace file).
    pub async fn get_bytes(&self, segments: &[&str]) -> Result<Vec<u8>> {
        let url = self.url(segments, &[]);
        let response = self
            .http
            .get(url.clone())
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(|e| self.send_error(&e))?;
        let response = check(response, &url).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| anyhow!("reading the answer from {url}: {}", root_cause(&e)))?;
        Ok(bytes.to_vec())
    }

    /// A GET whose answer is long (an export): no overall timeout, read by
    /// the caller as it arrives.
    pub async fn get_stream(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Response> {
        let url = self.url(segments, query);
        let response = self
            .http
            .get(url.clone())
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(|e| self.send_error(&e))?;
        check(response, &url).await
    }

    /// A request whose successful answer is read as a stream (SSE): no
    /// overall timeout. `last_event_id` resumes a run's event stream.
    pub async fn stream(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
        last_event_id: Option<i64>,
    ) -> Result<Response> {
        let url = self.url(segments, &[]);
        self.send(method, url, body, false, last_event_id).await
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        timeout: bool,
        last_event_id: Option<i64>,
    ) -> Result<Response> {
        let mut request = self
            .http
            .request(method, url.clone())
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        if timeout {
            request = request.timeout(REQUEST_TIMEOUT);
        } else {
            request = request.header(reqwest::header::ACCEPT, "text/event-stream");
        }
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.map_err(|e| self.send_error(&e))?;
        check(response, &url).await
    }

    fn send_error(&self, e: &reqwest::Error) -> anyhow::Error {
        let cause = root_cause(e);
        if e.is_connect() {
            anyhow!(
                "cannot reach the server at {} ({cause}); is `roster serve` running? (set --url or ROSTER_URL)",
                self.shown
            )
        } else if e.is_timeout() {
            anyhow!("the server at {} did not answer in time", self.shown)
        } else if e.is_builder() {
            anyhow!("cannot build the request ({cause}); is the API key plain ASCII?")
        } else {
            anyhow!("request to {} failed: {cause}", self.shown)
        }
    }
}

/// Deserializes a response value into a typed shape.
pub fn decode<T: DeserializeOwned>(value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| {
        anyhow!(
            "unexpected response from the server: {}",
            roster_core::plain::plain_serde_error(&e.to_string())
        )
    })
}

fn parse_base(raw: &str) -> Result<Url> {
    let mut url = Url::parse(raw).map_err(|e| anyhow!("invalid --url `{raw}`: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        bail!("invalid --url `{raw}`: it must start with http:// or https://");
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url)
}

/// `--api-key` / `ROSTER_API_KEY`, else `<data-dir>/admin.key`.
fn resolve_key(given: Option<&str>, data_dir: Option<&Path>) -> Result<String> {
    if let Some(key) = given.map(str::trim).filter(|k| !k.is_empty()) {
        return Ok(key.to_owned());
    }
    let (data_dir, from) = match data_dir {
        Some(dir) => (dir.to_path_buf(), "--data-dir / ROSTER_DATA_DIR"),
        None => match config_data_dir()? {
            Some(dir) => (dir, "the data_dir of the ROSTER_CONFIG file"),
            None => (PathBuf::from("roster-data"), "the default ./roster-data"),
        },
    };
    let path = data_dir.join(crate::serve::ADMIN_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(contents) => {
            let key = contents.trim();
            if key.is_empty() {
                bail!(
                    "the key file {} is empty; pass --api-key or set ROSTER_API_KEY",
                    path.display()
                );
            }
            Ok(key.to_owned())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no API key: pass --api-key or set ROSTER_API_KEY, or point --data-dir / ROSTER_DATA_DIR (or ROSTER_CONFIG) at the server's data directory ({} from {from} does not exist)",
            path.display()
        ),
        Err(e) => bail!("cannot read the API key from {}: {e}", path.display()),
    }
}

/// Where the CLI looks for a server nobody named.
const DEFAULT_URL: &str = "http://127.0.0.1:7700";

/// The config file `ROSTER_CONFIG` names, so a CLI run with the server's
/// own environment finds its key and its address.
fn server_config() -> Result<Option<crate::config::FileConfig>> {
    let Some(path) = std::env::var_os("ROSTER_CONFIG") else {
        return Ok(None);
    };
    crate::config::FileConfig::load(Some(Path::new(&path))).map(Some)
}

fn config_data_dir() -> Result<Option<PathBuf>> {
    Ok(server_config()?.and_then(|c| c.data_dir))
}

/// `http://` + the config file's `listen`; an unspecified address
/// (`0.0.0.0:7700`) is reached on loopback.
fn config_url() -> Result<Option<String>> {
    Ok(server_config()?.and_then(|c| c.listen).map(|listen| {
        let listen = listen
            .replace("0.0.0.0:", "127.0.0.1:")
            .replace("[::]:", "[::1]:");
        format!("http://{listen}")
    }))
}

/// Passes a success through; turns anything else into one line, using the
/// server's error body when there is one.
async fn check(response: Response, url: &Url) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => {
            let hint = if status == reqwest::StatusCode::UNAUTHORIZED {
                " (check --api-key / ROSTER_API_KEY)"
            } else {
                ""
            };
            Err(anyhow!(
                "{}: {}{hint}",
                one_line(&body.error.code, 80),
                one_line(&body.error.message, 500)
            ))
        }
        Err(_) if text.trim().is_empty() => Err(anyhow!("HTTP {status} from {url}")),
        Err(_) => Err(anyhow!(
            "HTTP {status} from {url}: {}",
            one_line(text.trim(), 200)
        )),
    }
}

async fn read_json(response: Response, url: &Url) -> Result<Value> {
    let bytes = response
        .bytes()
        .await
        .map_err(|e| anyhow!("cannot read the answer from {url}: {}", root_cause(&e)))?;
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| anyhow!("the answer from {url} is not JSON: {e}"))
}

/// The innermost cause, which says what actually went wrong ("Connection
/// refused (os error 111)") rather than "error sending request".
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    one_line(&current.to_string(), 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> Client {
        Client::new(&Connection {
            url: Some(url.to_owned()),
            api_key: Some("k".into()),
            data_dir: None,
            as_tenant: None,
        })
        .expect("client")
    }

    #[test]
    fn urls_encode_segments_and_keep_a_prefix() {
        let c = client("http://h:1/");
        assert_eq!(
            c.url(&["v1", "agents", "a b/c"], &[]).as_str(),
            "http://h:1/v1/agents/a%20b%2Fc"
        );
        let c = client("https://h/prefix");
        assert_eq!(
            c.url(&["v1", "sessions"], &[("limit", "5".into())])
                .as_str(),
            "https://h/prefix/v1/sessions?limit=5"
        );
    }

    #[test]
    fn bad_urls_are_refused() {
        for bad in ["127.0.0.1:7700", "localhost:7700", "ftp://x", ""] {
            let conn = Connection {
                url: Some(bad.to_owned()),
                api_key: Some("k".into()),
                data_dir: None,
                as_tenant: None,
            };
            assert!(Client::new(&conn).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_comes_from_the_data_dir() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = resolve_key(None, Some(dir.path())).expect_err("no key");
        assert!(err.to_string().contains("--api-key"), "{err}");
        std::fs::write(dir.path().join("admin.key"), "rk_abc\n").expect("write");
        assert_eq!(resolve_key(None, Some(dir.path())).expect("key"), "rk_abc");
        assert_eq!(
            resolve_key(Some(" x "), Some(dir.path())).expect("key"),
            "x"
        );
    }
}
