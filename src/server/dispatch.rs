//! The request path of the proxy endpoints: read and check the body, resolve the model with the
//! one resolver, check the local key, then walk the plan — each step, each credential in order —
//! until an upstream answers. A usage limit cools the account down and tries the next one (never
//! a re-login); 401 refreshes once and retries once; 429, 5xx, timeouts and connection errors
//! move to the next step of a `routes` chain; errors the client caused are answered at once.
//!
//! Providers that speak the inbound API get the body natively (only `model` replaced; Codex
//! bodies shaped to the backend's rules). Any other request among Responses, Chat Completions
//! and Messages is translated through the Responses pivot (see [`super::translated`] and
//! [`super::pivot`]): to the provider's Responses API when it speaks it (`openai-codex`
//! included, shaped to the backend's rules only there), else to the first API it lists, e.g.
//! Responses or Messages to an `openai_chat`-only provider, Chat Completions or Responses to an
//! `anthropic_messages`-only one. The upstream is always asked for a stream; clients that did
//! not stream get one aggregated answer. `count_tokens` for a provider that does not speak
//! Messages is estimated locally; compaction to one that does not speak Responses gets the clear
//! 400 of [`untranslated`].

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;

use super::access_log::LogCell;
use super::accounts::unix_now;
use super::answer::{codex_answer, meta_with_type, native_answer, verbatim};
use super::candidates::candidates;
use super::codex;
use super::error::{ApiError, Flavor};
use super::failures::Failures;
use super::intake::{check_content_type, check_local_key, missing_key, read_body, route_error};
use super::outbound::{
    Auth, Served, credential_error, error_meta, read_error_body, upstream_headers,
};
use super::pivot;
use super::relay::{self, Peek};
use super::security;
use super::state::AppState;
use super::translated::{self, Translation, translated_answer};
use super::upstream::{endpoint, transport_error};
use super::usage::QuotaSource;
use crate::affinity::{self, Affinity};
use crate::config::{Api, AuthMode, Config, ProviderConfig, ProviderKind};
use crate::ids::ProviderId;
use crate::quota::Snapshot;
use crate::quota::report;
use crate::retry::{self, Next, Retries};
use crate::routing::{Credential, Plan, Resolver, apply};
use crate::translate::Backend;

/// The API a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// `POST /v1/responses`.
    Responses,
    /// `POST /v1/responses/compact` (the Codex CLI's remote compaction; JSON, not a stream).
    Compact,
    /// `POST /v1/chat/completions`.
    ChatCompletions,
    /// `POST /v1/messages`.
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
}

impl Inbound {
    /// The wire API this is.
    #[must_use]
    pub fn api(self) -> Api {
        match self {
            Inbound::Responses | Inbound::Compact => Api::OpenaiResponses,
            Inbound::ChatCompletions => Api::OpenaiChat,
            Inbound::Messages | Inbound::CountTokens => Api::AnthropicMessages,
        }
    }

    /// The error envelope its clients understand.
    #[must_use]
    pub fn flavor(self) -> Flavor {
        match self {
            Inbound::Responses | Inbound::Compact | Inbound::ChatCompletions => Flavor::OpenAi,
            Inbound::Messages | Inbound::CountTokens => Flavor::Anthropic,
        }
    }

    /// The local route.
    #[must_use]
    pub fn route(self) -> &'static str {
        match self {
            Inbound::Responses => "/v1/responses",
            Inbound::Compact => "/v1/responses/compact",
            Inbound::ChatCompletions => "/v1/chat/completions",
            Inbound::Messages => "/v1/messages",
            Inbound::CountTokens => "/v1/messages/count_tokens",
        }
    }

    /// The path appended to a native provider's `base_url`.
    fn upstream_path(self) -> &'static str {
        match self {
            Inbound::Responses => "responses",
            Inbound::Compact => "responses/compact",
            Inbound::ChatCompletions => "chat/completions",
            Inbound::Messages => "messages",
            Inbound::CountTokens => "messages/count_tokens",
        }
    }
}

/// A provider that neither speaks the inbound API nor can be reached through a translation
/// (`/v1/responses/compact` to a provider that does not speak Responses): a clear 400.
#[must_use]
pub fn untranslated(inbound: Inbound, provider: &ProviderConfig) -> ApiError {
    let speaks: Vec<&str> = provider.apis().iter().map(|a| a.as_str()).collect();
    ApiError::bad_request(
        "unsupported_api",
        format!(
            "{} cannot serve {} ({}): it speaks {}, and this build has no translation between these APIs",
            provider.id,
            inbound.route(),
            inbound.api().as_str(),
            speaks.join(", ")
        ),
    )
}

/// Handles one proxy request; every error becomes the inbound API's error envelope.
pub async fn handle(state: Arc<AppState>, inbound: Inbound, req: Request) -> Response {
    match run(&state, inbound, req).await {
        Ok(response) => response,
        Err(err) => err.into_response_as(inbound.flavor()),
    }
}

async fn run(state: &AppState, inbound: Inbound, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let log = parts
        .extensions
        .get::<LogCell>()
        .cloned()
        .unwrap_or_default();
    let headers = parts.headers;
    let config = state.config();

    if let Some(key) = &config.server.api_key
        && !security::has_local_key(&headers, key, true)
    {
        return Err(missing_key());
    }
    check_content_type(&headers)?;
    let bytes = read_body(body, &headers, config.server.max_body_bytes).await?;
    let json: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    let model = json
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing_model",
                "missing `model`: name the model to use, e.g. `openai-codex:gpt-6.1-sol`",
            )
        })?
        .to_owned();
    log.update(|f| f.model = Some(model.clone()));
    let header_account = match headers.get(security::ACCOUNT_HEADER) {
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::bad_request("invalid_account", "x-bitrouter-account is not valid text")
        })?),
        None => None,
    };

    let inventory = state.inventory(&config);
    let plan = Resolver::new(&config, &inventory)
        .resolve(&model, header_account)
        .map_err(route_error)?;
    check_local_key(&config, &plan, &headers)?;
    let affinity = affinity::of(inbound.api(), &headers, &json);
    if let Some(a) = &affinity {
        tracing::debug!(key = %a.key, source = a.source.as_str(), "conversation");
    }
    let request = Asked {
        inbound,
        headers: &headers,
        json: &json,
        affinity: affinity.as_ref(),
    };
    walk(state, &config, &plan, &request, &log).await
}

/// What the walk needs of the client's request.
struct Asked<'a> {
    inbound: Inbound,
    headers: &'a HeaderMap,
    json: &'a Value,
    /// The conversation's key, if it has one.
    affinity: Option<&'a Affinity>,
}

/// The body for this provider: Codex bodies shaped, all with the target's model.
fn prepare_body(json: &Value, model: &str, codex_stream: bool) -> Result<(Value, bool), ApiError> {
    let mut body = json.clone();
    if let Value::Object(fields) = &mut body {
        fields.insert("model".into(), Value::String(model.to_owned()));
    }
    if codex_stream {
        let shaped = codex::shape_body(body)?;
        return Ok((shaped.body, shaped.client_stream));
    }
    let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
    Ok((body, stream))
}

/// Headers for a translated request to a generic provider: it is asked for a stream, and an
/// Anthropic upstream gets the `anthropic-version` it requires unless the client or the
/// provider's `headers:` set one.
fn translated_headers(headers: &mut HeaderMap, api: Api) {
    headers.insert(
        axum::http::header::ACCEPT,
        axum::http::HeaderValue::from_static("text/event-stream"),
    );
    if api == Api::AnthropicMessages && !headers.contains_key(ANTHROPIC_VERSION) {
        headers.insert(
            ANTHROPIC_VERSION,
            axum::http::HeaderValue::from_static("2023-06-01"),
        );
    }
}

/// The header naming the Anthropic API version.
const ANTHROPIC_VERSION: axum::http::HeaderName =
    axum::http::HeaderName::from_static("anthropic-version");

/// A native upstream's error as the client's API shapes it (`{"error":{…}}` or Anthropic's).
fn generic_error(provider: &ProviderId, status: StatusCode, body: &[u8]) -> ApiError {
    let mut err = codex::upstream_error(provider.as_str(), status, body, true);
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        err.message = format!("{provider} answered {status}: {}", err.message);
    }
    err
}

#[expect(
    clippy::too_many_lines,
    reason = "the failover walk reads best as one loop over steps, credentials and attempts"
)]
async fn walk(
    state: &AppState,
    config: &Config,
    plan: &Plan,
    request: &Asked<'_>,
    log: &LogCell,
) -> Result<Response, ApiError> {
    let Asked {
        inbound,
        headers,
        json,
        affinity,
    } = *request;
    let local_key = config.server.api_key.as_ref();
    let mut failures = Failures::default();
    let mut retries = Retries::new(state.retry);
    'steps: for step in &plan.steps {
        let target = &step.target;
        let Some(provider) = config.provider(&target.provider) else {
            continue;
        };
        let is_codex = matches!(provider.kind, ProviderKind::OpenaiCodex { .. });
        let backend = if is_codex {
            Backend::Codex
        } else {
            Backend::Generic
        };
        let (translation, upstream_api) = if provider.apis().contains(&inbound.api()) {
            (None, inbound.api())
        } else if inbound == Inbound::CountTokens {
            // No upstream counts tokens for a provider that does not speak Messages: count here.
            return translated::count_tokens(json).await;
        } else if let Some(api) = pivot::target_api(provider)
            && let Some(translation) = Translation::new(inbound, json, backend)?
        {
            (Some(translation), api)
        } else {
            failures.other(untranslated(inbound, provider));
            continue;
        };
        // Responses to the Codex backend are shaped and streamed; its compaction is plain JSON.
        // Translated requests ask any provider for a stream, read as Responses events (see
        // `pivot::as_responses`).
        let codex_stream = translation.is_some() || (is_codex && inbound == Inbound::Responses);
        let (mut body, client_stream) = match &translation {
            Some(t) => (
                pivot::upstream_body(t.body(&target.model), upstream_api)?,
                t.stream(),
            ),
            None => prepare_body(json, &target.model, codex_stream)?,
        };
        // The client's own effort, fitted to the levels the model has.
        if is_codex && translation.is_some() {
            translated::fit_effort(state, config, &provider.id, &target.model, &mut body).await;
        }
        // The target's effort and tier, after translation so a route's pin has the last word.
        if !matches!(inbound, Inbound::Compact | Inbound::CountTokens) {
            apply::apply(&mut body, upstream_api, target, is_codex)
                .map_err(|e| ApiError::bad_request("unsupported_variant", e.to_string()))?;
        }
        // One conversation, one cache key (the `session-id` headers follow it).
        if is_codex
            && codex_stream
            && let Some(a) = affinity
        {
            affinity::stamp(&mut body, a);
        }
        let body_bytes = Bytes::from(body.to_string());
        let client_auth = provider.auth_mode == AuthMode::Passthrough
            && security::has_client_credentials(headers, local_key);
        let list = if client_auth {
            vec![None]
        } else {
            candidates(state, provider, target, affinity, unix_now())
                .into_iter()
                .map(Some)
                .collect()
        };
        let http = state.clients.get(provider.timeouts)?;
        let path = if translation.is_some() {
            pivot::upstream_path(upstream_api)
        } else {
            inbound.upstream_path()
        };
        let url = endpoint(&provider.base_url, path);

        'creds: for credential in list {
            let now = unix_now();
            let mut auth = match credential {
                None => Auth::Client,
                Some(Credential::Account(label)) => {
                    if let Some(until) = state.book.cooling_until(&provider.id, &label, now) {
                        tracing::debug!(provider = %provider.id, account = %label, until, "skipping an account that is cooling down");
                        failures.cool(until);
                        continue;
                    }
                    match state.credentials.access(&provider.id, &label).await {
                        Ok(access) => Auth::Account { label, access },
                        Err(e) => {
                            failures.other(credential_error(&provider.id, &label, e));
                            continue;
                        }
                    }
                }
                Some(Credential::ConfiguredKey) => match &provider.api_key {
                    Some(key) => Auth::Configured(key.clone()),
                    None => Auth::Nothing,
                },
                Some(Credential::None) => Auth::Nothing,
            };
            retries.new_account();
            let mut refreshed = false;
            'send: loop {
                if !retries.may_send() {
                    break 'steps;
                }
                retries.sent();
                let served = Served {
                    provider: provider.id.clone(),
                    model: target.model.clone(),
                    account: auth.name(),
                };
                failures.served = Some(served.clone());
                let mut out_headers = upstream_headers(provider, headers, &body, &auth, local_key);
                if is_codex && !codex_stream {
                    out_headers.insert(
                        axum::http::header::ACCEPT,
                        axum::http::HeaderValue::from_static("application/json"),
                    );
                }
                if translation.is_some() && !is_codex {
                    translated_headers(&mut out_headers, upstream_api);
                }
                let sent = http
                    .post(url.clone())
                    .headers(out_headers)
                    .body(body_bytes.clone())
                    .send()
                    .await;
                // A hiccup before any output (transport, 5xx, 429, a stream that broke or
                // failed before its first output): retried below; everything else decides here.
                let (hiccup, hiccup_status) = 'attempt: {
                    let resp = match sent {
                        Ok(resp) => resp,
                        Err(e) => break 'attempt (transport_error(provider.id.as_str(), &e), None),
                    };
                    let status = resp.status();
                    let now = unix_now();
                    if is_codex
                        && let Some(label) = auth.label()
                        && let Some(snapshot) = Snapshot::from_headers(resp.headers(), now)
                    {
                        state.book.record_snapshot(
                            &provider.id,
                            label,
                            snapshot,
                            QuotaSource::Headers,
                            now,
                        );
                    }

                    if status == StatusCode::UNAUTHORIZED
                        && !refreshed
                        && let Auth::Account { label, access } = &auth
                    {
                        refreshed = true;
                        drop(resp);
                        match state
                            .credentials
                            .refresh_after_unauthorized(&provider.id, label, &access.token)
                            .await
                        {
                            Ok(access) => {
                                auth = Auth::Account {
                                    label: label.clone(),
                                    access,
                                };
                                continue 'send;
                            }
                            Err(e) => {
                                failures.other(credential_error(&provider.id, label, e));
                                continue 'creds;
                            }
                        }
                    }

                    if status.is_success() {
                        let answer = if codex_stream {
                            let mut relay_headers =
                                security::relayable_response_headers(resp.headers());
                            if inbound == Inbound::Messages
                                && is_codex
                                && let Some(snapshot) = auth
                                    .label()
                                    .and_then(|l| state.book.snapshot(&provider.id, l))
                            {
                                relay_headers.extend(report::anthropic_headers(&snapshot, now));
                            }
                            let upstream =
                                pivot::as_responses(resp.bytes_stream().boxed(), upstream_api);
                            match relay::peek(upstream, provider.id.as_str()).await {
                                Peek::Committed(committed) => match &translation {
                                    Some(t) => {
                                        translated_answer(committed, t, relay_headers, &served, log)
                                            .await
                                    }
                                    None => {
                                        codex_answer(
                                            committed,
                                            relay_headers,
                                            client_stream,
                                            &served,
                                            log,
                                        )
                                        .await
                                    }
                                },
                                Peek::UsageLimit(limit) => {
                                    let until = limit.until(now);
                                    failures.cool(until);
                                    if let Some(label) = auth.label() {
                                        tracing::info!(target: "bitrouter::serve", provider = %provider.id, account = %label, until, "usage limit reached; cooling the account down");
                                        state.book.cool_down(&provider.id, label, until, now);
                                        continue 'creds;
                                    }
                                    continue 'steps;
                                }
                                Peek::Broken(err) => break 'attempt (err, None),
                            }
                        } else {
                            Ok(native_answer(resp, inbound, &served, log))
                        };
                        if let Some(label) = auth.label() {
                            state.book.succeeded(&provider.id, label, now);
                            // A pinned account is the request's choice, not the conversation's.
                            if !target.pinned
                                && let Some(a) = affinity
                            {
                                state.sticky.set(&provider.id, &a.key, label, now);
                            }
                        }
                        log.update(|f| {
                            f.provider = Some(served.provider.to_string());
                            f.account = Some(served.account.clone());
                        });
                        return answer.map_err(|mut e| {
                            e.headers.extend(served.headers());
                            e
                        });
                    }

                    let meta = error_meta(resp.headers());
                    let error_body = read_error_body(resp).await;
                    log.update(|f| {
                        f.provider = Some(served.provider.to_string());
                        f.account = Some(served.account.clone());
                    });
                    if is_codex
                        && let Some(limit) = codex::usage_limit_in_answer(status, &error_body)
                    {
                        let until = limit.until(now);
                        failures.cool(until);
                        if let Some(label) = auth.label() {
                            tracing::info!(target: "bitrouter::serve", provider = %provider.id, account = %label, until, "usage limit reached; cooling the account down");
                            state.book.cool_down(&provider.id, label, until, now);
                            continue 'creds;
                        }
                        continue 'steps;
                    }
                    let mut err = if is_codex {
                        // Without a credential of ours, a 401/403 is the upstream's own answer.
                        let not_ours = client_auth || matches!(auth, Auth::Nothing);
                        codex::upstream_error(provider.id.as_str(), status, &error_body, not_ours)
                    } else {
                        generic_error(&provider.id, status, &error_body)
                    };
                    err.headers.extend(meta);
                    if status == StatusCode::UNAUTHORIZED
                        && let Some(label) = auth.label()
                    {
                        // Refreshed and still refused: this account needs a new login; others may work.
                        failures.other(ApiError::new(
                            StatusCode::UNAUTHORIZED,
                            "authentication_error",
                            Some("login_required"),
                            format!(
                                "{} refused account `{label}` even after a refresh; run `bitrouter login {} --label {label}`",
                                provider.id, provider.id
                            ),
                        ));
                        continue 'creds;
                    }
                    if retry::transient_status(status) {
                        break 'attempt (err, Some(status));
                    }
                    if !is_codex && translation.is_none() {
                        // A native upstream's own client error passes through verbatim.
                        return Ok(verbatim(status, &meta_with_type(&err), error_body, &served));
                    }
                    err.headers.extend(served.headers());
                    return Err(err);
                };
                tracing::debug!(provider = %provider.id, account = %auth.name(), status = hiccup_status.map(|s| s.as_u16()), "upstream hiccup before any output: {}", hiccup.message);
                failures.upstream = Some(hiccup);
                match retries
                    .after_failure(retry::same_account_after(hiccup_status), retry::jitter())
                {
                    Next::Again(wait) => tokio::time::sleep(wait).await,
                    Next::Move => continue 'creds,
                    Next::GiveUp => break 'steps,
                }
            }
        }
    }
    Err(failures.into_error(unix_now()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Env;

    fn config(text: &str) -> Config {
        Config::parse(text, &Env::default()).unwrap()
    }

    #[test]
    fn translated_headers_ask_for_a_stream_and_keep_a_set_anthropic_version() {
        let mut headers = HeaderMap::new();
        translated_headers(&mut headers, Api::AnthropicMessages);
        assert_eq!(headers["accept"], "text/event-stream");
        assert_eq!(headers["anthropic-version"], "2023-06-01");
        let mut headers = HeaderMap::new();
        headers.insert(
            ANTHROPIC_VERSION,
            axum::http::HeaderValue::from_static("2024-01-01"),
        );
        translated_headers(&mut headers, Api::AnthropicMessages);
        assert_eq!(headers["anthropic-version"], "2024-01-01");
        let mut headers = HeaderMap::new();
        translated_headers(&mut headers, Api::OpenaiChat);
        assert!(!headers.contains_key(ANTHROPIC_VERSION));
    }

    #[test]
    fn untranslated_names_provider_and_api() {
        // Compaction is the one request that has no translation.
        let config = config(
            "providers:\n  chatonly:\n    base_url: http://127.0.0.1:1/v1\n    api: openai_chat\n",
        );
        let provider = config.provider(&"chatonly".parse().unwrap()).unwrap();
        let e = untranslated(Inbound::Compact, provider);
        assert_eq!(e.status, 400);
        assert!(e.message.contains("chatonly"), "{}", e.message);
        assert!(e.message.contains("/v1/responses/compact"), "{}", e.message);
        assert!(e.message.contains("openai_chat"), "{}", e.message);
    }
}
