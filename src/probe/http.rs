//! Network probes from where pulldoctor runs: HTTP requests (over TCP, TLS or a unix socket) and a
//! TLS inspection that reports what a server speaks and what its certificate says, even when the
//! certificate would not be trusted. Both are bounded: a deadline for the whole exchange and a cap
//! on what is read, so a server that stalls, floods or never ends its headers costs one timeout.

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes of a response body kept by default (registry answers are small; a flood is cut here).
pub const DEFAULT_MAX_BODY: usize = 1 << 20;
/// Time a TCP connect may take before the address counts as silent.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A response head larger than this is refused (an endless header).
const MAX_HEAD: usize = 64 << 10;

/// Which certificates an HTTPS request trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsTrust {
    /// The system's roots (what containerd uses without a `ca` in hosts.toml).
    #[default]
    System,
    /// The system's roots plus this PEM bundle (a hosts.toml `ca`).
    Ca(String),
    /// No verification (hosts.toml `skip_verify = true`).
    Insecure,
}

/// One HTTP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `HEAD`, `POST`.
    pub method: String,
    /// `http://host:port/path?query` or `https://…`; for a unix socket, `http://localhost/path`.
    pub url: String,
    /// Request headers. Credentials go here; they are never recorded.
    pub headers: Vec<(String, String)>,
    /// The body (a form for the OAuth POST); never recorded.
    pub body: Vec<u8>,
    /// Speak HTTP over this unix socket instead of TCP (the Docker daemon's socket).
    pub unix_socket: Option<String>,
    /// Which certificates to trust for `https`.
    pub trust: TlsTrust,
    /// Deadline for the whole exchange, body included.
    pub timeout: Duration,
    /// Body bytes kept; the rest is not read.
    pub max_body: usize,
    /// Sending it twice does what sending it once does, whatever its method (a token request):
    /// it may be retried when the connection closes under it. `GET` and `HEAD` always may.
    pub repeatable: bool,
}

impl HttpRequest {
    /// A `GET` with the defaults (system roots, 10 s, 1 MiB).
    #[must_use]
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// A request with the defaults.
    #[must_use]
    pub fn new(method: &str, url: impl Into<String>) -> Self {
        HttpRequest {
            method: method.to_string(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            unix_socket: None,
            trust: TlsTrust::System,
            timeout: Duration::from_secs(10),
            max_body: DEFAULT_MAX_BODY,
            repeatable: false,
        }
    }

    /// Add a header.
    #[must_use]
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// How this request is named in evidence, errors and bundles: method and URL (with any
    /// userinfo or token in the query masked by the caller's redactor), plus the socket.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.unix_socket {
            Some(sock) => format!("{} {} (unix socket {sock})", self.method, self.url),
            None => format!("{} {}", self.method, self.url),
        }
    }
}

/// One HTTP response (the body capped at the request's `max_body`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers in the order received (names lower-cased).
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy UTF-8: registry and GitLab answers are JSON or text).
    pub body: String,
    /// The body was longer than the cap and was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub body_truncated: bool,
    /// Wall time.
    pub duration_ms: u64,
}

impl HttpResponse {
    /// The first header of that name (case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header of that name, in order (`WWW-Authenticate` may repeat).
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The status line as a person reads it: `401 Unauthorized`.
    #[must_use]
    pub fn status_text(&self) -> String {
        let reason = reqwest::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        format!("{} {reason}", self.status).trim_end().to_string()
    }
}

/// Where an HTTP or TLS probe failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetStep {
    /// The request could not be formed (a bad URL).
    Request,
    /// TCP or unix-socket connect.
    Connect,
    /// The TLS handshake (including certificate verification).
    Tls,
    /// Waiting for or reading the answer.
    Response,
    /// The whole exchange took longer than its deadline.
    Timeout,
}

impl std::fmt::Display for NetStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NetStep::Request => "request",
            NetStep::Connect => "connect",
            NetStep::Tls => "TLS handshake",
            NetStep::Response => "response",
            NetStep::Timeout => "timeout",
        })
    }
}

/// A failed HTTP or TLS probe: what was asked, at which step, and the cause chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{target}: {step}: {message}")]
pub struct NetError {
    /// The request (`GET http://…`) or address (`host:port`).
    pub target: String,
    /// The step.
    pub step: NetStep,
    /// The cause, innermost detail included ("Connection refused", "UnknownIssuer").
    pub message: String,
}

/// What the server at an address answered to a TLS ClientHello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "speaks", rename_all = "snake_case")]
pub enum TlsReport {
    /// A TLS server: the handshake got as far as its certificate.
    Tls {
        /// The negotiated protocol version, when the handshake completed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        /// The chain it presented, leaf first.
        certificates: Vec<CertInfo>,
        /// Why the chain is not trusted (for the name asked, against the trust given), if not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        untrusted: Option<String>,
    },
    /// A plain-HTTP server: it answered the ClientHello with an HTTP response.
    PlainHttp {
        /// Its status line.
        status_line: String,
    },
    /// Something else, or nothing: the connection closed or the bytes were neither.
    Other {
        /// What happened, in words.
        detail: String,
    },
}

/// A certificate, as a person checks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    /// Subject (RFC 4514 string).
    pub subject: String,
    /// Issuer.
    pub issuer: String,
    /// DNS names and IP addresses it is valid for (subjectAltName).
    pub names: Vec<String>,
    /// Not before (RFC 3339).
    pub not_before: String,
    /// Not after (RFC 3339).
    pub not_after: String,
    /// Issuer equals subject.
    pub self_signed: bool,
}

impl CertInfo {
    /// Expired (or not yet valid) at `now`.
    #[must_use]
    pub fn outside_validity(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
        match (parse(&self.not_before), parse(&self.not_after)) {
            (Some(nb), Some(na)) => now < nb || now > na,
            _ => false,
        }
    }
}

/// Live HTTP: a reqwest client per trust setting (kept for the run, so connections are reused),
/// and a small HTTP/1.1 client for unix sockets.
#[derive(Default)]
pub struct HttpClients {
    clients: Mutex<Vec<(TlsTrust, reqwest::Client)>>,
}

impl HttpClients {
    fn client(&self, trust: &TlsTrust, target: &str) -> Result<reqwest::Client, NetError> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, c)) = clients.iter().find(|(t, _)| t == trust) {
            return Ok(c.clone());
        }
        // No proxy from our environment (we test the path the node takes, not ours) and no
        // redirects (a redirect to a storage bucket is itself evidence).
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("pulldoctor/", env!("CARGO_PKG_VERSION")));
        match trust {
            TlsTrust::System => {}
            TlsTrust::Ca(pem) => {
                let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
                    NetError {
                        target: target.to_string(),
                        step: NetStep::Request,
                        message: format!("the CA bundle is not valid PEM: {e}"),
                    }
                })?;
                builder = builder.tls_certs_merge(certs);
            }
            TlsTrust::Insecure => builder = builder.tls_danger_accept_invalid_certs(true),
        }
        let client = builder.build().map_err(|e| NetError {
            target: target.to_string(),
            step: NetStep::Request,
            message: cause_chain(&e),
        })?;
        clients.push((trust.clone(), client.clone()));
        Ok(client)
    }

    /// Send `req` and read the answer within its deadline.
    ///
    /// # Errors
    /// The step that failed and why.
    pub async fn send(&self, req: &HttpRequest) -> Result<HttpResponse, NetError> {
        let target = req.describe();
        let started = Instant::now();
        let exchange = async {
            match &req.unix_socket {
                Some(path) => unix_exchange(path, req, &target).await,
                None => self.tcp_exchange(req, &target).await,
            }
        };
        match tokio::time::timeout(req.timeout, exchange).await {
            Ok(Ok((status, headers, body, body_truncated))) => Ok(HttpResponse {
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
                body_truncated,
                duration_ms: elapsed_ms(started),
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(NetError {
                target,
                step: NetStep::Timeout,
                message: format!("no complete answer within {} ms", req.timeout.as_millis()),
            }),
        }
    }

    async fn tcp_exchange(&self, req: &HttpRequest, target: &str) -> Result<RawResponse, NetError> {
        let client = self.client(&req.trust, target)?;
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| NetError {
            target: target.to_string(),
            step: NetStep::Request,
            message: e.to_string(),
        })?;
        let build = || {
            let mut builder = client.request(method.clone(), &req.url);
            for (name, value) in &req.headers {
                builder = builder.header(name, value);
            }
            if !req.body.is_empty() {
                builder = builder.body(req.body.clone());
            }
            builder
        };
        let mut sent = build().send().await;
        // A server may close a kept-alive connection just as the next request goes out on it
        // (its idle timeout, or a server that answers once and hangs up without saying so); the
        // request then fails before any answer. Like Go's net/http, retry an idempotent request
        // once, on a new connection, rather than report a working server as unreachable.
        let repeatable =
            req.repeatable || matches!(method, reqwest::Method::GET | reqwest::Method::HEAD);
        if matches!(&sent, Err(e) if repeatable && closed_before_answer(e)) {
            tracing::debug!(%target, "connection closed before the answer; retrying once");
            sent = build().send().await;
        }
        let mut resp = sent.map_err(|e| NetError {
            target: target.to_string(),
            step: reqwest_step(&e),
            message: cause_chain(&e),
        })?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        let mut truncated = false;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    let room = req.max_body.saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if chunk.len() > room {
                        truncated = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(NetError {
                        target: target.to_string(),
                        step: NetStep::Response,
                        message: cause_chain(&e),
                    });
                }
            }
        }
        Ok((status, headers, body, truncated))
    }
}

type RawResponse = (u16, Vec<(String, String)>, Vec<u8>, bool);
/// Status, headers, and the head's length in bytes.
type Head = (u16, Vec<(String, String)>, usize);

/// HTTP/1.1 over a unix socket, `Connection: close`, read to the end or the cap.
async fn unix_exchange(
    path: &str,
    req: &HttpRequest,
    target: &str,
) -> Result<RawResponse, NetError> {
    let fail = |step, message: String| NetError {
        target: target.to_string(),
        step,
        message,
    };
    let url = reqwest::Url::parse(&req.url).map_err(|e| fail(NetStep::Request, e.to_string()))?;
    let path_and_query = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut stream = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|e| fail(NetStep::Connect, e.to_string()))?;
    let mut head = format!(
        "{} {path_and_query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: pulldoctor/{}\r\n",
        req.method,
        url.host_str().unwrap_or("localhost"),
        env!("CARGO_PKG_VERSION")
    );
    for (n, v) in &req.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if !req.body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", req.body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&req.body);
    stream
        .write_all(&out)
        .await
        .map_err(|e| fail(NetStep::Connect, e.to_string()))?;
    // Read the head, then the body up to the cap.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let (status, headers, body_start) = loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| fail(NetStep::Response, e.to_string()))?;
        if n == 0 {
            return Err(fail(
                NetStep::Response,
                "the connection closed before a complete response head".to_string(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_head(&buf) {
            Ok(Some(head)) => break head,
            Ok(None) if buf.len() > MAX_HEAD => {
                return Err(fail(
                    NetStep::Response,
                    format!("the response head is longer than {MAX_HEAD} bytes"),
                ));
            }
            Ok(None) => {}
            Err(e) => return Err(fail(NetStep::Response, e)),
        }
    };
    let mut body = buf.split_off(body_start);
    let mut truncated = false;
    loop {
        if body.len() > req.max_body.saturating_mul(2) {
            truncated = true;
            break;
        }
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| fail(NetStep::Response, e.to_string()))?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    if body.len() > req.max_body {
        body.truncate(req.max_body);
        truncated = true;
    }
    Ok((status, headers, body, truncated))
}

/// A response head: status, headers (names lower-cased) and its length; `None` while incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let mut header_slots = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut header_slots);
    match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let headers = parsed
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            Ok(Some((parsed.code.unwrap_or(0), headers, len)))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(format!("not an HTTP response: {e}")),
    }
}

/// A whole HTTP response captured as bytes (a node's `/dev/tcp` GET): `None` if it is not one.
#[must_use]
pub fn parse_response(bytes: &[u8]) -> Option<HttpResponse> {
    let (status, headers, len) = parse_head(bytes).ok()??;
    let body = bytes.get(len..).unwrap_or_default();
    Some(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(body).into_owned(),
        body_truncated: false,
        duration_ms: 0,
    })
}

/// Join a chunked body (tolerating a cut-off end: what arrived is kept).
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            break;
        };
        raw = &raw[eol + 2..];
        if size == 0 {
            break;
        }
        let take = size.min(raw.len());
        out.extend_from_slice(&raw[..take]);
        raw = raw.get(take + 2..).unwrap_or_default();
    }
    out
}

/// The connection closed after the request went out and before any byte of an answer (hyper's
/// "connection closed before message completed").
fn closed_before_answer(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
        {
            return true;
        }
        source = err.source();
    }
    false
}

fn reqwest_step(e: &reqwest::Error) -> NetStep {
    let chain = cause_chain(e);
    if e.is_timeout() {
        NetStep::Timeout
    } else if is_tls_failure(&chain) {
        NetStep::Tls
    } else if e.is_connect() {
        NetStep::Connect
    } else if e.is_builder() {
        NetStep::Request
    } else {
        NetStep::Response
    }
}

fn is_tls_failure(chain: &str) -> bool {
    [
        "certificate",
        "tls",
        "handshake",
        "InvalidContentType",
        "corrupt message",
    ]
    .iter()
    .any(|w| chain.contains(w))
}

/// An error and its sources, joined; repeated links dropped (reqwest nests the same text).
#[must_use]
pub fn cause_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Connect to `host:port`, send a TLS ClientHello for `server_name`, and report what comes back:
/// a certificate chain (with whether `trust` accepts it for that name), a plain-HTTP answer, or
/// nothing useful.
///
/// # Errors
/// Only when the address cannot be reached at all (connect) or the deadline passes.
pub async fn inspect_tls(
    host: &str,
    port: u16,
    server_name: &str,
    trust: &TlsTrust,
    timeout: Duration,
) -> Result<TlsReport, NetError> {
    let target = format!("{host}:{port}");
    match tokio::time::timeout(timeout, handshake(host, port, server_name, trust, &target)).await {
        Ok(r) => r,
        Err(_) => Err(NetError {
            target,
            step: NetStep::Timeout,
            message: format!(
                "the TLS handshake did not finish within {} ms",
                timeout.as_millis()
            ),
        }),
    }
}

async fn handshake(
    host: &str,
    port: u16,
    server_name: &str,
    trust: &TlsTrust,
    target: &str,
) -> Result<TlsReport, NetError> {
    use rustls::pki_types::ServerName;
    let fail = |step, message: String| NetError {
        target: target.to_string(),
        step,
        message,
    };
    let (config, seen) = capturing_config(trust).map_err(|m| fail(NetStep::Request, m))?;
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| fail(NetStep::Request, format!("'{server_name}': {e}")))?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| fail(NetStep::Tls, e.to_string()))?;
    // The connect has its own deadline, so a silent drop reads as such and not as a server
    // that accepted and then said nothing.
    let mut stream = match tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(fail(NetStep::Connect, e.to_string())),
        Err(_) => {
            return Err(fail(
                NetStep::Connect,
                format!(
                    "no answer to the connection attempt within {} s (dropped?)",
                    CONNECT_TIMEOUT.as_secs()
                ),
            ));
        }
    };
    let mut first = true;
    let mut rbuf = vec![0u8; 16 * 1024];
    let verdict: Option<String> = loop {
        while conn.wants_write() {
            let mut out = Vec::new();
            if conn.write_tls(&mut out).is_err() {
                break;
            }
            if stream.write_all(&out).await.is_err() {
                break;
            }
        }
        if !conn.is_handshaking() {
            break None;
        }
        let n = match stream.read(&mut rbuf).await {
            Ok(0) => {
                break Some("the server closed the connection during the handshake".to_string());
            }
            Ok(n) => n,
            Err(e) => break Some(format!("reading the handshake: {e}")),
        };
        if first {
            first = false;
            if rbuf[..n].starts_with(b"HTTP/") {
                let text = String::from_utf8_lossy(&rbuf[..n]);
                let status_line = text.lines().next().unwrap_or("").trim().to_string();
                return Ok(TlsReport::PlainHttp { status_line });
            }
        }
        let mut slice = &rbuf[..n];
        while !slice.is_empty() {
            if let Err(e) = conn.read_tls(&mut slice) {
                return Ok(TlsReport::Other {
                    detail: format!("unreadable TLS records: {e}"),
                });
            }
        }
        if let Err(e) = conn.process_new_packets() {
            // flush the alert politely, then report
            let mut out = Vec::new();
            let _ = conn.write_tls(&mut out);
            let _ = stream.write_all(&out).await;
            break Some(e.to_string());
        }
    };
    let chain = seen
        .lock()
        .map(|c| c.clone())
        .unwrap_or_else(|p| p.into_inner().clone());
    if chain.is_empty() {
        return Ok(TlsReport::Other {
            detail: verdict.unwrap_or_else(|| "no certificate was presented".to_string()),
        });
    }
    let certificates = chain.iter().filter_map(|der| describe_cert(der)).collect();
    Ok(TlsReport::Tls {
        version: conn
            .protocol_version()
            .filter(|_| verdict.is_none())
            .map(|v| format!("{v:?}").replace('_', ".")),
        certificates,
        untrusted: verdict,
    })
}

type SeenChain = Arc<Mutex<Vec<Vec<u8>>>>;

/// A client config whose verifier keeps the presented chain, then asks the real verifier.
fn capturing_config(trust: &TlsTrust) -> Result<(rustls::ClientConfig, SeenChain), String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let seen: SeenChain = Arc::default();
    let inner: Option<Arc<dyn rustls::client::danger::ServerCertVerifier>> = match trust {
        TlsTrust::Insecure => None,
        TlsTrust::System | TlsTrust::Ca(_) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in system_roots() {
                let _ = roots.add(cert.clone());
            }
            if let TlsTrust::Ca(pem) = trust {
                use rustls::pki_types::pem::PemObject;
                let mut added = 0;
                for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    let cert = cert.map_err(|e| format!("the CA bundle is not valid PEM: {e}"))?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("the CA bundle holds an unusable certificate: {e}"))?;
                    added += 1;
                }
                if added == 0 {
                    return Err("the CA bundle holds no certificate".to_string());
                }
            }
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| format!("cannot build a verifier: {e}"))?;
            Some(verifier)
        }
    };
    let verifier = Arc::new(Capturing {
        inner,
        seen: seen.clone(),
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((config, seen))
}

fn system_roots() -> &'static [rustls::pki_types::CertificateDer<'static>] {
    static ROOTS: std::sync::OnceLock<Vec<rustls::pki_types::CertificateDer<'static>>> =
        std::sync::OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

#[derive(Debug)]
struct Capturing {
    inner: Option<Arc<dyn rustls::client::danger::ServerCertVerifier>>,
    seen: SeenChain,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Capturing {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(end_entity.to_vec());
            seen.extend(intermediates.iter().map(|c| c.to_vec()));
        }
        match &self.inner {
            Some(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            None => Ok(rustls::client::danger::ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Subject, issuer, names and validity of a DER certificate (None when it does not parse).
#[must_use]
pub fn describe_cert(der: &[u8]) -> Option<CertInfo> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => names.push((*d).to_string()),
                GeneralName::IPAddress(ip) => {
                    let text = match ip.len() {
                        4 => <[u8; 4]>::try_from(*ip)
                            .map(|b| std::net::IpAddr::from(b).to_string())
                            .ok(),
                        16 => <[u8; 16]>::try_from(*ip)
                            .map(|b| std::net::IpAddr::from(b).to_string())
                            .ok(),
                        _ => None,
                    };
                    names.extend(text);
                }
                _ => {}
            }
        }
    }
    let time = |t: ASN1Time| {
        chrono::DateTime::from_timestamp(t.timestamp(), 0)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    Some(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        names,
        not_before: time(cert.validity().not_before),
        not_after: time(cert.validity().not_after),
        self_signed: cert.subject() == cert.issuer(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks_and_tolerates_a_cut() {
        assert_eq!(
            dechunk(b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n"),
            b"Wikipedia"
        );
        assert_eq!(dechunk(b"4\r\nWi"), b"Wi");
        assert_eq!(dechunk(b"zz\r\n"), b"");
    }

    /// A server that answers the first request on each connection and keeps it open, then reads
    /// the second and hangs up without answering: what a server whose idle timeout fires just as
    /// a kept-alive connection is reused looks like to the client.
    fn closes_under_the_second_request() -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/v2/", listener.local_addr().expect("addr"));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    if conn.read(&mut buf).unwrap_or(0) == 0 {
                        return;
                    }
                    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
                    let _ = conn.read(&mut buf);
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn idempotent_request_survives_a_closed_kept_alive_connection() {
        let url = closes_under_the_second_request();
        let clients = HttpClients::default();
        for round in 0..3 {
            let answer = clients.send(&HttpRequest::get(&url)).await;
            assert_eq!(answer.map(|r| r.status).ok(), Some(200), "round {round}");
        }
    }

    #[tokio::test]
    async fn a_post_is_sent_twice_only_when_repeatable() {
        let url = closes_under_the_second_request();
        let clients = HttpClients::default();
        let post = HttpRequest::new("POST", &url);
        assert!(clients.send(&post).await.is_ok());
        let second = clients.send(&post).await.expect_err("the server hung up");
        assert!(
            second.message.contains("closed before message completed"),
            "{second:?}"
        );
        let token_post = HttpRequest {
            repeatable: true,
            ..post
        };
        for round in 0..3 {
            let answer = clients.send(&token_post).await;
            assert_eq!(answer.map(|r| r.status).ok(), Some(200), "round {round}");
        }
    }

    #[test]
    fn cause_chain_drops_repeats() {
        let e = std::io::Error::other("connection refused");
        assert_eq!(cause_chain(&e), "connection refused");
    }
}
