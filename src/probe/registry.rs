//! The registry conversation, spoken the way containerd speaks it (DOMAIN.md §4, §5.6): `GET /v2/`,
//! the Bearer challenge, the token request (OAuth2 POST first when there are credentials, GET on
//! 400/401/404/405, anonymous GET without them), then `HEAD` on the manifest with containerd's
//! Accept header. Every step is an [`Exchange`] kept for evidence; credentials are sent, never
//! kept.

use super::http::{HttpRequest, HttpResponse, TlsTrust};
use super::{ProbeError, Probes};
use crate::parse::dockercfg::Secret;
use crate::parse::jwt::{self, Jwt};
use crate::parse::www_auth::{self, Challenge};
use std::time::Duration;

/// containerd's Accept header for manifests (`core/remotes/docker/resolver.go`).
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*";

/// A registry endpoint: `http://host:port` or `https://host:port`, and how to trust it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Scheme, host and port, no path.
    pub base: String,
    /// Certificates to trust for https.
    pub trust: TlsTrust,
    /// Deadline per request.
    pub timeout: Duration,
}

/// Username and password (or token) as a pull secret holds them.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Username (not secret: `gitlab-ci-token`, `gitlab+deploy-token-3`).
    pub username: String,
    /// Password or token.
    pub password: Secret,
}

impl Credentials {
    fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password.expose());
        format!("Basic {}", jwt::base64_encode(pair.as_bytes(), false))
    }
}

/// One request and what came back, for evidence (no credentials: the request line and the
/// answer's status, challenge and error body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// `GET http://…/v2/`.
    pub request: String,
    /// `401 Unauthorized`, or the failure (`connect: Connection refused`).
    pub answer: String,
}

/// One entry of a registry's `{"errors":[…]}` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryError {
    /// `NAME_UNKNOWN`, `MANIFEST_UNKNOWN`, `UNAUTHORIZED`, `DENIED`, …
    pub code: String,
    /// Its message.
    pub message: String,
}

/// The registry's error body, if it is one.
#[must_use]
pub fn registry_errors(body: &str) -> Vec<RegistryError> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        return Vec::new();
    };
    value
        .get("errors")
        .and_then(|e| e.as_array())
        .map(|errors| {
            errors
                .iter()
                .map(|e| RegistryError {
                    code: e
                        .get("code")
                        .and_then(|c| c.as_str())
                        .unwrap_or("")
                        .to_string(),
                    message: e
                        .get("message")
                        .and_then(|c| c.as_str())
                        .unwrap_or("")
                        .to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A conversation with one registry: the endpoint and what was said so far.
pub struct Session<'a> {
    probes: &'a dyn Probes,
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Every exchange, in order.
    pub exchanges: Vec<Exchange>,
}

/// What the token service answered.
#[derive(Debug, Clone)]
pub struct TokenReply {
    /// `POST` (OAuth2 form) or `GET`.
    pub method: &'static str,
    /// The token request as sent (realm with service and scope; no credentials).
    pub request: String,
    /// The HTTP answer.
    pub response: HttpResponse,
    /// The token, when the answer carried one.
    pub token: Option<Secret>,
    /// Its claims, when it is a JWT.
    pub claims: Option<Jwt>,
    /// Why the token could not be read, when it was there but is not a JWT.
    pub token_problem: Option<String>,
}

impl<'a> Session<'a> {
    /// Start a conversation.
    #[must_use]
    pub fn new(probes: &'a dyn Probes, endpoint: Endpoint) -> Self {
        Session {
            probes,
            endpoint,
            exchanges: Vec::new(),
        }
    }

    async fn send(&mut self, req: HttpRequest) -> Result<HttpResponse, ProbeError> {
        let described = req.describe();
        let result = self.probes.http(&req).await;
        let answer = match &result {
            Ok(r) => {
                let mut a = r.status_text();
                if let Some(c) = r.header("www-authenticate") {
                    a.push_str(&format!(", WWW-Authenticate: {c}"));
                }
                if let Some(e) = registry_errors(&r.body).first() {
                    a.push_str(&format!(", {}: {}", e.code, e.message));
                }
                a
            }
            Err(e) => match e {
                ProbeError::Net(n) => format!("{}: {}", n.step, n.message),
                other => other.to_string(),
            },
        };
        self.exchanges.push(Exchange {
            request: described,
            answer,
        });
        result
    }

    fn request(&self, method: &str, url: String) -> HttpRequest {
        let mut req = HttpRequest::new(method, url);
        req.trust = self.endpoint.trust.clone();
        req.timeout = self.endpoint.timeout;
        req
    }

    /// `GET /v2/`: the API check and, with token auth, the challenge.
    ///
    /// # Errors
    /// The registry could not be reached.
    pub async fn ping(&mut self) -> Result<(HttpResponse, Vec<Challenge>), ProbeError> {
        let url = format!("{}/v2/", self.endpoint.base);
        let resp = self.send(self.request("GET", url)).await?;
        let challenges = challenges(&resp);
        Ok((resp, challenges))
    }

    /// `HEAD /v2/<name>/manifests/<reference>` with containerd's Accept header.
    ///
    /// # Errors
    /// The registry could not be reached.
    pub async fn head_manifest(
        &mut self,
        name: &str,
        reference: &str,
        bearer: Option<&Secret>,
    ) -> Result<HttpResponse, ProbeError> {
        let url = format!("{}/v2/{name}/manifests/{reference}", self.endpoint.base);
        let mut req = self.request("HEAD", url).header("Accept", MANIFEST_ACCEPT);
        if let Some(token) = bearer {
            req = req.header("Authorization", format!("Bearer {}", token.expose()));
        }
        let resp = self.send(req).await?;
        // A HEAD has no body; the error code (NAME_UNKNOWN vs MANIFEST_UNKNOWN) needs a GET.
        if matches!(resp.status, 401 | 403 | 404) {
            let mut get = self.request(
                "GET",
                format!("{}/v2/{name}/manifests/{reference}", self.endpoint.base),
            );
            get = get.header("Accept", MANIFEST_ACCEPT);
            if let Some(token) = bearer {
                get = get.header("Authorization", format!("Bearer {}", token.expose()));
            }
            get.max_body = 64 << 10;
            if let Ok(full) = self.send(get).await {
                return Ok(full);
            }
        }
        Ok(resp)
    }

    /// A GET with an optional bearer token (catalog, tag lists).
    ///
    /// # Errors
    /// The registry could not be reached.
    pub async fn get(
        &mut self,
        path_and_query: &str,
        bearer: Option<&Secret>,
    ) -> Result<HttpResponse, ProbeError> {
        let mut req = self.request("GET", format!("{}{path_and_query}", self.endpoint.base));
        if let Some(token) = bearer {
            req = req.header("Authorization", format!("Bearer {}", token.expose()));
        }
        self.send(req).await
    }

    /// Ask the challenge's realm for a token for `scope`, as containerd does: with credentials a
    /// POST of the OAuth2 password form first, then GET with Basic on 400/401/404/405; without
    /// credentials an anonymous GET.
    ///
    /// # Errors
    /// The realm could not be reached (its address is in the error).
    pub async fn fetch_token(
        &mut self,
        challenge: &Challenge,
        scope: &str,
        credentials: Option<&Credentials>,
    ) -> Result<TokenReply, ProbeError> {
        let realm = challenge.realm().unwrap_or_default().to_string();
        let service = challenge.service().unwrap_or_default().to_string();
        let query = form_encode(&[("scope", scope), ("service", &service)]);
        let get_url = if realm.contains('?') {
            format!("{realm}&{query}")
        } else {
            format!("{realm}?{query}")
        };
        if let Some(creds) = credentials {
            let mut post = self.request("POST", realm.clone());
            post = post.header("Content-Type", "application/x-www-form-urlencoded");
            // a password grant only issues a token: asking twice is harmless
            post.repeatable = true;
            post.body = form_encode(&[
                ("grant_type", "password"),
                ("username", &creds.username),
                ("password", creds.password.expose()),
                ("service", &service),
                ("scope", scope),
                ("client_id", "containerd-client"),
            ])
            .into_bytes();
            let resp = self.send(post).await?;
            if !matches!(resp.status, 400 | 401 | 404 | 405) {
                return Ok(token_reply("POST", realm, resp));
            }
            let get = self
                .request("GET", get_url.clone())
                .header("Authorization", creds.basic());
            let resp = self.send(get).await?;
            return Ok(token_reply("GET", get_url, resp));
        }
        let resp = self.send(self.request("GET", get_url.clone())).await?;
        Ok(token_reply("GET", get_url, resp))
    }
}

fn token_reply(method: &'static str, request: String, response: HttpResponse) -> TokenReply {
    let mut reply = TokenReply {
        method,
        request,
        token: None,
        claims: None,
        token_problem: None,
        response,
    };
    if reply.response.status != 200 {
        return reply;
    }
    let value: serde_json::Value = match serde_json::from_str(&reply.response.body) {
        Ok(v) => v,
        Err(e) => {
            reply.token_problem = Some(format!(
                "the token answer is not JSON ({})",
                crate::parse::json_error_category(&e)
            ));
            return reply;
        }
    };
    // containerd prefers access_token when both are present
    let token = ["access_token", "token"]
        .iter()
        .find_map(|k| value.get(*k).and_then(|t| t.as_str()))
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        reply.token_problem =
            Some("authorization server did not include a token in the response".to_string());
        return reply;
    };
    match jwt::decode(token) {
        Ok(claims) => reply.claims = Some(claims),
        Err(e) => reply.token_problem = Some(e.to_string()),
    }
    reply.token = Some(Secret::new(token));
    reply
}

/// Every challenge of every `WWW-Authenticate` header (unparseable ones are skipped).
#[must_use]
pub fn challenges(resp: &HttpResponse) -> Vec<Challenge> {
    resp.headers_named("www-authenticate")
        .filter_map(|h| www_auth::parse(h).ok())
        .flatten()
        .collect()
}

/// `application/x-www-form-urlencoded` / query encoding.
#[must_use]
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_scope_like_go() {
        assert_eq!(
            form_encode(&[
                ("scope", "repository:root/gition/backend:pull"),
                ("service", "container_registry")
            ]),
            "scope=repository%3Aroot%2Fgition%2Fbackend%3Apull&service=container_registry"
        );
    }

    #[test]
    fn reads_error_bodies() {
        let e = registry_errors(
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v9"}}]}"#,
        );
        assert_eq!(e[0].code, "MANIFEST_UNKNOWN");
        assert!(registry_errors("not json").is_empty());
        assert!(registry_errors(r#"{"errors":"x"}"#).is_empty());
    }

    fn reply(body: &str) -> TokenReply {
        token_reply(
            "GET",
            "http://r/jwt/auth".into(),
            HttpResponse {
                status: 200,
                headers: Vec::new(),
                body: body.into(),
                body_truncated: false,
                duration_ms: 1,
            },
        )
    }

    #[test]
    fn token_answers() {
        let r = reply(r#"{"token":"not-a-jwt"}"#);
        assert!(r.token.is_some());
        assert!(r.claims.is_none());
        assert!(r.token_problem.is_some_and(|p| !p.contains("not-a-jwt")));
        let r = reply(r#"{"expires_in":300}"#);
        assert_eq!(
            r.token_problem.as_deref(),
            Some("authorization server did not include a token in the response")
        );
        let r = reply("<html>");
        assert!(r.token_problem.is_some_and(|p| p.contains("not JSON")));
    }
}
