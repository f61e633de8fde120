//! Tests for the shared error and usage types.

use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;

fn status_of(error: serde_json::Value) -> u16 {
    UpstreamError::from_error_object(&error).status
}

#[test]
fn upstream_error_status_follows_type_then_code() {
    assert_eq!(status_of(json!({"type": "usage_limit_reached"})), 429);
    assert_eq!(status_of(json!({"type": "usage_not_included"})), 429);
    assert_eq!(status_of(json!({"code": "rate_limit_exceeded"})), 429);
    assert_eq!(status_of(json!({"type": "invalid_request_error"})), 400);
    assert_eq!(status_of(json!({"code": "context_length_exceeded"})), 400);
    assert_eq!(status_of(json!({"type": "authentication_error"})), 401);
    assert_eq!(status_of(json!({"code": "server_is_overloaded"})), 503);
    assert_eq!(status_of(json!({"type": "server_error"})), 502);
    assert_eq!(status_of(json!({})), 502);
    assert_eq!(status_of(json!({"type": "error", "code": "weird"})), 502);
}

#[test]
fn upstream_error_prefers_an_explicit_status() {
    assert_eq!(
        status_of(json!({"type": "server_error", "status_code": 504})),
        504
    );
    assert_eq!(
        status_of(json!({"type": "invalid_request_error", "status": 200})),
        400
    );
}

#[test]
fn upstream_error_fills_kind_and_message_when_absent() {
    assert_eq!(
        UpstreamError::from_error_object(&json!(null)),
        UpstreamError {
            status: 502,
            kind: "server_error".to_owned(),
            code: None,
            message: "upstream reported an error without a message".to_owned(),
            param: None,
            resets_at: None,
            resets_in_seconds: None,
        }
    );
}

#[test]
fn upstream_error_from_translate_error_is_400_with_param() {
    let err = UpstreamError::from(&TranslateError::invalid(
        "messages[1].role",
        "unknown role `x`",
    ));
    assert_eq!(err.status, 400);
    assert_eq!(err.kind, "invalid_request_error");
    assert_eq!(err.param.as_deref(), Some("messages[1].role"));
    assert_eq!(err.message, "invalid `messages[1].role`: unknown role `x`");
    assert!(!err.is_retryable());
    assert!(UpstreamError::stream_incomplete().is_retryable());
}

#[test]
fn usage_reads_details_and_defaults_total() {
    let response = json!({"usage": {"input_tokens": 10, "output_tokens": 5,
        "input_tokens_details": {"cached_tokens": 3}, "output_tokens_details": {"reasoning_tokens": 2}}});
    assert_eq!(
        Usage::from_response(&response),
        Some(Usage {
            input_tokens: 10,
            cached_tokens: 3,
            output_tokens: 5,
            reasoning_tokens: 2,
            total_tokens: 15,
        })
    );
    assert_eq!(Usage::from_response(&json!({"usage": null})), None);
}

#[test]
fn finish_reads_status_and_incomplete_reason() {
    assert_eq!(
        Finish::from_response(&json!({"status": "completed"})),
        Finish::Completed
    );
    assert_eq!(
        Finish::from_response(
            &json!({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}})
        ),
        Finish::MaxTokens
    );
    assert_eq!(
        Finish::from_response(
            &json!({"status": "incomplete", "incomplete_details": {"reason": "content_filter"}})
        ),
        Finish::ContentFilter
    );
}
