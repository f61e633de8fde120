//! From a request taken in to what each attempt sends: the chain from the one resolver (with
//! the local-key check that depends on it), the conversation's key when a step needs one
//! ([`conversation`]), and for each step of it the body that goes out and the credentials to
//! try, in order ([`credentials`]: the picker's account order, the conversation's sticky
//! account first).
//!
//! Providers that speak the inbound API get the body natively (only `model` replaced; Codex
//! bodies shaped to the backend's rules). Any other request among Responses, Chat Completions
//! and Messages is translated through the Responses pivot (see [`super::translated`] and
//! [`super::pivot`]): to the provider's Responses API when it speaks it (`openai-codex`
//! included, shaped to the backend's rules only there), else to the first API it lists. The
//! upstream is then always asked for a stream; clients that did not stream get one aggregated
//! answer. `count_tokens` for a provider that does not speak Messages is estimated locally;
//! compaction to one that does not speak Responses gets the clear 400 of
//! [`super::inbound::untranslated`].

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::Value;

use super::Proxy;
use super::codex;
use super::error::{ApiError, ErrorCode};
use super::inbound::{Inbound, untranslated};
use super::intake::{self, Request};
use super::pivot;
use super::translated::{self, Translation};
use crate::affinity::{self, Affinity};
use crate::config::{Api, Config, ProviderConfig, ProviderKind, Strategy};
use crate::ids::Label;
use crate::picker;
use crate::routing::{Credential, Plan, Resolver, Target, apply};
use crate::translate::Backend;
use crate::translate::responses::shape_for_codex_raw;

/// Resolves the request's model to its chain and checks the local key against it.
///
/// # Errors
///
/// The resolver's refusal (400/401/404), or a missing local key (401).
pub fn resolve(proxy: &Proxy, config: &Config, request: &Request) -> Result<Plan, ApiError> {
    let inventory = proxy.inventory(config);
    let plan = Resolver::new(config, &inventory)
        .resolve(&request.model, request.account.as_deref())
        .map_err(|e| intake::route_error(&e))?;
    intake::check_local_key(config, &plan, &request.headers)?;
    Ok(plan)
}

/// The conversation's key ([`crate::affinity`]) when a step of `plan` needs one: a Codex step
/// (the backend's prompt cache keys on it, as `prompt_cache_key` and the session headers) or a
/// step whose accounts the picker orders (a conversation stays on its account). Token counts
/// need none.
#[must_use]
pub fn conversation(
    config: &Config,
    inbound: Inbound,
    request: &Request,
    plan: &Plan,
) -> Option<Affinity> {
    if inbound == Inbound::CountTokens {
        return None;
    }
    let needed = plan.steps.iter().any(|step| {
        config.provider(&step.target.provider).is_some_and(|p| {
            matches!(p.kind, ProviderKind::OpenaiCodex { .. }) || picks_accounts(&step.target)
        })
    });
    if !needed {
        return None;
    }
    let affinity = affinity::of(
        inbound.api(),
        &request.headers,
        &request.ids,
        request.body.raw(),
    );
    if let Some(a) = &affinity {
        tracing::debug!(key = %a.key, source = a.source.as_str(), "conversation");
    }
    affinity
}

/// Whether the picker orders the target's accounts (more than one, none pinned), so that a
/// conversation's account is a choice worth remembering.
#[must_use]
pub fn picks_accounts(target: &Target) -> bool {
    !target.pinned
        && target
            .credentials
            .iter()
            .filter(|c| matches!(c, Credential::Account(_)))
            .nth(1)
            .is_some()
}

/// What one step of the chain does.
pub enum Prepared {
    /// Sends this.
    Send(Outgoing),
    /// Cannot serve this request (the reason, for when nothing else can either).
    Unsupported(ApiError),
}

/// A request ready for one provider.
pub struct Outgoing {
    /// Where it goes.
    pub url: http::Uri,
    /// The body, serialised.
    pub body: Bytes,
    /// The body's `prompt_cache_key` (the Codex session header comes from it).
    pub session: Option<String>,
    /// The translation, when the provider does not speak the inbound API.
    pub translation: Option<Translation>,
    /// The API the provider is spoken to in.
    pub api: Api,
    /// Whether the client asked for a stream.
    pub client_stream: bool,
    /// Whether the answer is read as a Responses stream (peeked before committing): the Codex
    /// backend's Responses answers and every translated answer.
    pub reads_stream: bool,
    /// Whether the provider is the Codex backend.
    pub is_codex: bool,
}

/// Whether a token count for `provider` is answered here: no upstream counts tokens for a
/// provider that does not speak Messages, so the count is estimated.
#[must_use]
pub fn counts_locally(inbound: Inbound, provider: &ProviderConfig) -> bool {
    inbound == Inbound::CountTokens && !provider.apis().contains(&inbound.api())
}

/// What step `target` of the chain sends to `provider` (a token count it does not serve is
/// [`counts_locally`]'s). A Responses request to the Codex backend is shaped in place when it
/// can be ([`shape_for_codex_raw`]); otherwise the body becomes a JSON tree, which the `last`
/// step takes instead of copying. A streamed request to the Codex backend carries the
/// conversation's key as its `prompt_cache_key`.
///
/// # Errors
///
/// A request the provider's rules or the translation refuse (400).
pub async fn prepare(
    config: &Config,
    proxy: &Proxy,
    inbound: Inbound,
    request: &mut Request,
    last: bool,
    provider: &ProviderConfig,
    target: &Target,
) -> Result<Prepared, ApiError> {
    let is_codex = matches!(provider.kind, ProviderKind::OpenaiCodex { .. });
    let cache_key = request.conversation.as_ref().map(|c| c.key.as_str());
    if is_codex
        && inbound == Inbound::Responses
        && target.effort.is_none()
        && target.service_tier.is_none()
        && let Some(shaped) = shape_for_codex_raw(request.body.raw(), &target.model, cache_key)
    {
        if !shaped.dropped.is_empty() {
            tracing::debug!(dropped = ?shaped.dropped, "fields the Codex backend does not accept were removed");
        }
        return Ok(Prepared::Send(Outgoing {
            url: endpoint_of(proxy, provider, inbound.upstream_path())?,
            body: Bytes::from(shaped.body),
            session: shaped.prompt_cache_key,
            translation: None,
            api: Api::OpenaiResponses,
            client_stream: shaped.client_stream,
            reads_stream: true,
            is_codex,
        }));
    }
    let json = if last {
        Cow::Owned(request.body.take_value()?)
    } else {
        Cow::Borrowed(request.body.value()?)
    };
    let backend = if is_codex {
        Backend::Codex
    } else {
        Backend::Generic
    };
    // Responses to the Codex backend are shaped and streamed; its compaction is plain JSON.
    // Translated requests ask any provider for a stream, read as Responses events (see
    // `pivot::as_responses`).
    let (mut json, client_stream, translation, api) = if provider.apis().contains(&inbound.api()) {
        let reads_stream = is_codex && inbound == Inbound::Responses;
        let (json, client_stream) = native_body(json.into_owned(), &target.model, reads_stream)?;
        (json, client_stream, None, inbound.api())
    } else if let Some(api) = pivot::target_api(provider)
        && let Some(mut translation) = Translation::new(inbound, json, backend)?
    {
        let json = pivot::upstream_body(translation.take_body(&target.model), api)?;
        (json, translation.stream(), Some(translation), api)
    } else {
        return Ok(Prepared::Unsupported(untranslated(inbound, provider)));
    };
    let reads_stream = translation.is_some() || (is_codex && inbound == Inbound::Responses);
    // The client's own effort, fitted to the levels the model has.
    if is_codex && translation.is_some() {
        translated::fit_effort(proxy, config, &provider.id, &target.model, &mut json).await;
    }
    // The target's effort and tier, after translation so a route's pin has the last word.
    if !matches!(inbound, Inbound::Compact | Inbound::CountTokens) {
        apply::apply(&mut json, api, target, is_codex)
            .map_err(|e| ApiError::bad_request(ErrorCode::UnsupportedVariant, e.to_string()))?;
    }
    // One conversation, one cache key (the session headers follow it).
    if is_codex
        && reads_stream
        && let Some(conversation) = &request.conversation
    {
        affinity::stamp(&mut json, conversation);
    }
    let path = if translation.is_some() {
        pivot::upstream_path(api)
    } else {
        inbound.upstream_path()
    };
    // Written once into room for about the client's body (a translation changes its size
    // little), instead of growing by doubling.
    let mut body = Vec::with_capacity(request.body.raw().len() + 1024);
    if serde_json::to_writer(&mut body, &json).is_err() {
        body.clear();
    }
    Ok(Prepared::Send(Outgoing {
        url: endpoint_of(proxy, provider, path)?,
        body: Bytes::from(body),
        session: json
            .get("prompt_cache_key")
            .and_then(Value::as_str)
            .map(str::to_owned),
        translation,
        api,
        client_stream,
        reads_stream,
        is_codex,
    }))
}

/// `{base_url}/{path}` of `provider`, as [`Proxy::endpoint`] built it.
fn endpoint_of(
    proxy: &Proxy,
    provider: &ProviderConfig,
    path: &'static str,
) -> Result<http::Uri, ApiError> {
    proxy.endpoint(provider, path).map_err(|e| {
        ApiError::bad_gateway(
            ErrorCode::UpstreamFailed,
            format!("{} has an unusable base_url: {e}", provider.id),
        )
    })
}

/// The client's body for a provider that speaks its API: with the target's model, and shaped
/// for the Codex backend's Responses endpoint.
fn native_body(
    mut body: Value,
    model: &str,
    codex_stream: bool,
) -> Result<(Value, bool), ApiError> {
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

/// The credentials to try for a target, in order; one `None` when the client's own credential
/// travels (passthrough). Two or more accounts, none pinned, are ordered by the picker
/// ([`crate::picker`]: the provider's strategy, each account's live quota and cooldown, the
/// conversation's sticky account first); a configured key follows them.
#[must_use]
pub fn credentials(
    proxy: &Proxy,
    provider: &ProviderConfig,
    target: &Target,
    client_auth: bool,
    conversation: Option<&Affinity>,
    now: i64,
) -> Vec<Option<Credential>> {
    if client_auth {
        return vec![None];
    }
    if !picks_accounts(target) {
        return target.credentials.iter().cloned().map(Some).collect();
    }
    let labels = target.account_labels();
    let sticky = conversation.and_then(|c| proxy.sticky.get(&provider.id, &c.key, now));
    let rotation = if provider.strategy == Strategy::RoundRobin {
        proxy.book.next_rotation(&provider.id)
    } else {
        0
    };
    let pick = pick(proxy, provider, &labels, sticky.as_ref(), rotation, now);
    let others = target
        .credentials
        .iter()
        .filter(|c| !matches!(c, Credential::Account(_)))
        .cloned();
    pick.order
        .into_iter()
        .map(Credential::Account)
        .chain(others)
        .map(Some)
        .collect()
}

/// The picker's order of `labels` (in the configured order) for `provider` at `now`, from the
/// account book's live quota and cooldowns, `sticky` first while it can serve; `rotation` is the
/// round-robin offset.
#[must_use]
pub fn pick(
    proxy: &Proxy,
    provider: &ProviderConfig,
    labels: &[&Label],
    sticky: Option<&Label>,
    rotation: usize,
    now: i64,
) -> picker::Pick {
    let book = &proxy.book;
    let snapshots: Vec<_> = labels
        .iter()
        .map(|l| book.snapshot(&provider.id, l))
        .collect();
    let accounts: Vec<picker::Account<'_>> = labels
        .iter()
        .zip(&snapshots)
        .map(|(label, snapshot)| picker::Account {
            label,
            snapshot: snapshot.as_ref(),
            cooling_until: book.cooling_until(&provider.id, label, now),
        })
        .collect();
    picker::order(provider.strategy, &accounts, sticky, rotation, now)
}
