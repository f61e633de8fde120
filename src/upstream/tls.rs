//! The client TLS setup every upstream connection uses: rustls with ring and the platform's
//! verifier, built once per process (reading the system's certificates is costly) and shared
//! by the HTTP pools and the WebSocket connector.

use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;

/// The shared setup, without ALPN (each connector adds the protocols it speaks); the error
/// says why TLS cannot be set up on this machine.
pub(super) fn client_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            use rustls_platform_verifier::BuilderVerifierExt;
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .and_then(BuilderVerifierExt::with_platform_verifier)
                .map(|b| Arc::new(b.with_no_client_auth()))
                .map_err(|e| format!("cannot set up TLS for upstream requests: {e}"))
        })
        .clone()
}
