//! PKCE (RFC 7636) and the OAuth `state`, as the Codex CLI makes them: a verifier of 64 random
//! bytes (base64url, no padding: 86 characters), its S256 challenge, and 32 random bytes of
//! state. Built on the `oauth2` crate's types; the verifier stays a secret.

use oauth2::{CsrfToken, PkceCodeChallenge, PkceCodeVerifier};
use secrecy::{ExposeSecret, SecretString};

/// Random bytes in the verifier (the Codex CLI uses 64).
const VERIFIER_BYTES: u32 = 64;
/// Random bytes in the state.
const STATE_BYTES: u32 = 32;

/// One login attempt's PKCE pair and state.
#[derive(Debug)]
pub struct Pkce {
    /// The code verifier, sent only to the token endpoint.
    pub verifier: SecretString,
    /// `BASE64URL(SHA256(verifier))`, sent in the authorize URL.
    pub challenge: String,
    /// The anti-CSRF state, echoed back on the callback.
    pub state: String,
}

impl Pkce {
    /// A fresh random verifier, its challenge and a state.
    #[must_use]
    pub fn generate() -> Self {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256_len(VERIFIER_BYTES);
        Pkce {
            verifier: SecretString::from(verifier.secret().clone()),
            challenge: challenge.as_str().to_owned(),
            state: CsrfToken::new_random_len(STATE_BYTES).secret().clone(),
        }
    }
}

/// The S256 challenge of a verifier.
#[must_use]
pub fn challenge_of(verifier: &SecretString) -> String {
    let verifier = PkceCodeVerifier::new(verifier.expose_secret().to_owned());
    PkceCodeChallenge::from_code_verifier_sha256(&verifier)
        .as_str()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        let verifier = SecretString::from("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            challenge_of(&verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn generated_values_have_codex_shapes() {
        let a = Pkce::generate();
        let b = Pkce::generate();
        assert_eq!(a.verifier.expose_secret().len(), 86);
        assert_eq!(a.state.len(), 43);
        assert_eq!(a.challenge, challenge_of(&a.verifier));
        assert!(!a.challenge.contains('='));
        assert_ne!(a.state, b.state);
        assert_ne!(a.verifier.expose_secret(), b.verifier.expose_secret());
    }
}
