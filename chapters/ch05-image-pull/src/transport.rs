//! The seam between the chapter and the network: one HTTP request in, one response out.
//!
//! This chapter's lesson is a conversation: `GET /v2/`, a 401 with a challenge, a token,
//! a manifest, blobs. Every request goes through the [`Transport`] trait, for the same
//! reasons chapter 1 routes system calls through `Sys`:
//!
//! * `--trace` ([`Http::new`] with `trace`) prints each request line and the response
//!   status with the headers that drive the protocol (`WWW-Authenticate`, `Location`,
//!   `Docker-Content-Digest`...), so a learner sees the conversation behind `pull`;
//! * unit tests swap in [`Scripted`], which answers from a list and records what was
//!   asked, so the *order* of the conversation is tested without a registry.
//!
//! Bodies stream both ways: a response body is a reader (a layer is never held in memory)
//! and a request body can be a reader with a known length (an upload).
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read};
use std::sync::Mutex;
use std::time::Duration;

/// An HTTP method the registry API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Read.
    Get,
    /// Does it exist (and how big is it)?
    Head,
    /// Start an upload or mount a blob.
    Post,
    /// Finish an upload, store a manifest.
    Put,
    /// Send a chunk of an upload.
    Patch,
    /// Remove.
    Delete,
}

impl Method {
    /// `GET`, `HEAD`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request body.
pub enum Body {
    /// No body.
    Empty,
    /// Small, in memory (a manifest, a token request).
    Bytes(Vec<u8>),
    /// Streamed from a reader that yields exactly `len` bytes (a blob upload).
    Stream {
        /// Where the bytes come from.
        reader: Box<dyn Read + Send>,
        /// How many (sent as `Content-Length`).
        len: u64,
    },
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => write!(f, "Empty"),
            Body::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Body::Stream { len, .. } => write!(f, "Stream({len} bytes)"),
        }
    }
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::Stream { len, .. } => *len,
        }
    }
}

/// One request.
#[derive(Debug)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The absolute URL.
    pub url: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
}

impl Request {
    /// A request without headers or body.
    pub fn new(method: Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Request {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: Body) -> Request {
        self.body = body;
        self
    }

    /// The value of a header (names compare case-insensitively).
    pub fn get_header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// One response: status, headers (names in lowercase) and a streaming body.
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers with lowercase names, in order.
    pub headers: Vec<(String, String)>,
    /// The body, read as it arrives.
    pub body: Box<dyn Read + Send>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// The value of a header (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Every value of a header (`WWW-Authenticate` may come more than once).
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Content-Length`, if the server sent one.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length").and_then(|v| v.parse().ok())
    }

    /// Reads a small body (a manifest, a token, an error) into memory, refusing more than
    /// `limit` bytes: a registry must not make us allocate without bound.
    pub fn read_small(self, limit: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.body.take(limit + 1).read_to_end(&mut out)?;
        if out.len() as u64 > limit {
            return Err(io::Error::other(format!(
                "the response body is larger than {limit} bytes"
            )));
        }
        Ok(out)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A request that got no HTTP answer at all: the registry is down, the name does not
/// resolve, the connection broke. Displays as `GET http://127.0.0.1:1/v2/: connection refused`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{method} {url}: {message}")]
pub struct TransportError {
    /// The method.
    pub method: Method,
    /// The URL.
    pub url: String,
    /// What went wrong.
    pub message: String,
    /// Worth trying again (a timeout, a reset connection), as opposed to a refused one or a
    /// bad URL.
    pub transient: bool,
}

/// Sends requests. [`Http`] talks to real servers; [`Scripted`] answers from a script.
pub trait Transport: fmt::Debug + Send + Sync {
    /// Sends `request` and returns the response, whatever its status. Redirects are *not*
    /// followed here: the registry client does it, because it must decide which headers
    /// go along (see `registry::Client::get_blob`).
    fn send(&self, request: Request) -> Result<Response, TransportError>;
}

/// The real transport: ureq 3 (rustls for https), optionally tracing to stderr. A
/// registry with a `certs.d` directory (see [`crate::tls`]) gets an agent of its own,
/// with its certificates.
#[derive(Debug)]
pub struct Http {
    agent: ureq::Agent,
    trace: bool,
    by_registry: std::sync::Mutex<std::collections::HashMap<String, ureq::Agent>>,
}

impl Http {
    /// A transport; with `trace`, each request and response is printed on stderr.
    pub fn new(trace: bool) -> Http {
        Http {
            agent: Self::agent_with(None),
            trace,
            by_registry: Default::default(),
        }
    }

    fn agent_with(tls: Option<ureq::tls::TlsConfig>) -> ureq::Agent {
        let mut config = ureq::Agent::config_builder()
            // A 404 or a 401 is an answer the protocol reads, not an error.
            .http_status_as_error(false)
            // We follow redirects ourselves (see Transport::send).
            .max_redirects(0)
            .user_agent(concat!("mini-docker-ch05/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(10)))
            // Per read, not per call: a big layer may take minutes, a stalled one must not.
            .timeout_per_read(Some(Duration::from_secs(60)));
        if let Some(tls) = tls {
            config = config.tls_config(tls);
        }
        config.build().new_agent()
    }

    /// The agent for `url`: the common one, or for an https registry with a `certs.d`
    /// directory, one with its certificates (made once).
    fn agent_for(&self, url: &str) -> Result<ureq::Agent, String> {
        let Some(authority) = url
            .strip_prefix("https://")
            .and_then(|rest| rest.split('/').next())
        else {
            return Ok(self.agent.clone());
        };
        let Some(dir) = crate::tls::certs_dir(authority) else {
            return Ok(self.agent.clone());
        };
        let mut agents = self.by_registry.lock().expect("not poisoned");
        if let Some(a) = agents.get(authority) {
            return Ok(a.clone());
        }
        let agent = Self::agent_with(Some(crate::tls::config_from(&dir)?));
        agents.insert(authority.to_string(), agent.clone());
        Ok(agent)
    }
}

/// Headers worth showing in a trace: the ones the registry protocol reads.
const TRACED: &[&str] = &[
    "www-authenticate",
    "location",
    "docker-content-digest",
    "content-type",
    "content-length",
    "range",
    "docker-upload-uuid",
];

/// One trace line for a request: `> GET http://... (accept: ..., authorization: Bearer [REDACTED])`.
pub fn trace_request(request: &Request) -> String {
    let mut shown = Vec::new();
    for (k, v) in &request.headers {
        let v = if k.eq_ignore_ascii_case("authorization") {
            // The scheme helps a learner; the secret must not reach a terminal or a log.
            format!("{} [REDACTED]", v.split(' ').next().unwrap_or(""))
        } else {
            v.clone()
        };
        shown.push(format!("{}: {v}", k.to_ascii_lowercase()));
    }
    if !matches!(request.body, Body::Empty) {
        shown.push(format!("body: {} bytes", request.body.len()));
    }
    let mut line = format!("> {} {}", request.method, request.url);
    if !shown.is_empty() {
        line.push_str(&format!(" ({})", shown.join(", ")));
    }
    line
}

/// One trace line for a response: `< 401 Unauthorized (www-authenticate: Basic realm="x")`.
pub fn trace_response(status: u16, headers: &[(String, String)]) -> String {
    let reason = http_reason(status);
    // In a fixed order (servers send headers in any order), so traces compare.
    let shown: Vec<String> = TRACED
        .iter()
        .flat_map(|name| {
            headers
                .iter()
                .filter(move |(k, _)| k == name)
                .map(|(k, v)| format!("{k}: {v}"))
        })
        .collect();
    let mut line = format!("< {status} {reason}");
    if !shown.is_empty() {
        line.push_str(&format!(" ({})", shown.join(", ")));
    }
    line
}

/// The standard reason phrase of the statuses a registry uses.
pub fn http_reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

fn describe_ureq_error(err: &ureq::Error) -> (String, bool) {
    use ureq::Error as E;
    match err {
        E::Io(e) => {
            let transient = !matches!(e.kind(), io::ErrorKind::ConnectionRefused);
            let msg = match e.kind() {
                io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                _ => e.to_string(),
            };
            (msg, transient)
        }
        E::Timeout(t) => (format!("timed out ({t})"), true),
        E::HostNotFound => ("host not found".to_string(), false),
        E::ConnectionFailed => ("connection failed".to_string(), true),
        other => (other.to_string(), false),
    }
}

impl Transport for Http {
    fn send(&self, request: Request) -> Result<Response, TransportError> {
        if self.trace {
            eprintln!("{}", trace_request(&request));
        }
        let fail = |err: ureq::Error| {
            let (message, transient) = describe_ureq_error(&err);
            TransportError {
                method: request.method,
                url: request.url.clone(),
                message,
                transient,
            }
        };
        let agent = self
            .agent_for(&request.url)
            .map_err(|message| TransportError {
                method: request.method,
                url: request.url.clone(),
                message,
                transient: false,
            })?;
        let mut builder = ureq::http::Request::builder()
            .method(request.method.as_str())
            .uri(&request.url);
        for (k, v) in &request.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let method = request.method;
        let url = request.url.clone();
        let result = match request.body {
            Body::Empty => builder
                .body(())
                .map_err(|e| fail(e.into()))
                .and_then(|r| agent.run(r).map_err(fail)),
            Body::Bytes(bytes) => builder
                .body(bytes)
                .map_err(|e| fail(e.into()))
                .and_then(|r| agent.run(r).map_err(fail)),
            Body::Stream { reader, len } => builder
                // Our length wins over chunked encoding (ureq-proto honours a user's
                // Content-Length): registries want to know the size up front.
                .header("content-length", len.to_string())
                .body(ureq::SendBody::from_owned_reader(reader))
                .map_err(|e| fail(e.into()))
                .and_then(|r| agent.run(r).map_err(fail)),
        };
        let response = result?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        if self.trace {
            eprintln!("{}", trace_response(status, &headers));
        }
        let body = response.into_body().into_reader();
        let _ = (method, url);
        Ok(Response {
            status,
            headers,
            body: Box::new(body),
        })
    }
}

// ------------------------------------------------------------------------------------------
// The fake, for unit tests of the conversation's order.
// ------------------------------------------------------------------------------------------

/// What a [`Scripted`] transport answers: status, headers and body.
#[derive(Debug, Clone)]
pub struct Canned {
    /// `GET http://...`: the request it answers must have this method and URL (a `*` at the
    /// end matches any rest, for URLs with generated parts).
    pub expect: String,
    /// The status.
    pub status: u16,
    /// The headers (lowercase names).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Canned {
    /// An answer to `expect` (`"GET http://reg/v2/"`).
    pub fn new(expect: &str, status: u16) -> Canned {
        Canned {
            expect: expect.to_string(),
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// With a header.
    pub fn header(mut self, name: &str, value: &str) -> Canned {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// With a body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Canned {
        self.body = body.into();
        self
    }
}

/// A request as [`Scripted`] saw it: the trace line (credentials redacted) plus the
/// `Authorization` header in full, for tests that check what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `> GET http://... (headers)`.
    pub line: String,
    /// The Authorization header, if any.
    pub authorization: Option<String>,
    /// The body, if it was small or streamed (read in full).
    pub body: Vec<u8>,
}

/// A transport for unit tests: answers each request with the next [`Canned`] response,
/// after checking that it is the request the script expects, and records every request.
#[derive(Debug, Default)]
pub struct Scripted {
    script: Mutex<VecDeque<Canned>>,
    seen: Mutex<Vec<Seen>>,
}

impl Scripted {
    /// A transport that will answer with these, in order.
    pub fn new(script: Vec<Canned>) -> Scripted {
        Scripted {
            script: Mutex::new(script.into()),
            seen: Mutex::new(Vec::new()),
        }
    }

    /// The requests made so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("not poisoned").clone()
    }

    /// The request lines made so far (`> GET http://...`).
    pub fn lines(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.line).collect()
    }

    /// True when every canned answer was used.
    pub fn finished(&self) -> bool {
        self.script.lock().expect("not poisoned").is_empty()
    }
}

impl Transport for Scripted {
    fn send(&self, request: Request) -> Result<Response, TransportError> {
        let line = trace_request(&request);
        let authorization = request.get_header("authorization").map(str::to_string);
        let target = format!("{} {}", request.method, request.url);
        let body = match request.body {
            Body::Empty => Vec::new(),
            Body::Bytes(b) => b,
            Body::Stream { mut reader, .. } => {
                let mut v = Vec::new();
                reader.read_to_end(&mut v).map_err(|e| TransportError {
                    method: request.method,
                    url: request.url.clone(),
                    message: e.to_string(),
                    transient: false,
                })?;
                v
            }
        };
        self.seen.lock().expect("not poisoned").push(Seen {
            line,
            authorization,
            body,
        });
        let next = self.script.lock().expect("not poisoned").pop_front();
        let Some(canned) = next else {
            return Err(TransportError {
                method: request.method,
                url: request.url,
                message: "the script has no answer left for this request".into(),
                transient: false,
            });
        };
        let matches = match canned.expect.strip_suffix('*') {
            Some(prefix) => target.starts_with(prefix),
            None => target == canned.expect,
        };
        if !matches {
            return Err(TransportError {
                method: request.method,
                url: request.url,
                message: format!("the script expected {:?} here", canned.expect),
                transient: false,
            });
        }
        Ok(Response {
            status: canned.status,
            headers: canned.headers,
            body: Box::new(io::Cursor::new(canned.body)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_hide_credentials_and_show_protocol_headers() {
        let r = Request::new(Method::Get, "http://r/v2/")
            .header("Authorization", "Bearer secret-token")
            .header("Accept", "application/json");
        assert_eq!(
            trace_request(&r),
            "> GET http://r/v2/ (authorization: Bearer [REDACTED], accept: application/json)"
        );
        let h = vec![
            ("www-authenticate".into(), "Basic realm=\"r\"".into()),
            ("date".into(), "today".into()),
        ];
        assert_eq!(
            trace_response(401, &h),
            "< 401 Unauthorized (www-authenticate: Basic realm=\"r\")"
        );
    }

    #[test]
    fn small_bodies_are_bounded() {
        let r = Response {
            status: 200,
            headers: vec![],
            body: Box::new(io::Cursor::new(vec![0u8; 10])),
        };
        assert!(r.read_small(9).is_err());
    }
}
