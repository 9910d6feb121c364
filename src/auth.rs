//! Authentication against the FHIR server: none, HTTP Basic, a static bearer token,
//! OAuth2 client credentials (`client_secret_basic` or `client_secret_post`) and SMART Backend Services
//! (`client_credentials` with a `private_key_jwt` assertion).
//!
//! Secrets are read from environment variables or files when [`Auth`] is built (so a
//! missing secret is a start-up error), never from the config file itself, and they are
//! kept in [`Secret`], whose `Debug`, `Display` and `Serialize` print `[redacted]`.
//! Tokens are cached, refreshed a margin before they expire, and fetched once for all
//! concurrent callers.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize, Serializer};
use url::Url;

/// How long a token request may take before it fails (callers queue behind it).
const TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Lifetime assumed when a token response has no `expires_in` (SMART caps tokens at 5 min).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
/// Lifetime of a client assertion: SMART allows at most 5 minutes; one is kept for clock skew.
const ASSERTION_LIFETIME_SECS: u64 = 240;
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest server-provided error text copied into an [`AuthError`].
const MAX_SERVER_TEXT: usize = 300;

fn default_refresh_margin_secs() -> u64 {
    60
}

/// A secret value (password, token, private key). It prints as `[redacted]` everywhere
/// (`Debug`, `Display`, `Serialize`); only [`Secret::expose`] gives the value.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself: use it only to build a request, never to print.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

/// How an OAuth2 client sends its secret to the token endpoint (RFC 6749
/// §2.3.1). Identity providers accept one or both; `basic` is the default the
/// RFC says servers must support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientSecretMethod {
    /// `client_secret_basic`: in an HTTP Basic Authorization header.
    #[default]
    Basic,
    /// `client_secret_post`: as `client_id` and `client_secret` form fields.
    Post,
}

/// Signing algorithm of a SMART Backend Services client assertion (the two SMART requires).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum SigningAlg {
    RS384,
    ES384,
}

impl From<SigningAlg> for jsonwebtoken::Algorithm {
    fn from(alg: SigningAlg) -> jsonwebtoken::Algorithm {
        match alg {
            SigningAlg::RS384 => jsonwebtoken::Algorithm::RS384,
            SigningAlg::ES384 => jsonwebtoken::Algorithm::ES384,
        }
    }
}

/// The `[auth]` table of the config file. It names where secrets live (`*_env`: an
/// environment variable, `*_file`: a file whose content, trailing newline removed, is the
/// secret) and never holds a secret itself, so printing it cannot leak one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// No Authorization header.
    #[default]
    None,
    /// HTTP Basic: `username` plus a password from `password_env` or `password_file`.
    Basic {
        username: String,
        password_env: Option<String>,
        password_file: Option<PathBuf>,
    },
    /// A static bearer token from `token_env` or `token_file`. A file is re-read after the
    /// server answers 401, so a token rotated on disk is picked up without a restart.
    Bearer {
        token_env: Option<String>,
        token_file: Option<PathBuf>,
    },
    /// OAuth2 client credentials grant, client authenticated with its secret
    /// (`client_secret_basic` unless `client_auth = "post"`).
    ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret_env: Option<String>,
        client_secret_file: Option<PathBuf>,
        #[serde(default)]
        client_auth: ClientSecretMethod,
        scope: Option<String>,
        #[serde(default = "default_refresh_margin_secs")]
        refresh_margin_secs: u64,
    },
    /// SMART Backend Services: client credentials grant with a signed JWT assertion.
    /// `token_url` defaults to the one in `<FHIR base>/.well-known/smart-configuration`.
    SmartBackend {
        token_url: Option<String>,
        client_id: String,
        private_key_file: Option<PathBuf>,
        private_key_env: Option<String>,
        alg: SigningAlg,
        kid: String,
        scope: String,
        #[serde(default = "default_refresh_margin_secs")]
        refresh_margin_secs: u64,
    },
}

impl AuthConfig {
    /// The OAuth2 scopes requested, for the types that request any.
    pub fn scope(&self) -> Option<&str> {
        match self {
            AuthConfig::ClientCredentials { scope, .. } => scope.as_deref(),
            AuthConfig::SmartBackend { scope, .. } => Some(scope),
            AuthConfig::None | AuthConfig::Basic { .. } | AuthConfig::Bearer { .. } => None,
        }
    }
}

/// Why no Authorization header could be produced. Messages name config keys, files,
/// variables and URLs, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("auth.{key}: {message}")]
    Config { key: &'static str, message: String },
    #[error("auth.{key}: cannot read {path}: {source}")]
    ReadSecret {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot fetch SMART configuration {url}: {message}")]
    Discovery { url: String, message: String },
    #[error("token request to {url} failed: {source}")]
    TokenRequest { url: String, source: reqwest::Error },
    #[error("token endpoint {url} refused the request (HTTP {status}): {error}{}",
            description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    TokenRefused {
        url: String,
        status: u16,
        error: String,
        description: Option<String>,
    },
    #[error("token endpoint {url} sent an unusable answer: {message}")]
    TokenResponse { url: String, message: String },
    #[error("cannot sign the client assertion: {0}")]
    Sign(jsonwebtoken::errors::Error),
    /// A failed fetch, as seen by every caller that waited for it.
    #[error(transparent)]
    Shared(Arc<AuthError>),
}

impl AuthError {
    /// The failure itself, looking through [`AuthError::Shared`].
    pub fn cause(&self) -> &AuthError {
        match self {
            AuthError::Shared(inner) => inner.cause(),
            other => other,
        }
    }
}

/// Builds and caches the Authorization header. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    flow: Flow,
    /// The current header; a std mutex because it is never held across an await.
    cached: Mutex<Option<Cached>>,
    /// Serialises fetches so concurrent callers share one token request; holds the
    /// error of the last fetch so that callers who waited for it do not each retry.
    fetch: tokio::sync::Mutex<Option<Arc<AuthError>>>,
    /// Number of fetches finished, to tell whether one ended while a caller waited.
    fetches: AtomicU64,
}

#[derive(Clone)]
struct Cached {
    header: HeaderValue,
    /// After this instant a new token is fetched (None: never, for static credentials).
    refresh_at: Option<Instant>,
    /// Until this instant the token may still be used if a refresh fails.
    expires_at: Option<Instant>,
}

enum Flow {
    None,
    Static(StaticCredential),
    Token(Box<TokenFlow>),
}

/// A credential sent as is; read again after the server rejected it.
enum StaticCredential {
    Basic {
        username: String,
        password: SecretSource,
    },
    Bearer {
        token: SecretSource,
    },
}

/// Where a secret is read from; re-read when a static credential was rejected.
enum SecretSource {
    Env { key: &'static str, var: String },
    File { key: &'static str, path: PathBuf },
}

struct TokenFlow {
    http: reqwest::Client,
    endpoint: TokenEndpoint,
    client: ClientAuth,
    scope: Option<String>,
    refresh_margin: Duration,
}

enum TokenEndpoint {
    Fixed(Url),
    Discovered {
        smart_configuration: Url,
        resolved: tokio::sync::OnceCell<Url>,
    },
}

enum ClientAuth {
    Secret {
        client_id: String,
        secret: Secret,
        method: ClientSecretMethod,
    },
    PrivateKeyJwt {
        client_id: String,
        key: jsonwebtoken::EncodingKey,
        alg: SigningAlg,
        kid: String,
    },
}

impl Auth {
    /// Builds the authenticator, reading secrets and keys now. SMART discovery needs
    /// the FHIR base URL: use [`Auth::for_server`] when `token_url` may be unset.
    pub fn new(config: &AuthConfig, http: reqwest::Client) -> Result<Auth, AuthError> {
        Auth::build(config, None, http)
    }

    /// Like [`Auth::new`], with the FHIR base URL used to discover a SMART token endpoint.
    pub fn for_server(
        config: &AuthConfig,
        fhir_base_url: &str,
        http: reqwest::Client,
    ) -> Result<Auth, AuthError> {
        Auth::build(config, Some(fhir_base_url), http)
    }

    fn build(
        config: &AuthConfig,
        fhir_base_url: Option<&str>,
        http: reqwest::Client,
    ) -> Result<Auth, AuthError> {
        let flow = match config {
            AuthConfig::None => Flow::None,
            AuthConfig::Basic {
                username,
                password_env,
                password_file,
            } => {
                if username.is_empty() || username.contains(':') {
                    return Err(config_error(
                        "username",
                        "must be non-empty and contain no ':'",
                    ));
                }
                Flow::Static(StaticCredential::Basic {
                    username: username.clone(),
                    password: SecretSource::choose(
                        ("password_env", "password_file"),
                        password_env,
                        password_file,
                    )?,
                })
            }
            AuthConfig::Bearer {
                token_env,
                token_file,
            } => Flow::Static(StaticCredential::Bearer {
                token: SecretSource::choose(("token_env", "token_file"), token_env, token_file)?,
            }),
            AuthConfig::ClientCredentials {
                token_url,
                client_id,
                client_secret_env,
                client_secret_file,
                client_auth,
                scope,
                refresh_margin_secs,
            } => {
                let secret = SecretSource::choose(
                    ("client_secret_env", "client_secret_file"),
                    client_secret_env,
                    client_secret_file,
                )?
                .read()?;
                Flow::Token(Box::new(TokenFlow {
                    http,
                    endpoint: TokenEndpoint::Fixed(parse_endpoint("token_url", token_url)?),
                    client: ClientAuth::Secret {
                        client_id: non_empty("client_id", client_id)?,
                        secret,
                        method: *client_auth,
                    },
                    scope: scope.clone().filter(|s| !s.trim().is_empty()),
                    refresh_margin: Duration::from_secs(*refresh_margin_secs),
                }))
            }
            AuthConfig::SmartBackend {
                token_url,
                client_id,
                private_key_file,
                private_key_env,
                alg,
                kid,
                scope,
                refresh_margin_secs,
            } => {
                let endpoint = match (token_url, fhir_base_url) {
                    (Some(url), _) => TokenEndpoint::Fixed(parse_endpoint("token_url", url)?),
                    (None, Some(base)) => TokenEndpoint::Discovered {
                        smart_configuration: smart_configuration_url(base)?,
                        resolved: tokio::sync::OnceCell::new(),
                    },
                    (None, None) => {
                        return Err(config_error(
                            "token_url",
                            "not set, and no FHIR base URL was given to discover it",
                        ));
                    }
                };
                let key_source = SecretSource::choose(
                    ("private_key_env", "private_key_file"),
                    private_key_env,
                    private_key_file,
                )?;
                let pem = key_source.read()?;
                Flow::Token(Box::new(TokenFlow {
                    http,
                    endpoint,
                    client: ClientAuth::PrivateKeyJwt {
                        client_id: non_empty("client_id", client_id)?,
                        key: signing_key(*alg, &pem, key_source.key())?,
                        alg: *alg,
                        kid: non_empty("kid", kid)?,
                    },
                    scope: Some(non_empty("scope", scope)?),
                    refresh_margin: Duration::from_secs(*refresh_margin_secs),
                }))
            }
        };
        let auth = Auth {
            inner: Arc::new(Inner {
                flow,
                cached: Mutex::new(None),
                fetch: tokio::sync::Mutex::new(None),
                fetches: AtomicU64::new(0),
            }),
        };
        // Static credentials are read now so that a missing secret fails at start-up.
        if let Flow::Static(credential) = &auth.inner.flow {
            auth.store(credential.read()?);
        }
        Ok(auth)
    }

    /// The Authorization header to send, fetching or refreshing a token when needed
    /// (a margin before expiry). `None` when auth is off.
    pub async fn header(&self) -> Result<Option<HeaderValue>, AuthError> {
        if matches!(self.inner.flow, Flow::None) {
            return Ok(None);
        }
        if let Some(header) = self.fresh() {
            return Ok(Some(header));
        }
        let fetches_before = self.inner.fetches.load(Ordering::Acquire);
        let mut last_error = self.inner.fetch.lock().await;
        // Another caller may have fetched while this one waited: share its token, or its
        // failure (rather than queueing one more request to an endpoint that just failed).
        if let Some(header) = self.fresh() {
            return Ok(Some(header));
        }
        if self.inner.fetches.load(Ordering::Acquire) != fetches_before
            && let Some(error) = last_error.as_ref()
        {
            return self
                .still_valid()
                .map(Some)
                .ok_or_else(|| AuthError::Shared(error.clone()));
        }
        let fetched = match &self.inner.flow {
            Flow::None => return Ok(None),
            Flow::Static(credential) => credential.read(),
            Flow::Token(token_flow) => token_flow.fetch().await,
        };
        let outcome = match fetched {
            Ok(cached) => {
                let header = cached.header.clone();
                self.store(cached);
                *last_error = None;
                Ok(Some(header))
            }
            Err(error) => {
                let error = Arc::new(error);
                *last_error = Some(error.clone());
                match self.still_valid() {
                    Some(header) => {
                        tracing::warn!(%error, "token refresh failed; using the current token until it expires");
                        Ok(Some(header))
                    }
                    None => Err(AuthError::Shared(error)),
                }
            }
        };
        self.inner.fetches.fetch_add(1, Ordering::Release);
        outcome
    }

    /// Forgets the cached token (the server answered 401): the next [`Auth::header`]
    /// fetches a new token, or re-reads a static credential.
    pub fn invalidate(&self) {
        *self.lock_cache() = None;
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        self.inner
            .cached
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn store(&self, cached: Cached) {
        *self.lock_cache() = Some(cached);
    }

    fn fresh(&self) -> Option<HeaderValue> {
        let now = Instant::now();
        self.lock_cache()
            .as_ref()
            .filter(|c| c.refresh_at.is_none_or(|at| now < at))
            .map(|c| c.header.clone())
    }

    fn still_valid(&self) -> Option<HeaderValue> {
        let now = Instant::now();
        self.lock_cache()
            .as_ref()
            .filter(|c| c.expires_at.is_some_and(|at| now < at))
            .map(|c| c.header.clone())
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Auth");
        match &self.inner.flow {
            Flow::None => out.field("type", &"none"),
            Flow::Static(StaticCredential::Basic { username, .. }) => out
                .field("type", &"basic")
                .field("username", username)
                .field("password", &"[redacted]"),
            Flow::Static(StaticCredential::Bearer { .. }) => {
                out.field("type", &"bearer").field("token", &"[redacted]")
            }
            Flow::Token(token_flow) => {
                let endpoint = match &token_flow.endpoint {
                    TokenEndpoint::Fixed(url) => url.as_str(),
                    TokenEndpoint::Discovered {
                        smart_configuration,
                        ..
                    } => smart_configuration.as_str(),
                };
                let (kind, client_id) = match &token_flow.client {
                    ClientAuth::Secret { client_id, .. } => ("client_credentials", client_id),
                    ClientAuth::PrivateKeyJwt { client_id, .. } => ("smart_backend", client_id),
                };
                out.field("type", &kind)
                    .field("endpoint", &endpoint)
                    .field("client_id", client_id)
                    .field("credential", &"[redacted]")
            }
        };
        out.finish_non_exhaustive()
    }
}

impl StaticCredential {
    /// Reads the secret from its source and builds the header (no expiry).
    fn read(&self) -> Result<Cached, AuthError> {
        let (source, value) = match self {
            StaticCredential::Basic { username, password } => {
                let secret = password.read()?;
                let pair = format!("{username}:{}", secret.expose());
                (password, format!("Basic {}", BASE64.encode(pair)))
            }
            StaticCredential::Bearer { token } => {
                (token, format!("Bearer {}", token.read()?.expose()))
            }
        };
        let header = sensitive_header(&value).ok_or_else(|| {
            config_error(
                source.key(),
                "the secret contains characters not allowed in an HTTP header",
            )
        })?;
        Ok(Cached {
            header,
            refresh_at: None,
            expires_at: None,
        })
    }
}

impl SecretSource {
    /// Exactly one of the two keys (`<name>_env`, `<name>_file`) must be set.
    fn choose(
        (env_key, file_key): (&'static str, &'static str),
        env: &Option<String>,
        file: &Option<PathBuf>,
    ) -> Result<SecretSource, AuthError> {
        match (env, file) {
            (Some(var), None) => Ok(SecretSource::Env {
                key: env_key,
                var: var.clone(),
            }),
            (None, Some(path)) => Ok(SecretSource::File {
                key: file_key,
                path: path.clone(),
            }),
            _ => Err(config_error(
                env_key,
                &format!("set exactly one of auth.{env_key} and auth.{file_key}"),
            )),
        }
    }

    /// The config key that names this source, for error messages.
    fn key(&self) -> &'static str {
        match self {
            SecretSource::Env { key, .. } | SecretSource::File { key, .. } => key,
        }
    }

    fn read(&self) -> Result<Secret, AuthError> {
        let (key, value) = match self {
            SecretSource::Env { key, var } => match std::env::var(var) {
                Ok(value) => (*key, value),
                Err(_) => {
                    return Err(config_error(
                        key,
                        &format!("environment variable {var} is not set or not UTF-8"),
                    ));
                }
            },
            SecretSource::File { key, path } => match std::fs::read_to_string(path) {
                Ok(value) => (*key, value),
                Err(source) => {
                    return Err(AuthError::ReadSecret {
                        key,
                        path: path.clone(),
                        source,
                    });
                }
            },
        };
        let value = value.trim_end_matches(['\r', '\n']);
        if value.is_empty() {
            return Err(config_error(key, "the secret is empty"));
        }
        Ok(Secret::new(value))
    }
}

fn config_error(key: &'static str, message: &str) -> AuthError {
    AuthError::Config {
        key,
        message: message.to_owned(),
    }
}

fn non_empty(key: &'static str, value: &str) -> Result<String, AuthError> {
    if value.trim().is_empty() {
        return Err(config_error(key, "must not be empty"));
    }
    Ok(value.to_owned())
}

/// A header value marked sensitive (HTTP/2 never indexes it; reqwest hides it in Debug).
fn sensitive_header(value: &str) -> Option<HeaderValue> {
    let mut header = HeaderValue::from_str(value).ok()?;
    header.set_sensitive(true);
    Some(header)
}

/// Credentials may only travel over TLS, or in the clear to this machine (tests, sidecars).
fn parse_endpoint(key: &'static str, value: &str) -> Result<Url, AuthError> {
    let url = Url::parse(value).map_err(|e| config_error(key, &format!("not a URL ({e})")))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(config_error(
            key,
            &format!("{url} must use https (plain http is allowed only to localhost)"),
        )),
    }
}

fn smart_configuration_url(fhir_base_url: &str) -> Result<Url, AuthError> {
    let base = fhir_base_url.trim_end_matches('/');
    parse_endpoint(
        "token_url",
        &format!("{base}/.well-known/smart-configuration"),
    )
}

/// Parses the private key and signs a probe so that a key that does not fit `alg`
/// (wrong type, wrong curve, not PKCS#8) fails at start-up rather than at the first fetch.
fn signing_key(
    alg: SigningAlg,
    pem: &Secret,
    config_key: &'static str,
) -> Result<jsonwebtoken::EncodingKey, AuthError> {
    let bytes = pem.expose().as_bytes();
    let parsed = match alg {
        SigningAlg::RS384 => jsonwebtoken::EncodingKey::from_rsa_pem(bytes),
        SigningAlg::ES384 => jsonwebtoken::EncodingKey::from_ec_pem(bytes),
    };
    let hint = match alg {
        SigningAlg::RS384 => "RS384 needs an RSA private key in PEM (PKCS#1 or PKCS#8)",
        SigningAlg::ES384 => {
            "ES384 needs a P-384 private key in PKCS#8 PEM ('BEGIN PRIVATE KEY'; convert a SEC1 \
             key with `openssl pkcs8 -topk8 -nocrypt -in key.pem`)"
        }
    };
    let key = parsed.map_err(|_| config_error(config_key, hint))?;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg.into()),
        &serde_json::json!({ "probe": true }),
        &key,
    )
    .map_err(|_| config_error(config_key, hint))?;
    Ok(key)
}

/// The claims of a SMART Backend Services client assertion.
#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    jti: String,
}

fn client_assertion(
    client_id: &str,
    token_url: &Url,
    key: &jsonwebtoken::EncodingKey,
    alg: SigningAlg,
    kid: &str,
) -> Result<String, AuthError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut header = jsonwebtoken::Header::new(alg.into());
    header.kid = Some(kid.to_owned());
    let claims = AssertionClaims {
        iss: client_id,
        sub: client_id,
        aud: token_url.as_str(),
        exp: now + ASSERTION_LIFETIME_SECS,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    jsonwebtoken::encode(&header, &claims, key).map_err(AuthError::Sign)
}

/// `client_secret_basic` (RFC 6749 §2.3.1): id and secret are form-encoded, then base64.
fn client_secret_basic(client_id: &str, secret: &Secret) -> Result<HeaderValue, AuthError> {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(client_id), encode(secret.expose()));
    sensitive_header(&format!("Basic {}", BASE64.encode(pair)))
        .ok_or_else(|| config_error("client_secret_env", "not representable in a header"))
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<Secret>,
    token_type: Option<String>,
    /// A number by the RFC; some servers send a string.
    expires_in: Option<serde_json::Value>,
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[derive(Deserialize)]
struct OAuthErrorBody {
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct SmartConfiguration {
    token_endpoint: Option<String>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    token_endpoint_auth_signing_alg_values_supported: Option<Vec<String>>,
}

impl TokenFlow {
    async fn fetch(&self) -> Result<Cached, AuthError> {
        let token_url = self.token_url().await?;
        let (body, client_header) = self.token_request(token_url)?;
        let mut request = self
            .http
            .post(token_url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .timeout(TOKEN_REQUEST_TIMEOUT)
            .body(body);
        if let Some(value) = client_header {
            request = request.header(AUTHORIZATION, value);
        }
        let requested_at = Instant::now();
        let url = token_url.to_string();
        let response = request
            .send()
            .await
            .map_err(|source| AuthError::TokenRequest {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|source| AuthError::TokenRequest {
                url: url.clone(),
                source,
            })?;
        if !status.is_success() {
            let parsed: Option<OAuthErrorBody> = serde_json::from_slice(&body).ok();
            let (error, description) = parsed
                .map(|b| (b.error, b.error_description))
                .unwrap_or_default();
            return Err(AuthError::TokenRefused {
                url,
                status: status.as_u16(),
                error: error
                    .map(|e| server_text(&e))
                    .unwrap_or_else(|| "no OAuth error code".to_owned()),
                description: description.map(|d| server_text(&d)),
            });
        }
        let unusable = |message: &str| AuthError::TokenResponse {
            url: url.clone(),
            message: message.to_owned(),
        };
        // The body holds the token: errors describe it, never quote it.
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|_| unusable("not a JSON token response"))?;
        let token = parsed
            .access_token
            .filter(|t| !t.expose().is_empty())
            .ok_or_else(|| unusable("no access_token"))?;
        if let Some(token_type) = &parsed.token_type
            && !token_type.eq_ignore_ascii_case("bearer")
        {
            return Err(unusable(&format!(
                "token_type {:?} is not bearer",
                server_text(token_type)
            )));
        }
        let lifetime = match &parsed.expires_in {
            None | Some(serde_json::Value::Null) => DEFAULT_TOKEN_LIFETIME,
            Some(value) => Duration::from_secs(
                expires_in_secs(value)
                    .ok_or_else(|| unusable("expires_in is not a number of seconds"))?,
            ),
        };
        let header = sensitive_header(&format!("Bearer {}", token.expose())).ok_or_else(|| {
            unusable("access_token contains characters not allowed in an HTTP header")
        })?;
        let margin = self.refresh_margin.min(lifetime / 2);
        tracing::debug!(token_url = %url, expires_in_secs = lifetime.as_secs(), "obtained an access token");
        Ok(Cached {
            header,
            refresh_at: Some(requested_at + lifetime - margin),
            expires_at: Some(requested_at + lifetime),
        })
    }

    /// The form body of a client credentials request, and the client's Authorization
    /// header when it authenticates with a secret.
    fn token_request(&self, token_url: &Url) -> Result<(String, Option<HeaderValue>), AuthError> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        if let Some(scope) = &self.scope {
            form.append_pair("scope", scope);
        }
        let client_header = match &self.client {
            ClientAuth::Secret {
                client_id,
                secret,
                method: ClientSecretMethod::Basic,
            } => Some(client_secret_basic(client_id, secret)?),
            ClientAuth::Secret {
                client_id,
                secret,
                method: ClientSecretMethod::Post,
            } => {
                form.append_pair("client_id", client_id);
                form.append_pair("client_secret", secret.expose());
                None
            }
            ClientAuth::PrivateKeyJwt {
                client_id,
                key,
                alg,
                kid,
            } => {
                let assertion = client_assertion(client_id, token_url, key, *alg, kid)?;
                form.append_pair("client_assertion_type", CLIENT_ASSERTION_TYPE);
                form.append_pair("client_assertion", &assertion);
                None
            }
        };
        Ok((form.finish(), client_header))
    }

    async fn token_url(&self) -> Result<&Url, AuthError> {
        match &self.endpoint {
            TokenEndpoint::Fixed(url) => Ok(url),
            TokenEndpoint::Discovered {
                smart_configuration,
                resolved,
            } => {
                resolved
                    .get_or_try_init(|| self.discover(smart_configuration))
                    .await
            }
        }
    }

    /// Reads the token endpoint from the server's SMART configuration and checks that the
    /// server accepts what this client sends.
    async fn discover(&self, smart_configuration: &Url) -> Result<Url, AuthError> {
        let failed = |message: String| AuthError::Discovery {
            url: smart_configuration.to_string(),
            message,
        };
        let response = self
            .http
            .get(smart_configuration.clone())
            .header(ACCEPT, "application/json")
            .timeout(TOKEN_REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("HTTP {}", response.status().as_u16())));
        }
        let body = response.bytes().await.map_err(|e| failed(e.to_string()))?;
        let config: SmartConfiguration = serde_json::from_slice(&body)
            .map_err(|e| failed(format!("not a SMART configuration: {e}")))?;
        if let Some(methods) = &config.token_endpoint_auth_methods_supported
            && !methods.iter().any(|m| m == "private_key_jwt")
        {
            return Err(failed(
                "the server does not accept private_key_jwt".to_owned(),
            ));
        }
        if let (Some(algs), ClientAuth::PrivateKeyJwt { alg, .. }) = (
            &config.token_endpoint_auth_signing_alg_values_supported,
            &self.client,
        ) && !algs.iter().any(|a| a == &format!("{alg:?}"))
        {
            return Err(failed(format!(
                "the server does not accept {alg:?} assertions"
            )));
        }
        let endpoint = config
            .token_endpoint
            .ok_or_else(|| failed("no token_endpoint".to_owned()))?;
        let url = parse_endpoint("token_url", &endpoint).map_err(|e| failed(e.to_string()))?;
        tracing::info!(token_url = %url, "discovered the SMART token endpoint");
        Ok(url)
    }
}

fn expires_in_secs(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        }),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Server text copied into an error: bounded and free of control characters.
fn server_text(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_SERVER_TEXT)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A fresh key pair made with openssl for this test only: (private PEM, public PEM).
    fn openssl_key(dir: &std::path::Path, name: &str, genpkey_args: &[&str]) -> (PathBuf, PathBuf) {
        let private = dir.join(format!("{name}.pem"));
        let public = dir.join(format!("{name}.pub.pem"));
        let status = Command::new("openssl")
            .arg("genpkey")
            .args(genpkey_args)
            .arg("-out")
            .arg(&private)
            .output()
            .expect("openssl must be installed to generate test keys");
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        let status = Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public)
            .status()
            .expect("openssl pkey");
        assert!(status.success());
        (private, public)
    }

    fn rsa_key(dir: &std::path::Path) -> (PathBuf, PathBuf) {
        openssl_key(
            dir,
            "rsa",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        )
    }

    fn ec_key(dir: &std::path::Path, curve: &str) -> (PathBuf, PathBuf) {
        openssl_key(
            dir,
            curve,
            &[
                "-algorithm",
                "EC",
                "-pkeyopt",
                &format!("ec_paramgen_curve:{curve}"),
            ],
        )
    }

    fn secret_file(dir: &std::path::Path, content: &str) -> PathBuf {
        let path = dir.join("secret");
        std::fs::write(&path, content).expect("write secret");
        path
    }

    fn smart_config(key: PathBuf, alg: SigningAlg, token_url: Option<&str>) -> AuthConfig {
        AuthConfig::SmartBackend {
            token_url: token_url.map(str::to_owned),
            client_id: "client-1".into(),
            private_key_file: Some(key),
            private_key_env: None,
            alg,
            kid: "kid-1".into(),
            scope: "system/*.rs".into(),
            refresh_margin_secs: 60,
        }
    }

    #[test]
    fn secret_is_redacted_in_debug_display_and_serialization() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(secret.to_string(), "[redacted]");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"[redacted]\"");
        #[derive(Serialize)]
        struct Printed {
            password: Secret,
        }
        let toml = toml::to_string(&Printed {
            password: secret.clone(),
        })
        .unwrap();
        assert!(!toml.contains("hunter2"), "{toml}");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn auth_and_its_header_future_can_cross_tasks() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        fn sendable<T: Send>(_: &T) {}
        shareable::<Auth>();
        let auth = Auth::new(&AuthConfig::None, reqwest::Client::new()).unwrap();
        sendable(&auth.header());
    }

    #[test]
    fn config_parses_every_flow_from_toml_and_defaults_to_none() {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            auth: AuthConfig,
        }
        let none: File = toml::from_str("").unwrap();
        assert_eq!(none.auth, AuthConfig::None);
        let basic: File = toml::from_str(
            "[auth]\ntype = \"basic\"\nusername = \"u\"\npassword_file = \"/run/secrets/pw\"\n",
        )
        .unwrap();
        assert!(matches!(basic.auth, AuthConfig::Basic { .. }));
        let bearer: File =
            toml::from_str("[auth]\ntype = \"bearer\"\ntoken_env = \"T\"\n").unwrap();
        assert!(matches!(bearer.auth, AuthConfig::Bearer { .. }));
        let cc: File = toml::from_str(
            "[auth]\ntype = \"client_credentials\"\ntoken_url = \"https://idp/token\"\n\
             client_id = \"c\"\nclient_secret_env = \"S\"\nscope = \"system/*.rs\"\n",
        )
        .unwrap();
        match cc.auth {
            AuthConfig::ClientCredentials {
                refresh_margin_secs,
                client_auth,
                ..
            } => assert_eq!(
                (refresh_margin_secs, client_auth),
                (60, ClientSecretMethod::Basic)
            ),
            other => panic!("{other:?}"),
        }
        let post: File = toml::from_str(
            "[auth]\ntype = \"client_credentials\"\ntoken_url = \"https://idp/token\"\n\
             client_id = \"c\"\nclient_secret_env = \"S\"\nclient_auth = \"post\"\n",
        )
        .unwrap();
        assert!(matches!(
            post.auth,
            AuthConfig::ClientCredentials {
                client_auth: ClientSecretMethod::Post,
                ..
            }
        ));
        assert!(
            toml::from_str::<File>(
                "[auth]\ntype = \"client_credentials\"\ntoken_url = \"https://idp/token\"\n\
                 client_id = \"c\"\nclient_secret_env = \"S\"\nclient_auth = \"jwt\"\n",
            )
            .is_err()
        );
        let smart: File = toml::from_str(
            "[auth]\ntype = \"smart_backend\"\nclient_id = \"c\"\nprivate_key_file = \"k.pem\"\n\
             alg = \"ES384\"\nkid = \"k1\"\nscope = \"system/*.rs\"\nrefresh_margin_secs = 30\n",
        )
        .unwrap();
        assert!(matches!(
            smart.auth,
            AuthConfig::SmartBackend {
                alg: SigningAlg::ES384,
                token_url: None,
                refresh_margin_secs: 30,
                ..
            }
        ));
    }

    #[test]
    fn config_rejects_unknown_keys_types_and_algorithms() {
        let unknown = toml::from_str::<AuthConfig>(
            "type = \"bearer\"\ntoken_env = \"T\"\npassword = \"x\"\n",
        );
        assert!(unknown.unwrap_err().to_string().contains("password"));
        assert!(toml::from_str::<AuthConfig>("type = \"kerberos\"\n").is_err());
        let hs = toml::from_str::<AuthConfig>(
            "type = \"smart_backend\"\nclient_id = \"c\"\nprivate_key_file = \"k\"\nalg = \"HS256\"\nkid = \"k\"\nscope = \"s\"\n",
        );
        assert!(hs.unwrap_err().to_string().contains("HS256"));
    }

    #[test]
    fn basic_header_encodes_user_and_password_read_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = AuthConfig::Basic {
            username: "alice".into(),
            password_env: None,
            password_file: Some(secret_file(dir.path(), "pässword\n")),
        };
        let auth = Auth::new(&config, reqwest::Client::new()).unwrap();
        let header = tokio_test_block_on(auth.header()).unwrap().unwrap();
        let expected = format!("Basic {}", BASE64.encode("alice:pässword"));
        assert_eq!(header.to_str().unwrap(), expected);
        assert!(header.is_sensitive());
        let debug = format!("{auth:?}");
        assert!(
            debug.contains("alice") && !debug.contains("pässword"),
            "{debug}"
        );
    }

    #[test]
    fn bearer_token_from_env_is_sent_as_is() {
        // cargo sets CARGO_PKG_NAME for the test process: a variable that is surely set.
        let config = AuthConfig::Bearer {
            token_env: Some("CARGO_PKG_NAME".into()),
            token_file: None,
        };
        let auth = Auth::new(&config, reqwest::Client::new()).unwrap();
        let header = tokio_test_block_on(auth.header()).unwrap().unwrap();
        assert_eq!(header.to_str().unwrap(), "Bearer reportsplit");
    }

    #[test]
    fn missing_or_ambiguous_secrets_fail_at_build_naming_the_key() {
        let http = reqwest::Client::new();
        let unset = AuthConfig::Bearer {
            token_env: Some("REPORTSPLIT_TEST_SURELY_UNSET_4711".into()),
            token_file: None,
        };
        let message = Auth::new(&unset, http.clone()).unwrap_err().to_string();
        assert!(
            message.starts_with("auth.token_env:")
                && message.contains("REPORTSPLIT_TEST_SURELY_UNSET_4711"),
            "{message}"
        );

        let both = AuthConfig::Bearer {
            token_env: Some("X".into()),
            token_file: Some("/nonexistent".into()),
        };
        let message = Auth::new(&both, http.clone()).unwrap_err().to_string();
        assert!(
            message.contains("exactly one of auth.token_env and auth.token_file"),
            "{message}"
        );

        let missing_file = AuthConfig::Basic {
            username: "u".into(),
            password_env: None,
            password_file: Some("/nonexistent/pw".into()),
        };
        let message = Auth::new(&missing_file, http.clone())
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("auth.password_file: cannot read /nonexistent/pw"),
            "{message}"
        );

        let dir = tempfile::tempdir().unwrap();
        let empty = AuthConfig::Bearer {
            token_env: None,
            token_file: Some(secret_file(dir.path(), "\n")),
        };
        let message = Auth::new(&empty, http.clone()).unwrap_err().to_string();
        assert!(message.contains("empty"), "{message}");

        let colon = AuthConfig::Basic {
            username: "a:b".into(),
            password_env: Some("CARGO_PKG_NAME".into()),
            password_file: None,
        };
        assert!(
            Auth::new(&colon, http)
                .unwrap_err()
                .to_string()
                .starts_with("auth.username:")
        );
    }

    #[test]
    fn secrets_never_reach_error_messages() {
        let dir = tempfile::tempdir().unwrap();
        let token = "tok\nen-with-a-newline-inside";
        let config = AuthConfig::Bearer {
            token_env: None,
            token_file: Some(secret_file(dir.path(), token)),
        };
        let error = Auth::new(&config, reqwest::Client::new()).unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(
            shown.contains("auth.token_file") && !shown.contains("en-with-a-newline"),
            "{shown}"
        );
    }

    #[test]
    fn token_urls_must_be_https_unless_loopback() {
        assert!(parse_endpoint("token_url", "https://idp.example.org/token").is_ok());
        assert!(parse_endpoint("token_url", "http://127.0.0.1:8080/token").is_ok());
        assert!(parse_endpoint("token_url", "http://localhost/token").is_ok());
        assert!(parse_endpoint("token_url", "http://[::1]/token").is_ok());
        let message = parse_endpoint("token_url", "http://idp.example.org/token")
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("auth.token_url:") && message.contains("https"),
            "{message}"
        );
        assert!(parse_endpoint("token_url", "not a url").is_err());
        assert_eq!(
            smart_configuration_url("https://fhir.example.org/r4/")
                .unwrap()
                .as_str(),
            "https://fhir.example.org/r4/.well-known/smart-configuration"
        );
    }

    #[test]
    fn smart_without_token_url_needs_a_fhir_base() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = ec_key(dir.path(), "P-384");
        let config = smart_config(key, SigningAlg::ES384, None);
        let message = Auth::new(&config, reqwest::Client::new())
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("auth.token_url:"), "{message}");
        assert!(
            Auth::for_server(&config, "http://127.0.0.1:1/fhir", reqwest::Client::new()).is_ok()
        );
    }

    #[test]
    fn keys_that_do_not_fit_the_algorithm_fail_at_build() {
        let dir = tempfile::tempdir().unwrap();
        let (p256, _) = ec_key(dir.path(), "P-256");
        let (p384, _) = ec_key(dir.path(), "P-384");
        let http = reqwest::Client::new();
        let url = Some("https://idp.example.org/token");
        let wrong_curve = Auth::new(&smart_config(p256, SigningAlg::ES384, url), http.clone());
        let message = wrong_curve.unwrap_err().to_string();
        assert!(
            message.starts_with("auth.private_key_file:") && message.contains("P-384"),
            "{message}"
        );
        let ec_for_rsa = Auth::new(
            &smart_config(p384.clone(), SigningAlg::RS384, url),
            http.clone(),
        );
        assert!(
            ec_for_rsa
                .unwrap_err()
                .to_string()
                .contains("RSA private key")
        );
        assert!(Auth::new(&smart_config(p384, SigningAlg::ES384, url), http).is_ok());
    }

    #[test]
    fn client_assertions_carry_the_smart_claims_and_verify_with_the_public_key() {
        let dir = tempfile::tempdir().unwrap();
        for (alg, (private, public)) in [
            (SigningAlg::RS384, rsa_key(dir.path())),
            (SigningAlg::ES384, ec_key(dir.path(), "P-384")),
        ] {
            let pem = Secret::new(std::fs::read_to_string(&private).unwrap());
            let key = signing_key(alg, &pem, "private_key_file").unwrap();
            let token_url = Url::parse("https://idp.example.org/token").unwrap();
            let first = client_assertion("client-1", &token_url, &key, alg, "kid-1").unwrap();
            let second = client_assertion("client-1", &token_url, &key, alg, "kid-1").unwrap();

            let public = std::fs::read(&public).unwrap();
            let decoding = match alg {
                SigningAlg::RS384 => jsonwebtoken::DecodingKey::from_rsa_pem(&public),
                SigningAlg::ES384 => jsonwebtoken::DecodingKey::from_ec_pem(&public),
            }
            .unwrap();
            let mut validation = jsonwebtoken::Validation::new(alg.into());
            validation.set_audience(&["https://idp.example.org/token"]);
            validation.set_issuer(&["client-1"]);
            validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
            let decoded =
                jsonwebtoken::decode::<serde_json::Value>(&first, &decoding, &validation).unwrap();
            assert_eq!(decoded.header.kid.as_deref(), Some("kid-1"));
            assert_eq!(decoded.header.alg, alg.into());
            let claims = decoded.claims;
            assert_eq!(claims["sub"], "client-1");
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let exp = claims["exp"].as_u64().unwrap();
            assert!(exp > now && exp <= now + 300, "exp {exp} now {now}");
            let second_claims =
                jsonwebtoken::decode::<serde_json::Value>(&second, &decoding, &validation)
                    .unwrap()
                    .claims;
            assert_ne!(claims["jti"], second_claims["jti"], "jti must be unique");
        }
    }

    #[test]
    fn client_secret_basic_form_encodes_before_base64() {
        let header = client_secret_basic("my client", &Secret::new("a:b/c+d%")).unwrap();
        let expected = format!("Basic {}", BASE64.encode("my+client:a%3Ab%2Fc%2Bd%25"));
        assert_eq!(header.to_str().unwrap(), expected);
        assert!(header.is_sensitive());
    }

    #[test]
    fn expires_in_accepts_numbers_and_numeric_strings() {
        let parse = |json: &str| expires_in_secs(&serde_json::from_str(json).unwrap());
        assert_eq!(parse("3600"), Some(3600));
        assert_eq!(parse("\"300\""), Some(300));
        assert_eq!(parse("299.5"), Some(299));
        assert_eq!(parse("-1"), None);
        assert_eq!(parse("\"soon\""), None);
        assert_eq!(parse("true"), None);
    }

    #[test]
    fn server_text_is_bounded_and_printable() {
        let long = format!("bad\u{1b}[31m\n{}", "x".repeat(1000));
        let text = server_text(&long);
        assert!(!text.contains('\u{1b}') && !text.contains('\n'));
        assert_eq!(text.chars().count(), MAX_SERVER_TEXT);
    }

    #[test]
    fn none_sends_no_header() {
        let auth = Auth::new(&AuthConfig::None, reqwest::Client::new()).unwrap();
        assert!(tokio_test_block_on(auth.header()).unwrap().is_none());
        auth.invalidate();
        assert!(tokio_test_block_on(auth.header()).unwrap().is_none());
    }

    fn tokio_test_block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }
}
