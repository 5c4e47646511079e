//! How a registry says who may talk to it: the `WWW-Authenticate` challenge of a 401.
//!
//! A client does not know in advance how a registry authenticates. It asks `GET /v2/`,
//! and a registry that wants credentials answers `401 Unauthorized` with a challenge
//! (RFC 7235, section 4.1):
//!
//! * `Basic realm="..."`: send `Authorization: Basic base64(user:pass)` with every request
//!   (distribution's htpasswd auth);
//! * `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="..."`:
//!   fetch a short-lived token from the realm, for a service and a scope
//!   (`repository:library/busybox:pull`), anonymously or with Basic credentials, then send
//!   `Authorization: Bearer TOKEN` (Docker's "token authentication specification",
//!   distribution's docs/spec/auth/token.md). This is Docker Hub's flow.
//!
//! Nothing here names Docker Hub's auth server: the realm always comes from the challenge.
use base64::Engine as _;

/// One challenge: a scheme and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `basic` or `bearer` (schemes compare case-insensitively, so stored in lowercase).
    pub scheme: String,
    /// `realm`, `service`, `scope`, `error`... (names in lowercase).
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a `WWW-Authenticate` value, which may hold several challenges
/// (`Basic realm="a", Bearer realm="b",service="c"`). Returns an error describing the
/// first thing it cannot read.
pub fn parse_challenges(header: &str) -> Result<Vec<Challenge>, String> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        p.skip_ws_and_commas();
        if p.done() {
            break;
        }
        let scheme = p
            .token()
            .ok_or_else(|| format!("expected an auth scheme at byte {} of {header:?}", p.i))?;
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: Vec::new(),
        };
        // auth-params: name=value pairs separated by commas, until the next scheme.
        loop {
            p.skip_ws_and_commas();
            let save = p.i;
            let Some(name) = p.token() else { break };
            p.skip_ws();
            if !p.eat(b'=') {
                // A token not followed by '=' starts the next challenge.
                p.i = save;
                break;
            }
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted()
                    .ok_or_else(|| format!("unterminated quoted string in {header:?}"))?
            } else {
                p.token()
                    .ok_or_else(|| format!("parameter {name:?} has no value in {header:?}"))?
                    .to_string()
            };
            challenge.params.push((name.to_ascii_lowercase(), value));
        }
        out.push(challenge);
    }
    if out.is_empty() {
        return Err(format!("no challenge in {header:?}"));
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    /// An RFC 7230 token (plus '/' for token68 values such as base64).
    fn token(&mut self) -> Option<&'a str> {
        let start = self.i;
        while let Some(c) = self.peek() {
            let tchar = c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&c);
            if !tchar {
                break;
            }
            self.i += 1;
        }
        (self.i > start).then(|| std::str::from_utf8(&self.s[start..self.i]).unwrap_or(""))
    }
    fn quoted(&mut self) -> Option<String> {
        self.eat(b'"');
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    out.push(self.peek()?);
                    self.i += 1;
                }
                c => out.push(c),
            }
        }
        None
    }
}

/// The challenge we can answer, preferring Bearer (it carries a scope) over Basic.
pub fn choose(challenges: &[Challenge]) -> Option<&Challenge> {
    // exercise(ch05.choose): the bearer challenge if there is one, else the basic one, else None
    challenges
        .iter()
        .find(|c| c.scheme == "bearer")
        .or_else(|| challenges.iter().find(|c| c.scheme == "basic"))
    // end exercise
}

/// Username and password (or an identity token used as a password).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, [REDACTED])", self.username)
    }
}

impl Credentials {
    /// `user:pass` in base64, the form both `Authorization: Basic` and Docker's
    /// `config.json` use (RFC 7617).
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password))
    }

    /// The reverse of [`Credentials::encode`]; the password is everything after the first ':'.
    pub fn decode(auth: &str) -> Result<Credentials, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| format!("the auth value is not base64: {e}"))?;
        let text = String::from_utf8(bytes).map_err(|_| "the auth value is not UTF-8")?;
        let (u, p) = text
            .split_once(':')
            .ok_or("the auth value is not user:password")?;
        Ok(Credentials {
            username: u.to_string(),
            password: p.to_string(),
        })
    }

    /// The `Authorization` header value for Basic auth.
    pub fn basic_header(&self) -> String {
        format!("Basic {}", self.encode())
    }
}

/// A token scope (token.md, "Requesting a Token"): `repository:NAME:ACTIONS`.
pub fn scope(repository: &str, actions: &[&str]) -> String {
    format!("repository:{repository}:{}", actions.join(","))
}

/// The token request URL: the realm with `service` and one `scope` parameter per scope
/// (token.md: "scope ... may be given multiple times"). `account` names the user, as
/// docker sends it when logging in.
pub fn token_url(
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    account: Option<&str>,
) -> String {
    let mut params: Vec<(&str, &str)> = Vec::new();
    if let Some(a) = account {
        params.push(("account", a));
    }
    if let Some(s) = service {
        params.push(("service", s));
    }
    for s in scopes {
        params.push(("scope", s));
    }
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    if query.is_empty() {
        return realm.to_string();
    }
    let sep = if realm.contains('?') { '&' } else { '?' };
    format!("{realm}{sep}{}", query.join("&"))
}

/// Percent-encodes a query value: everything but RFC 3986's unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A token endpoint's answer: `token` (Docker's field) or `access_token` (OAuth2's); the
/// spec says a client must accept either.
#[derive(Debug, serde::Deserialize)]
pub struct TokenResponse {
    /// The token.
    #[serde(default)]
    pub token: Option<String>,
    /// The same, OAuth2 style.
    #[serde(default)]
    pub access_token: Option<String>,
}

impl TokenResponse {
    /// Whichever of the two was sent.
    pub fn into_token(self) -> Option<String> {
        self.token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn challenges_as_registries_send_them() {
        let cases: Vec<(&str, Vec<Challenge>)> = vec![
            (
                // Docker Hub, exactly
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
                vec![Challenge {
                    scheme: "bearer".into(),
                    params: p(&[
                        ("realm", "https://auth.docker.io/token"),
                        ("service", "registry.docker.io"),
                        ("scope", "repository:library/busybox:pull"),
                    ]),
                }],
            ),
            (
                // distribution's htpasswd
                r#"Basic realm="peers-registry""#,
                vec![Challenge {
                    scheme: "basic".into(),
                    params: p(&[("realm", "peers-registry")]),
                }],
            ),
            (
                // an expired token, with the error and a two-action scope
                r#"Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull,push",error="invalid_token""#,
                vec![Challenge {
                    scheme: "bearer".into(),
                    params: p(&[
                        ("realm", "http://127.0.0.1:1/token"),
                        ("service", "reg"),
                        ("scope", "repository:a/b:pull,push"),
                        ("error", "invalid_token"),
                    ]),
                }],
            ),
            (
                // two challenges, spaces, an unquoted value and an escaped quote
                r#"Basic realm="a \"b\"" , BEARER Realm=tok,service="s""#,
                vec![
                    Challenge {
                        scheme: "basic".into(),
                        params: p(&[("realm", "a \"b\"")]),
                    },
                    Challenge {
                        scheme: "bearer".into(),
                        params: p(&[("realm", "tok"), ("service", "s")]),
                    },
                ],
            ),
        ];
        for (header, want) in cases {
            assert_eq!(parse_challenges(header).unwrap(), want, "{header}");
        }
        assert!(parse_challenges("").is_err());
        assert!(parse_challenges(r#"Bearer realm="open"#).is_err());
    }

    #[test]
    fn bearer_is_preferred() {
        let c = parse_challenges(r#"Basic realm="a", Bearer realm="b""#).unwrap();
        assert_eq!(choose(&c).unwrap().scheme, "bearer");
        let c = parse_challenges(r#"Negotiate, Basic realm="a""#).unwrap();
        assert_eq!(choose(&c).unwrap().scheme, "basic");
        let c = parse_challenges("Negotiate").unwrap();
        assert!(choose(&c).is_none(), "no scheme we can answer");
    }

    #[test]
    fn token_urls_carry_service_and_scopes() {
        let scopes = vec![
            scope("library/busybox", &["pull"]),
            scope("a/b", &["pull", "push"]),
        ];
        assert_eq!(
            token_url(
                "https://auth.docker.io/token",
                Some("registry.docker.io"),
                &scopes,
                None
            ),
            "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Fbusybox%3Apull&scope=repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(
            token_url("http://t/token?x=1", None, &[], Some("me")),
            "http://t/token?x=1&account=me"
        );
    }

    #[test]
    fn credentials_encode_as_docker_does() {
        let c = Credentials {
            username: "peers".into(),
            password: "peers:secret".into(),
        };
        assert_eq!(c.encode(), "cGVlcnM6cGVlcnM6c2VjcmV0");
        assert_eq!(Credentials::decode("cGVlcnM6cGVlcnM6c2VjcmV0").unwrap(), c);
        assert!(Credentials::decode("!!").is_err());
        assert!(Credentials::decode("bm9jb2xvbg==").is_err()); // "nocolon"
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn token_answers_in_either_field() {
        let a: TokenResponse = serde_json::from_str(r#"{"token":"t1"}"#).unwrap();
        let b: TokenResponse =
            serde_json::from_str(r#"{"access_token":"t2","expires_in":60}"#).unwrap();
        assert_eq!(a.into_token().as_deref(), Some("t1"));
        assert_eq!(b.into_token().as_deref(), Some("t2"));
    }
}
