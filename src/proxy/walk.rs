//! Walking the chain: each step, each credential in order, one attempt at a time, until an
//! upstream answers. What an attempt's result means is [`outcome::classify`]'s to decide; the
//! walk carries the decision out (refresh, cool down, wait and send again, fail over, answer),
//! keeps what went wrong for the final error, and remembers which account served a
//! conversation so its next request goes there too.

use http::{HeaderValue, header};

use super::answer::{Response, codex_answer, native_answer, verbatim};
use super::error::ApiError;
use super::inbound::Inbound;
use super::intake::Request;
use super::outbound::{
    Auth, MAX_ERROR_BODY, Served, credential_error, translated_headers, upstream_headers,
};
use super::outcome::{self, Attempt, Failures, Observed, Outcome, Success};
use super::pivot;
use super::plan::{self, Outgoing, Prepared};
use super::record::LogCell;
use super::relay::{self, Peek};
use super::state::Proxy;
use super::translated::{self, translated_answer};
use crate::clock::unix_now;
use crate::config::{AuthMode, Config, ProviderConfig};
use crate::ids::Label;
use crate::quota::{QuotaSource, Snapshot, report};
use crate::retry::{self, Retries};
use crate::routing::{Credential, Plan};
use crate::upstream;
use crate::upstream::headers::{has_client_credentials, relayable_response_headers};
use crate::upstream::socket::{self, Opened};

/// Tries the plan's steps until one answers.
///
/// # Errors
///
/// The answer to give when nothing succeeded (see [`Failures::into_error`]), or an error the
/// client caused.
#[expect(
    clippy::too_many_lines,
    reason = "one loop over steps, credentials and attempts reads best whole"
)]
pub async fn walk(
    proxy: &Proxy,
    config: &Config,
    inbound: Inbound,
    mut request: Request,
    plan: &Plan,
    log: &LogCell,
) -> Result<Response, ApiError> {
    let local_key = config.server.api_key.as_ref();
    let mut failures = Failures::default();
    let mut retries = Retries::new(proxy.retry);
    let last = plan.steps.len().saturating_sub(1);
    'steps: for (n, step) in plan.steps.iter().enumerate() {
        let target = &step.target;
        let Some(provider) = config.provider(&target.provider) else {
            continue;
        };
        if plan::counts_locally(inbound, provider) {
            return translated::count_tokens(request.body.value()?).await;
        }
        let out = match plan::prepare(
            config,
            proxy,
            inbound,
            &mut request,
            n == last,
            provider,
            target,
        )
        .await?
        {
            Prepared::Send(out) => out,
            Prepared::Unsupported(err) => {
                failures.other(err);
                continue;
            }
        };
        let client_auth = provider.auth_mode == AuthMode::Passthrough
            && has_client_credentials(&request.headers, local_key);
        let conversation = request.conversation.as_ref();
        let credentials = plan::credentials(
            proxy,
            provider,
            target,
            client_auth,
            conversation,
            unix_now(),
        );
        'creds: for credential in credentials {
            let Some(mut auth) = acquire(proxy, provider, credential, &mut failures).await else {
                continue;
            };
            retries.new_account();
            let mut refreshed = false;
            loop {
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
                let observed =
                    attempt(proxy, config, provider, &out, &request, &auth, &served, log).await;
                let decided = outcome::classify(
                    &Attempt {
                        provider,
                        is_codex: out.is_codex,
                        translated: out.translation.is_some(),
                        auth: &auth,
                        refreshed,
                    },
                    observed,
                    &mut retries,
                    unix_now(),
                    retry::jitter(),
                );
                match decided {
                    Outcome::Answer(mut success) => {
                        let now = unix_now();
                        if let Some(label) = auth.label() {
                            proxy.book.succeeded(&provider.id, label, now);
                            if inbound == Inbound::Messages && out.is_codex {
                                add_quota_headers(&mut success, proxy, provider, label, now);
                            }
                            // The conversation's next request goes to this account too.
                            if plan::picks_accounts(target)
                                && let Some(conversation) = conversation
                            {
                                proxy
                                    .sticky
                                    .set(&provider.id, &conversation.key, label, now);
                            }
                        }
                        let answer = answer(success, inbound, &out, &served, log).await;
                        return answer.map_err(|mut e| {
                            served.add_headers(&mut e.headers);
                            e
                        });
                    }
                    Outcome::Refresh => {
                        refreshed = true;
                        let Auth::Account { label, access } = &auth else {
                            continue 'creds;
                        };
                        match proxy
                            .credentials
                            .refresh_after_unauthorized(&provider.id, label, &access.token)
                            .await
                        {
                            Ok(access) => {
                                auth = Auth::Account {
                                    label: label.clone(),
                                    access,
                                };
                            }
                            Err(e) => {
                                failures.other(credential_error(&provider.id, label, e));
                                continue 'creds;
                            }
                        }
                    }
                    Outcome::Cooldown(until) => {
                        failures.cool(until);
                        let Some(label) = auth.label() else {
                            continue 'steps;
                        };
                        tracing::info!(target: "bitrouter::serve", provider = %provider.id, account = %label, until, "usage limit reached; cooling the account down");
                        proxy.book.cool_down(&provider.id, label, until, unix_now());
                        continue 'creds;
                    }
                    Outcome::NextCredential(err) => {
                        failures.other(err);
                        continue 'creds;
                    }
                    Outcome::Again { wait, error } => {
                        failures.upstream = Some(error);
                        tokio::time::sleep(wait).await;
                    }
                    Outcome::Failover(err) => {
                        failures.upstream = Some(err);
                        continue 'creds;
                    }
                    Outcome::GiveUp(err) => {
                        failures.upstream = Some(err);
                        break 'steps;
                    }
                    Outcome::Fail(mut err) => {
                        served.add_headers(&mut err.headers);
                        return Err(err);
                    }
                    Outcome::Verbatim {
                        status,
                        headers,
                        body,
                    } => return Ok(verbatim(status, &headers, body, &served)),
                }
            }
        }
    }
    Err(failures.into_error(unix_now()))
}

/// Anthropic's rate-limit headers from the serving account's live quota, on an answer to an
/// Anthropic client (Claude Code reads them for its usage warnings).
fn add_quota_headers(
    success: &mut Success,
    proxy: &Proxy,
    provider: &ProviderConfig,
    label: &Label,
    now: i64,
) {
    // (A Codex answer to a Messages client is always a translated stream.)
    let Success::Stream { headers, .. } = success else {
        return;
    };
    if let Some(snapshot) = proxy.book.snapshot(&provider.id, label) {
        headers.extend(report::anthropic_headers(&snapshot, now));
    }
}

/// The credential for one attempt, or `None` (with the reason kept) when it cannot be used:
/// an account cooling down, not logged in, or a store that cannot be read.
async fn acquire(
    proxy: &Proxy,
    provider: &ProviderConfig,
    credential: Option<Credential>,
    failures: &mut Failures,
) -> Option<Auth> {
    Some(match credential {
        None => Auth::Client,
        Some(Credential::Account(label)) => {
            if let Some(until) = proxy.book.cooling_until(&provider.id, &label, unix_now()) {
                tracing::debug!(provider = %provider.id, account = %label, until, "skipping an account that is cooling down");
                failures.cool(until);
                return None;
            }
            match proxy.credentials.access(&provider.id, &label).await {
                Ok(access) => Auth::Account { label, access },
                Err(e) => {
                    failures.other(credential_error(&provider.id, &label, e));
                    return None;
                }
            }
        }
        Some(Credential::ConfiguredKey) => match &provider.api_key {
            Some(key) => Auth::Configured(key.clone()),
            None => Auth::Nothing,
        },
        Some(Credential::None) => Auth::Nothing,
    })
}

/// Sends one attempt and reads as much of the answer as the decision needs: an error body, or
/// a Responses stream up to its first output.
#[expect(
    clippy::too_many_arguments,
    reason = "the parts of one attempt, each borrowed from a different owner"
)]
async fn attempt(
    proxy: &Proxy,
    config: &Config,
    provider: &ProviderConfig,
    out: &Outgoing,
    request: &Request,
    auth: &Auth,
    served: &Served,
    log: &LogCell,
) -> Observed {
    let mut headers = upstream_headers(
        provider,
        &request.headers,
        out.session.as_deref(),
        auth,
        config.server.api_key.as_ref(),
    );
    if out.is_codex && !out.reads_stream {
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    }
    if out.translation.is_some() && !out.is_codex {
        translated_headers(&mut headers, out.api);
    }
    log.update(|f| f.attempt(&served.provider, &served.model, &served.account));
    let sent = send(proxy, provider, out, headers).await;
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            tracing::debug!(provider = %provider.id, "upstream transport failure: {e}");
            return Observed::Transport(e);
        }
    };
    let now = unix_now();
    if out.is_codex
        && let Some(label) = auth.label()
        && let Some(snapshot) = Snapshot::from_headers(&response.headers, now)
    {
        proxy
            .book
            .record_snapshot(&provider.id, label, snapshot, QuotaSource::Headers, now);
    }
    if !response.status.is_success() {
        let status = response.status;
        let headers = response.headers.clone();
        let body = response.read_to(MAX_ERROR_BODY).await;
        return Observed::Refused {
            status,
            headers,
            body,
        };
    }
    if !out.reads_stream {
        return Observed::Success(Success::Native(response));
    }
    let headers = relayable_response_headers(response.headers);
    let stream: upstream::ByteStream = pivot::as_responses(response.body, out.api);
    match relay::peek(stream, provider.id.as_str()).await {
        Peek::Committed(committed) => Observed::Success(Success::Stream { committed, headers }),
        Peek::UsageLimit(limit) => Observed::StreamLimit(limit),
        Peek::Broken(err) => Observed::StreamBroken(err),
    }
}

/// Sends one attempt over HTTP, or over the backend's WebSocket transport when the provider
/// asks for it and this is a Responses stream; a refused upgrade falls back to HTTP at once
/// and for good (until the configuration is reloaded).
async fn send(
    proxy: &Proxy,
    provider: &ProviderConfig,
    out: &Outgoing,
    headers: http::HeaderMap,
) -> Result<upstream::Response, upstream::TransportError> {
    if out.is_codex && out.reads_stream && proxy.uses_websocket(provider) {
        let sockets = &proxy.upstream.sockets;
        // Boxed: the WebSocket exchange's future is some 3 KB, and unboxed it would make every
        // request's future that much larger (and copied that much more) for a transport few use.
        let opened = Box::pin(socket::send(
            sockets,
            provider.timeouts,
            &out.url,
            headers.clone(),
            &out.body,
        ));
        match opened.await? {
            Opened::Answer(response) => return Ok(response),
            Opened::Refused(status) => {
                tracing::info!(
                    provider = %provider.id,
                    "the upstream refused the WebSocket upgrade ({status}); using HTTP"
                );
                proxy.refuse_websocket(&provider.id);
            }
        }
    }
    proxy
        .upstream
        .send_to(
            provider.timeouts,
            http::Method::POST,
            out.url.clone(),
            headers,
            out.body.clone(),
        )
        .await
}

/// The client's answer from a success.
async fn answer(
    success: Success,
    inbound: Inbound,
    out: &Outgoing,
    served: &Served,
    log: &LogCell,
) -> Result<Response, ApiError> {
    match success {
        Success::Native(response) => Ok(native_answer(response, inbound, served, log)),
        Success::Stream { committed, headers } => match &out.translation {
            Some(t) => translated_answer(committed, t, headers, served, log).await,
            None => codex_answer(committed, headers, out.client_stream, served, log).await,
        },
    }
}
