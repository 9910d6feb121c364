//! Every auth flow against a real SEKMET FHIR server that enforces auth (started on a free
//! port by scripts/sekmet.sh), plus a token endpoint in the test (wiremock) for what SEKMET
//! cannot show: exact client_secret_basic encoding, one fetch for many callers, refresh
//! failures and a token rejected by the FHIR server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use reportsplit::auth::{Auth, AuthConfig, AuthError, ClientSecretMethod, SigningAlg};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SERVER_TOKEN_LIFETIME_SECS: u64 = 6;

/// A SEKMET server for one test, killed when dropped.
struct Sekmet {
    base: String,
    pid: String,
    _dir: tempfile::TempDir,
}

impl Sekmet {
    fn start(dir: tempfile::TempDir, extra_yaml: &str) -> Sekmet {
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sekmet.sh");
        let output = Command::new("bash")
            .arg(&script)
            .arg(port.to_string())
            .arg(":memory:")
            .env("SEKMET_DIR", dir.path())
            .env("SEKMET_EXTRA_YAML", extra_yaml)
            .output()
            .expect("run scripts/sekmet.sh");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "SEKMET did not start: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let pid = stdout.lines().last().unwrap_or_default().trim().to_owned();
        Sekmet {
            base: format!("http://127.0.0.1:{port}/fhir"),
            pid,
            _dir: dir,
        }
    }

    fn token_url(&self) -> String {
        format!("{}/auth/token", self.base.trim_end_matches("/fhir"))
    }

    /// A read of the FHIR API with the given Authorization header (or none).
    async fn search(&self, authorization: Option<HeaderValue>) -> StatusCode {
        let mut request =
            reqwest::Client::new().get(format!("{}/DiagnosticReport?_count=1", self.base));
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        request.send().await.expect("SEKMET answers").status()
    }
}

impl Drop for Sekmet {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(&self.pid).status();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// A key pair made for this test run only (never committed): (private PEM, public PEM).
fn openssl_key(dir: &Path, name: &str, genpkey_args: &[&str]) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let generated = Command::new("openssl")
        .arg("genpkey")
        .args(genpkey_args)
        .arg("-out")
        .arg(&private)
        .output()
        .expect("openssl must be installed to generate test keys");
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let exported = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status()
        .expect("openssl pkey");
    assert!(exported.success());
    (private, public)
}

fn write_secret(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write secret file");
    path
}

fn shown(error: &AuthError) -> String {
    format!("{error} {error:?}")
}

/// Checks a token flow against SEKMET: the token is accepted, refreshed before it expires
/// (the old one is then refused by the server), shared by concurrent callers, and replaced
/// after invalidate().
async fn exercise_token_flow(sekmet: &Sekmet, auth: &Auth) {
    let first = auth.header().await.expect("token").expect("a header");
    assert!(first.to_str().unwrap().starts_with("Bearer "));
    assert!(first.is_sensitive());
    assert_eq!(sekmet.search(Some(first.clone())).await, StatusCode::OK);
    assert_eq!(
        auth.header().await.unwrap().unwrap(),
        first,
        "cached, not fetched again"
    );

    // Refresh margin = half the 6 s lifetime: after 3.3 s a new token is fetched.
    tokio::time::sleep(Duration::from_millis(3300)).await;
    let refreshed = auth.header().await.unwrap().unwrap();
    assert_ne!(refreshed, first, "refreshed before expiry");
    assert_eq!(sekmet.search(Some(refreshed.clone())).await, StatusCode::OK);

    // The server really expires tokens: the first one is refused once its 6 s are over.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert_eq!(sekmet.search(Some(first)).await, StatusCode::UNAUTHORIZED);
    let current = auth.header().await.unwrap().unwrap();
    assert_eq!(sekmet.search(Some(current.clone())).await, StatusCode::OK);

    // After a 401 the caller invalidates; concurrent callers then share one new token.
    auth.invalidate();
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let auth = auth.clone();
            tokio::spawn(async move { auth.header().await })
        })
        .collect();
    let mut headers = Vec::new();
    for handle in handles {
        headers.push(handle.await.unwrap().unwrap().unwrap());
    }
    assert!(
        headers.iter().all(|h| *h == headers[0]),
        "one fetch for all callers"
    );
    assert_ne!(headers[0], current, "invalidate forces a new token");
    assert_eq!(
        sekmet.search(Some(headers[0].clone())).await,
        StatusCode::OK
    );
}

fn smart_yaml(clients: &str) -> String {
    format!(
        "server_auth:\n  types: [smart]\n  token_lifetime: {SERVER_TOKEN_LIFETIME_SECS}\n  smart_clients:\n{clients}"
    )
}

#[tokio::test]
async fn basic_and_static_bearer_against_sekmet_with_rotation_after_401() {
    let dir = tempfile::tempdir().unwrap();
    let sekmet = Sekmet::start(
        tempfile::tempdir().unwrap(),
        "server_auth:\n  types: [basic, bearer]\n  users: {alice: \"pw-alice-7\"}\n  tokens: [\"token-new-2\"]\n",
    );
    let http = reqwest::Client::new();

    // The server enforces auth: nothing, a wrong token and a wrong password are refused.
    assert_eq!(sekmet.search(None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        sekmet
            .search(Some(HeaderValue::from_static("Bearer nope")))
            .await,
        StatusCode::UNAUTHORIZED
    );
    let wrong_password = AuthConfig::Basic {
        username: "alice".into(),
        password_env: None,
        password_file: Some(write_secret(dir.path(), "wrong", "not-it\n")),
    };
    let wrong = Auth::new(&wrong_password, http.clone()).unwrap();
    assert_eq!(
        sekmet.search(wrong.header().await.unwrap()).await,
        StatusCode::UNAUTHORIZED
    );

    let basic = AuthConfig::Basic {
        username: "alice".into(),
        password_env: None,
        password_file: Some(write_secret(dir.path(), "password", "pw-alice-7\n")),
    };
    let auth = Auth::new(&basic, http.clone()).unwrap();
    assert_eq!(
        sekmet.search(auth.header().await.unwrap()).await,
        StatusCode::OK
    );

    // A bearer token rotated on disk is picked up after the 401 that the old one gets.
    let token_file = write_secret(dir.path(), "token", "token-old-1\n");
    let bearer = AuthConfig::Bearer {
        token_env: None,
        token_file: Some(token_file.clone()),
    };
    let auth = Auth::new(&bearer, http).unwrap();
    let old = auth.header().await.unwrap();
    assert_eq!(sekmet.search(old.clone()).await, StatusCode::UNAUTHORIZED);
    std::fs::write(&token_file, "token-new-2\n").unwrap();
    assert_eq!(auth.header().await.unwrap(), old, "kept until invalidated");
    auth.invalidate();
    let new = auth.header().await.unwrap();
    assert_eq!(
        new.as_ref().map(|h| h.to_str().unwrap()),
        Some("Bearer token-new-2")
    );
    assert_eq!(sekmet.search(new).await, StatusCode::OK);
}

#[tokio::test]
async fn oauth2_client_secret_basic_and_post_against_sekmet() {
    let sekmet = Sekmet::start(
        tempfile::tempdir().unwrap(),
        &smart_yaml(
            "    - {client_id: worker, client_secret: \"s3cret-Value_9\", scopes: \"system/*.rs\"}\n",
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let config = |secret: &str, client_auth| AuthConfig::ClientCredentials {
        token_url: sekmet.token_url(),
        client_id: "worker".into(),
        client_secret_env: None,
        client_secret_file: Some(write_secret(dir.path(), secret, secret)),
        client_auth,
        scope: Some("system/*.rs".into()),
        refresh_margin_secs: 60,
    };

    for method in [ClientSecretMethod::Basic, ClientSecretMethod::Post] {
        // A wrong secret is refused by the token endpoint; the error does not carry it.
        let wrong = Auth::new(&config("wrong-secret-xyz", method), http.clone()).unwrap();
        let error = wrong.header().await.unwrap_err();
        assert!(
            matches!(error.cause(), AuthError::TokenRefused { status: 401, .. }),
            "{method:?}: {error}"
        );
        assert!(
            shown(&error).contains("invalid_client") && !shown(&error).contains("wrong-secret-xyz")
        );

        let auth = Auth::new(&config("s3cret-Value_9", method), http.clone()).unwrap();
        assert!(!format!("{auth:?}").contains("s3cret"));
        exercise_token_flow(&sekmet, &auth).await;
    }
}

#[tokio::test]
async fn smart_backend_services_rs384_with_a_configured_token_url() {
    let keys = tempfile::tempdir().unwrap();
    let (private, public) = openssl_key(
        keys.path(),
        "rsa",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let (stranger, _) = openssl_key(
        keys.path(),
        "other",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    let sekmet = Sekmet::start(
        tempfile::tempdir().unwrap(),
        &smart_yaml(&format!(
            "    - {{client_id: rs-client, public_key_path: \"{}\", scopes: \"system/*.rs\"}}\n",
            public.display()
        )),
    );
    let http = reqwest::Client::new();
    let config = |key: &Path| AuthConfig::SmartBackend {
        token_url: Some(sekmet.token_url()),
        client_id: "rs-client".into(),
        private_key_file: Some(key.to_owned()),
        private_key_env: None,
        alg: SigningAlg::RS384,
        kid: "rs-key-1".into(),
        scope: "system/DiagnosticReport.rs".into(),
        refresh_margin_secs: 60,
    };

    // An assertion signed with a key the server does not know is refused.
    let wrong = Auth::new(&config(&stranger), http.clone()).unwrap();
    let error = wrong.header().await.unwrap_err();
    assert!(
        matches!(error.cause(), AuthError::TokenRefused { status: 401, .. }),
        "{error}"
    );

    let auth = Auth::new(&config(&private), http).unwrap();
    exercise_token_flow(&sekmet, &auth).await;
}

#[tokio::test]
async fn smart_backend_services_es384_with_a_discovered_token_url() {
    let keys = tempfile::tempdir().unwrap();
    let (private, public) = openssl_key(
        keys.path(),
        "ec",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
    );
    let sekmet = Sekmet::start(
        tempfile::tempdir().unwrap(),
        &smart_yaml(&format!(
            "    - {{client_id: es-client, public_key_path: \"{}\", scopes: \"system/*.rs\"}}\n",
            public.display()
        )),
    );
    let config = |private_key_file: Option<PathBuf>, scope: &str| AuthConfig::SmartBackend {
        token_url: None,
        client_id: "es-client".into(),
        private_key_file,
        private_key_env: None,
        alg: SigningAlg::ES384,
        kid: "es-key-1".into(),
        scope: scope.into(),
        refresh_margin_secs: 60,
    };
    let http = reqwest::Client::new();
    // No key source at all is a config error naming the key.
    let error =
        Auth::for_server(&config(None, "system/*.rs"), &sekmet.base, http.clone()).unwrap_err();
    assert!(
        error.to_string().starts_with("auth.private_key_env:"),
        "{error}"
    );

    let with_key = config(Some(private.clone()), "system/*.rs");
    let auth = Auth::for_server(&with_key, &format!("{}/", sekmet.base), http.clone()).unwrap();
    exercise_token_flow(&sekmet, &auth).await;

    // A scope the client was not granted makes the token endpoint refuse.
    let greedy = config(Some(private), "system/*.cud");
    let auth = Auth::for_server(&greedy, &sekmet.base, http).unwrap();
    let error = auth.header().await.unwrap_err();
    assert!(shown(&error).contains("invalid_scope"), "{error}");
}

// ---- a token endpoint in the test, for what the real server cannot show ----

fn token_body(token: &str, expires_in: u64) -> serde_json::Value {
    serde_json::json!({ "access_token": token, "token_type": "Bearer", "expires_in": expires_in })
}

/// The token endpoint answers with each of `once` in turn, once each, then
/// with `then` (if any) to every later request.
async fn answer_token_requests(
    server: &MockServer,
    once: impl IntoIterator<Item = ResponseTemplate>,
    then: Option<ResponseTemplate>,
) {
    let mut priority = 1;
    for response in once {
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(response)
            .up_to_n_times(1)
            .with_priority(priority)
            .mount(server)
            .await;
        priority += 1;
    }
    if let Some(response) = then {
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(response)
            .with_priority(priority)
            .mount(server)
            .await;
    }
}

fn client_credentials(server: &MockServer, secret_file: PathBuf, margin: u64) -> AuthConfig {
    AuthConfig::ClientCredentials {
        token_url: format!("{}/token", server.uri()),
        client_id: "reportsplit worker".into(),
        client_secret_env: None,
        client_secret_file: Some(secret_file),
        client_auth: ClientSecretMethod::Basic,
        scope: Some("system/*.rs system/Observation.c".into()),
        refresh_margin_secs: margin,
    }
}

#[tokio::test]
async fn client_secret_basic_encoding_form_body_and_one_fetch_for_many_callers() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    // RFC 6749 §2.3.1: id and secret are form-encoded before base64.
    let expected = "Basic cmVwb3J0c3BsaXQrd29ya2VyOnAlM0FzcyUyRncrcmQlMjU=";
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(header("authorization", expected))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains(
            "scope=system%2F*.rs+system%2FObservation.c",
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(token_body("tok-1", 3600))
                .set_delay(Duration::from_millis(200)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let secret = write_secret(dir.path(), "secret", "p:ss/w rd%\n");
    let auth = Auth::new(
        &client_credentials(&server, secret, 60),
        reqwest::Client::new(),
    )
    .unwrap();

    let handles: Vec<_> = (0..32)
        .map(|_| {
            let auth = auth.clone();
            tokio::spawn(async move { auth.header().await })
        })
        .collect();
    for handle in handles {
        let header = handle.await.unwrap().unwrap().unwrap();
        assert_eq!(header.to_str().unwrap(), "Bearer tok-1");
    }
    server.verify().await;
}

#[tokio::test]
async fn refresh_before_expiry_and_new_token_after_a_401() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tokens = ["tok-1", "tok-2", "tok-3"]
        .map(|token| ResponseTemplate::new(200).set_body_json(token_body(token, 4)));
    answer_token_requests(&server, tokens, None).await;
    // The FHIR API accepts only the third token: tok-2 gets a 401.
    Mock::given(method("GET"))
        .and(path("/fhir/Patient"))
        .and(header("authorization", "Bearer tok-3"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/fhir/Patient"))
        .respond_with(ResponseTemplate::new(401))
        .with_priority(2)
        .mount(&server)
        .await;
    let secret = write_secret(dir.path(), "secret", "s");
    // A 10 s margin on a 4 s token is capped at half the lifetime: refresh after 2 s.
    let auth = Auth::new(
        &client_credentials(&server, secret, 10),
        reqwest::Client::new(),
    )
    .unwrap();
    let token_requests = || async {
        let requests = server.received_requests().await.unwrap_or_default();
        requests.iter().filter(|r| r.url.path() == "/token").count()
    };

    assert_eq!(auth.header().await.unwrap().unwrap(), "Bearer tok-1");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(auth.header().await.unwrap().unwrap(), "Bearer tok-1");
    assert_eq!(token_requests().await, 1);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let refreshed = auth.header().await.unwrap().unwrap();
    assert_eq!(refreshed, "Bearer tok-2", "refreshed 2 s before expiry");
    assert_eq!(token_requests().await, 2);

    // The client's retry loop: 401 → invalidate → a new token → 200.
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let header = auth.header().await.unwrap().unwrap();
        let status = client
            .get(format!("{}/fhir/Patient", server.uri()))
            .header(AUTHORIZATION, header)
            .send()
            .await
            .unwrap()
            .status();
        statuses.push(status.as_u16());
        if status == StatusCode::UNAUTHORIZED {
            auth.invalidate();
        }
    }
    assert_eq!(statuses, [401, 200]);
    assert_eq!(token_requests().await, 3);
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_unexpired_token_and_then_reports_the_error() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    answer_token_requests(
        &server,
        [ResponseTemplate::new(200).set_body_json(token_body("tok-1", 4))],
        Some(ResponseTemplate::new(503).set_body_string("maintenance")),
    )
    .await;
    let secret = write_secret(dir.path(), "secret", "s");
    let auth = Auth::new(
        &client_credentials(&server, secret, 60),
        reqwest::Client::new(),
    )
    .unwrap();
    assert_eq!(auth.header().await.unwrap().unwrap(), "Bearer tok-1");
    tokio::time::sleep(Duration::from_millis(2400)).await;
    // Due for refresh, the endpoint fails, the token has not expired yet: keep using it.
    assert_eq!(auth.header().await.unwrap().unwrap(), "Bearer tok-1");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let error = auth.header().await.unwrap_err();
    assert!(
        matches!(error.cause(), AuthError::TokenRefused { status: 503, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn callers_waiting_for_a_failing_fetch_share_its_error() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(503)
                .set_body_json(serde_json::json!({ "error": "temporarily_unavailable" }))
                .set_delay(Duration::from_millis(300)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let secret = write_secret(dir.path(), "secret", "s");
    let auth = Auth::new(
        &client_credentials(&server, secret, 60),
        reqwest::Client::new(),
    )
    .unwrap();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let auth = auth.clone();
            tokio::spawn(async move { auth.header().await })
        })
        .collect();
    for handle in handles {
        let error = handle.await.unwrap().unwrap_err();
        assert!(
            matches!(error.cause(), AuthError::TokenRefused { status: 503, error, .. } if error == "temporarily_unavailable"),
            "{error}"
        );
    }
    server.verify().await;
}

#[tokio::test]
async fn unusable_token_responses_are_errors_that_never_quote_the_body() {
    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let answers = [
        serde_json::json!({ "token_type": "Bearer", "note": "leaky-value-1" }),
        serde_json::json!({ "access_token": "leaky-value-2", "token_type": "mac" }),
        serde_json::json!({ "access_token": "leaky-value-3", "expires_in": "later" }),
    ];
    let responses = answers
        .iter()
        .map(|answer| ResponseTemplate::new(200).set_body_json(answer));
    answer_token_requests(&server, responses, None).await;
    let secret = write_secret(dir.path(), "secret", "s");
    let auth = Auth::new(
        &client_credentials(&server, secret, 60),
        reqwest::Client::new(),
    )
    .unwrap();
    for expected in ["no access_token", "not bearer", "expires_in"] {
        let error = auth.header().await.unwrap_err();
        assert!(
            matches!(error.cause(), AuthError::TokenResponse { .. }),
            "{error}"
        );
        assert!(error.to_string().contains(expected), "{error}");
        assert!(!shown(&error).contains("leaky-value"), "{error:?}");
    }
}

/// Collects everything logged on this thread, at every level and from every crate.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_and_tokens_never_reach_the_logs_even_at_trace_level() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    answer_token_requests(
        &server,
        [ResponseTemplate::new(200).set_body_json(token_body("tok-SECRET-TOKEN", 4))],
        Some(ResponseTemplate::new(500)),
    )
    .await;
    let secret = write_secret(dir.path(), "secret", "client-SECRET-VALUE");
    let auth = Auth::new(
        &client_credentials(&server, secret, 60),
        reqwest::Client::new(),
    )
    .unwrap();
    let header = auth.header().await.unwrap().unwrap();
    reqwest::Client::new()
        .get(format!("{}/fhir/metadata", server.uri()))
        .header(AUTHORIZATION, header)
        .send()
        .await
        .unwrap();
    // A failed refresh logs a warning while the current token is still used.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(auth.header().await.is_ok());
    tracing::debug!(auth = ?auth, "the authenticator as a caller might log it");

    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logged.contains("obtained an access token"), "{logged}");
    assert!(logged.contains("token refresh failed"), "{logged}");
    let basic_credentials =
        base64::engine::general_purpose::STANDARD.encode("reportsplit+worker:client-SECRET-VALUE");
    for secret in ["SECRET-TOKEN", "SECRET-VALUE", basic_credentials.as_str()] {
        assert!(!logged.contains(secret), "{secret} logged:\n{logged}");
    }
}
