//! A fake OAuth issuer (auth.openai.com's endpoints) on `127.0.0.1:0`, run on its own tokio
//! runtime: checks PKCE, state round trip, redirect URI, client id and scopes; issues unsigned
//! JWT-shaped tokens with email/plan/account claims and `exp`; rotates refresh tokens and
//! answers a reused one with `{"error":"refresh_token_reused"}`; scripts the device-code flow;
//! answers the backend's usage endpoint (for `status --refresh`); counts every call.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::Digest;

pub const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
pub const SCOPE: &str = "openid profile email offline_access";

/// Who the next sign-in is.
#[derive(Clone, Debug)]
pub struct Identity {
    pub email: String,
    pub plan: String,
    pub account_id: String,
}

#[derive(Default, Debug, Clone)]
pub struct Counts {
    pub authorize: usize,
    pub code_exchanges: usize,
    pub refreshes: usize,
    pub reused: usize,
    pub revokes: usize,
    pub usercodes: usize,
    pub device_polls: usize,
    pub usage: usize,
}

struct PendingCode {
    challenge: String,
    redirect_uri: String,
    identity: Identity,
}

struct Inner {
    url: String,
    identity: Identity,
    access_ttl: i64,
    refresh_delay: Duration,
    codes: HashMap<String, PendingCode>,
    live_refresh: HashMap<String, Identity>,
    used_refresh: HashSet<String>,
    revoked: Vec<String>,
    device_pending: usize,
    device_enabled: bool,
    counts: Counts,
    next: u64,
    errors: Vec<String>,
}

type Shared = Arc<Mutex<Inner>>;

pub struct FakeIssuer {
    pub url: String,
    inner: Shared,
    _runtime: tokio::runtime::Runtime,
}

impl FakeIssuer {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let inner = Arc::new(Mutex::new(Inner {
            url: url.clone(),
            identity: Identity {
                email: "you@example.com".into(),
                plan: "pro".into(),
                account_id: "acc-default".into(),
            },
            access_ttl: 10 * 24 * 3600,
            refresh_delay: Duration::ZERO,
            codes: HashMap::new(),
            live_refresh: HashMap::new(),
            used_refresh: HashSet::new(),
            revoked: Vec::new(),
            device_pending: 0,
            device_enabled: true,
            counts: Counts::default(),
            next: 0,
            errors: Vec::new(),
        }));
        let app = Router::new()
            .route("/oauth/authorize", get(authorize))
            .route("/oauth/token", post(token))
            .route("/oauth/revoke", post(revoke))
            .route("/api/accounts/deviceauth/usercode", post(usercode))
            .route("/api/accounts/deviceauth/token", post(device_token))
            .route("/backend-api/wham/usage", get(usage))
            .with_state(Arc::clone(&inner));
        runtime.spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        FakeIssuer {
            url,
            inner,
            _runtime: runtime,
        }
    }

    /// A Codex `base_url` on this fake: only its usage endpoint answers there.
    pub fn codex_base(&self) -> String {
        format!("{}/backend-api/codex", self.url)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap())
    }

    pub fn set_identity(&self, email: &str, plan: &str, account_id: &str) {
        self.with(|i| {
            i.identity = Identity {
                email: email.into(),
                plan: plan.into(),
                account_id: account_id.into(),
            }
        });
    }

    pub fn set_access_ttl(&self, secs: i64) {
        self.with(|i| i.access_ttl = secs);
    }

    pub fn set_refresh_delay(&self, delay: Duration) {
        self.with(|i| i.refresh_delay = delay);
    }

    pub fn set_device_pending(&self, polls: usize) {
        self.with(|i| i.device_pending = polls);
    }

    pub fn set_device_enabled(&self, enabled: bool) {
        self.with(|i| i.device_enabled = enabled);
    }

    pub fn counts(&self) -> Counts {
        self.with(|i| i.counts.clone())
    }

    pub fn revoked(&self) -> Vec<String> {
        self.with(|i| i.revoked.clone())
    }

    /// Protocol violations seen by the fake (must be empty at the end of a test).
    pub fn errors(&self) -> Vec<String> {
        self.with(|i| i.errors.clone())
    }

    /// Registers a refresh token as live for `identity` (for seeded token files).
    pub fn add_refresh_token(&self, token: &str) {
        self.with(|i| {
            let id = i.identity.clone();
            i.live_refresh.insert(token.into(), id);
        });
    }

    /// An access token as the fake issues them, with this `exp`.
    pub fn make_access_token(&self, exp: i64) -> String {
        self.with(|i| {
            let id = i.identity.clone();
            i.next += 1;
            jwt(&access_claims(&id, exp, i.next))
        })
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn jwt(claims: &Value) -> String {
    format!(
        "{}.{}.unsigned",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn access_claims(id: &Identity, exp: i64, n: u64) -> Value {
    json!({
        "exp": exp, "iat": now(), "n": n, "client_id": CLIENT_ID,
        "https://api.openai.com/auth": {
            "chatgpt_account_id": id.account_id, "chatgpt_plan_type": id.plan
        }
    })
}

fn issue(i: &mut Inner, id: &Identity) -> Value {
    i.next += 1;
    let n = i.next;
    let exp = now() + i.access_ttl;
    let refresh = format!("rt.fake-{n}");
    i.live_refresh.insert(refresh.clone(), id.clone());
    json!({
        "access_token": jwt(&access_claims(id, exp, n)),
        "refresh_token": refresh,
        "id_token": jwt(&json!({
            "email": id.email, "exp": exp,
            "https://api.openai.com/auth": {
                "chatgpt_account_id": id.account_id, "chatgpt_plan_type": id.plan
            }
        })),
        "expires_in": i.access_ttl,
        "token_type": "Bearer",
    })
}

fn oauth_error(status: StatusCode, code: &str) -> Response {
    (status, axum::Json(json!({ "error": code }))).into_response()
}

async fn authorize(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut i = s.lock().unwrap();
    i.counts.authorize += 1;
    let expect = |k: &str, v: &str| q.get(k).map(String::as_str) == Some(v);
    let mut problems = Vec::new();
    for (k, v) in [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("scope", SCOPE),
        ("code_challenge_method", "S256"),
        ("id_token_add_organizations", "true"),
        ("codex_cli_simplified_flow", "true"),
        ("originator", "bitrouter"),
    ] {
        if !expect(k, v) {
            problems.push(format!("authorize: {k} is {:?}", q.get(k)));
        }
    }
    let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
    if !redirect_uri.starts_with("http://localhost:") || !redirect_uri.ends_with("/auth/callback") {
        problems.push(format!("authorize: redirect_uri {redirect_uri}"));
    }
    let (Some(challenge), Some(state)) = (q.get("code_challenge"), q.get("state")) else {
        problems.push("authorize: no challenge or state".into());
        i.errors.extend(problems);
        return (StatusCode::BAD_REQUEST, "bad authorize").into_response();
    };
    if q.len() != 10 {
        problems.push(format!("authorize: {} parameters", q.len()));
    }
    if !problems.is_empty() {
        i.errors.extend(problems);
        return (StatusCode::BAD_REQUEST, "bad authorize").into_response();
    }
    i.next += 1;
    let code = format!("code-{}", i.next);
    let identity = i.identity.clone();
    i.codes.insert(
        code.clone(),
        PendingCode {
            challenge: challenge.clone(),
            redirect_uri: redirect_uri.clone(),
            identity,
        },
    );
    let location = format!("{redirect_uri}?code={code}&scope=x&state={state}");
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

async fn token(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(&body).into_owned().collect();
        return code_exchange(&s, &form);
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    };
    let delay = s.lock().unwrap().refresh_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut i = s.lock().unwrap();
    i.counts.refreshes += 1;
    if json["client_id"] != CLIENT_ID || json["grant_type"] != "refresh_token" {
        i.errors.push(format!("refresh: bad body {json}"));
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let rt = json["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if i.used_refresh.contains(&rt) {
        i.counts.reused += 1;
        return oauth_error(StatusCode::BAD_REQUEST, "refresh_token_reused");
    }
    let Some(identity) = i.live_refresh.remove(&rt) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_refresh_token");
    };
    i.used_refresh.insert(rt);
    let body = issue(&mut i, &identity);
    axum::Json(body).into_response()
}

fn code_exchange(s: &Shared, form: &HashMap<String, String>) -> Response {
    let mut i = s.lock().unwrap();
    i.counts.code_exchanges += 1;
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    if get("grant_type") != "authorization_code" || get("client_id") != CLIENT_ID {
        i.errors
            .push(format!("exchange: bad grant/client {form:?}"));
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    }
    let Some(pending) = i.codes.remove(&get("code")) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    if pending.redirect_uri != get("redirect_uri") {
        i.errors
            .push("exchange: redirect_uri differs from authorize".into());
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(get("code_verifier").as_bytes()));
    if challenge != pending.challenge {
        i.errors
            .push("exchange: PKCE verifier does not match".into());
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let body = issue(&mut i, &pending.identity);
    axum::Json(body).into_response()
}

/// The backend's usage endpoint, so a config whose Codex `base_url` is
/// [`FakeIssuer::codex_base`] never reaches the network from `status --refresh`.
async fn usage(State(s): State<Shared>) -> Response {
    s.lock().unwrap().counts.usage += 1;
    axum::Json(super::fake_upstream::usage_body()).into_response()
}

async fn revoke(State(s): State<Shared>, body: Bytes) -> Response {
    let mut i = s.lock().unwrap();
    i.counts.revokes += 1;
    let json: Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(t) = json["token"].as_str() {
        i.revoked.push(t.to_owned());
        i.live_refresh.remove(t);
    }
    StatusCode::OK.into_response()
}

async fn usercode(State(s): State<Shared>, body: Bytes) -> Response {
    let mut i = s.lock().unwrap();
    i.counts.usercodes += 1;
    if !i.device_enabled {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let json: Value = serde_json::from_slice(&body).unwrap_or_default();
    if json["client_id"] != CLIENT_ID {
        i.errors.push("usercode: bad client id".into());
    }
    axum::Json(json!({"device_auth_id": "dev-1", "user_code": "ABCD-1234", "interval": "0"}))
        .into_response()
}

async fn device_token(State(s): State<Shared>, body: Bytes) -> Response {
    let mut i = s.lock().unwrap();
    i.counts.device_polls += 1;
    let json: Value = serde_json::from_slice(&body).unwrap_or_default();
    if json["device_auth_id"] != "dev-1" || json["user_code"] != "ABCD-1234" {
        i.errors.push(format!("device poll: bad body {json}"));
    }
    if i.device_pending > 0 {
        i.device_pending -= 1;
        return (StatusCode::FORBIDDEN, "pending").into_response();
    }
    let verifier = "device-verifier-0123456789-0123456789-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    i.next += 1;
    let code = format!("devcode-{}", i.next);
    let redirect_uri = format!("{}/deviceauth/callback", i.url);
    let identity = i.identity.clone();
    i.codes.insert(
        code.clone(),
        PendingCode {
            challenge: challenge.clone(),
            redirect_uri,
            identity,
        },
    );
    axum::Json(json!({
        "authorization_code": code, "code_challenge": challenge, "code_verifier": verifier
    }))
    .into_response()
}
