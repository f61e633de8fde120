//! Sharing the Codex CLI's session (spec §4): find it in `$CODEX_HOME` (default `~/.codex`) as
//! `cli_auth_credentials_store` in `config.toml` says — `file`: `auth.json`; `keyring`: the
//! keyring item service `Codex Auth`, account `cli|<first 16 hex of sha256(canonical
//! CODEX_HOME)>`; `auto`: keyring, then file — read its ChatGPT tokens, and write refreshed
//! tokens back to the same place in the same format (atomically, mode 0600, every other key
//! kept, `last_refresh` updated), so the Codex CLI and bitrouter keep one rotating session
//! instead of burning each other's refresh token (spec §3.5).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::Digest;

use super::jwt;
use super::oauth::TokenSet;
use crate::env::{self, Env};
use crate::paths;
use crate::store::{
    self, Backend, Credential, CredentialKey, CredentialKind, KEYRING_TIMEOUT, Source, StoreError,
};

/// The Codex CLI's keyring service.
pub const CODEX_KEYRING_SERVICE: &str = "Codex Auth";

/// Why the Codex CLI session cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CodexError {
    /// Neither `$CODEX_HOME` nor a home directory is known.
    #[error("cannot find the Codex CLI's home: neither $CODEX_HOME nor a home directory is set")]
    NoHome,
    /// No session where the Codex CLI keeps it.
    #[error("no Codex CLI session in {place}")]
    NoSession {
        /// Where it was looked for.
        place: String,
    },
    /// The session is an API key, not a ChatGPT sign-in.
    #[error("the Codex CLI session in {place} uses an API key, not a ChatGPT sign-in")]
    ApiKeySession {
        /// Where it is.
        place: String,
    },
    /// The Codex CLI keeps its session somewhere bitrouter cannot read.
    #[error("the Codex CLI's credential store `{store}` is not supported")]
    Unsupported {
        /// The store setting (or `auth_mode`).
        store: String,
    },
    /// The session or `config.toml` is not in the expected format.
    #[error("the Codex CLI session in {place} is malformed: {message}")]
    Malformed {
        /// Where it is.
        place: String,
        /// What is wrong (never a value).
        message: String,
    },
    /// A file could not be read or written.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The OS keyring failed.
    #[error(transparent)]
    Keyring(#[from] StoreError),
}

/// How the Codex CLI stores its session (`cli_auth_credentials_store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodexStoreMode {
    /// `auth.json` (the default).
    File,
    /// The OS keyring only.
    Keyring,
    /// Keyring first, then `auth.json`.
    Auto,
}

/// Where a Codex CLI session lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `$CODEX_HOME/auth.json`.
    File(PathBuf),
    /// The keyring item of service `Codex Auth` with this account.
    Keyring(String),
}

impl Location {
    /// The credential source this location stands for.
    #[must_use]
    pub fn source(&self) -> Source {
        match self {
            Location::File(_) => Source::CodexAuthJson,
            Location::Keyring(_) => Source::CodexKeyring,
        }
    }

    /// For messages.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Location::File(path) => path.display().to_string(),
            Location::Keyring(account) => {
                format!("the OS keyring (service {CODEX_KEYRING_SERVICE}, account {account})")
            }
        }
    }
}

/// A ChatGPT session read from the Codex CLI's store.
#[derive(Debug, Clone)]
pub struct Session {
    /// Where it was read.
    pub location: Location,
    /// The whole document, for writing back with every other key intact.
    doc: Value,
    /// `tokens.access_token`.
    pub access_token: SecretString,
    /// `tokens.refresh_token`.
    pub refresh_token: SecretString,
    /// `tokens.id_token`.
    pub id_token: Option<SecretString>,
    /// `tokens.account_id`, else the id_token's `chatgpt_account_id`.
    pub account_id: Option<String>,
    /// `last_refresh` (unix seconds).
    pub last_refresh: Option<i64>,
}

impl Session {
    /// The access token's claims.
    #[must_use]
    pub fn access_claims(&self) -> jwt::Claims {
        jwt::claims(self.access_token.expose_secret())
    }

    /// The id_token's claims (empty without one).
    #[must_use]
    pub fn id_claims(&self) -> jwt::Claims {
        self.id_token
            .as_ref()
            .map(|t| jwt::claims(t.expose_secret()))
            .unwrap_or_default()
    }

    /// Whether both tokens equal `other`'s.
    #[must_use]
    pub fn same_tokens(&self, other: &Session) -> bool {
        self.access_token.expose_secret() == other.access_token.expose_secret()
            && self.refresh_token.expose_secret() == other.refresh_token.expose_secret()
    }
}

/// One Codex CLI home and the keyring to read it from.
#[derive(Debug, Clone)]
pub struct CodexHome {
    dir: PathBuf,
    keyring: Option<Backend>,
}

impl CodexHome {
    /// `$CODEX_HOME`, else `~/.codex`.
    pub fn from_env(env: &Env) -> Result<Self, CodexError> {
        let dir = env
            .absolute_path(env::CODEX_HOME)
            .or_else(|| paths::home_dir(env).map(|h| h.join(".codex")))
            .ok_or(CodexError::NoHome)?;
        Ok(CodexHome::at(dir))
    }

    /// The home at `dir` (canonicalised when it exists, as the Codex CLI does).
    #[must_use]
    pub fn at(dir: PathBuf) -> Self {
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        CodexHome { dir, keyring: None }
    }

    /// Uses this keyring backend instead of the OS one (tests use the in-memory mock).
    #[must_use]
    pub fn with_keyring(mut self, backend: Backend) -> Self {
        self.keyring = Some(backend);
        self
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `auth.json`.
    #[must_use]
    pub fn auth_json(&self) -> PathBuf {
        self.dir.join("auth.json")
    }

    /// `cli|` + the first 16 hex characters of SHA-256 over the canonical home path.
    #[must_use]
    pub fn keyring_account(&self) -> String {
        let digest = sha2::Sha256::digest(self.dir.to_string_lossy().as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("cli|{}", &hex[..16])
    }

    /// The location a linked credential with this source reads from.
    #[must_use]
    pub fn location(&self, source: Source) -> Location {
        match source {
            Source::CodexKeyring => Location::Keyring(self.keyring_account()),
            Source::CodexAuthJson | Source::Login | Source::ApiKey => {
                Location::File(self.auth_json())
            }
        }
    }

    /// `cli_auth_credentials_store` from `config.toml` (absent: `file`); refuses the encrypted
    /// `secret_auth_storage` backend and anything unknown.
    pub fn mode(&self) -> Result<CodexStoreMode, CodexError> {
        let path = self.dir.join("config.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(CodexStoreMode::File);
            }
            Err(source) => {
                return Err(CodexError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        let config: toml::Table = toml::from_str(&text).map_err(|e| CodexError::Malformed {
            place: path.display().to_string(),
            message: e.message().to_owned(),
        })?;
        let secret_storage = config
            .get("features")
            .and_then(|f| f.get("secret_auth_storage"))
            .and_then(toml::Value::as_bool)
            .unwrap_or(false);
        if secret_storage {
            return Err(CodexError::Unsupported {
                store: "secret_auth_storage".into(),
            });
        }
        match config
            .get("cli_auth_credentials_store")
            .map(|v| v.as_str().unwrap_or("(not a string)"))
        {
            None | Some("file") => Ok(CodexStoreMode::File),
            Some("keyring") => Ok(CodexStoreMode::Keyring),
            Some("auto") => Ok(CodexStoreMode::Auto),
            Some(other) => Err(CodexError::Unsupported {
                store: other.to_owned(),
            }),
        }
    }

    /// The session where the Codex CLI keeps it now (for `--import`).
    pub fn find(&self) -> Result<Session, CodexError> {
        let file = Location::File(self.auth_json());
        let keyring = Location::Keyring(self.keyring_account());
        let (order, place): (Vec<&Location>, String) = match self.mode()? {
            CodexStoreMode::File => (vec![&file], file.describe()),
            CodexStoreMode::Keyring => (vec![&keyring], keyring.describe()),
            CodexStoreMode::Auto => (
                vec![&keyring, &file],
                format!("{} or {}", keyring.describe(), file.describe()),
            ),
        };
        for location in order {
            match self.read(location) {
                Ok(Some(session)) => return Ok(session),
                Ok(None) => {}
                // `auto`: an unreachable keyring means "look in the file".
                Err(CodexError::Keyring(e)) if self.mode()? == CodexStoreMode::Auto => {
                    tracing::debug!(error = %e, "the Codex keyring is unavailable; trying auth.json");
                }
                Err(e) => return Err(e),
            }
        }
        Err(CodexError::NoSession { place })
    }

    /// Reads the session at `location`; `None` when there is none.
    pub fn read(&self, location: &Location) -> Result<Option<Session>, CodexError> {
        let text = match location {
            Location::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(source) => {
                    return Err(CodexError::Io {
                        action: "read",
                        path: path.clone(),
                        source,
                    });
                }
            },
            Location::Keyring(account) => {
                let backend = self.backend()?;
                let account = account.clone();
                let found = store::keyring_call(KEYRING_TIMEOUT, "read", move || {
                    backend
                        .build(CODEX_KEYRING_SERVICE, &account, None)?
                        .get_password()
                })?;
                match found {
                    Some(text) => text,
                    None => return Ok(None),
                }
            }
        };
        parse(location.clone(), &text).map(Some)
    }

    /// Writes a refresh's tokens back to where `session` came from: only the fields the
    /// response carried change, `last_refresh` becomes now (RFC 3339 UTC), everything else stays.
    pub fn write_back(
        &self,
        session: &Session,
        tokens: TokenSet,
        now: i64,
    ) -> Result<Session, CodexError> {
        let mut doc = session.doc.clone();
        let malformed = |message: &str| CodexError::Malformed {
            place: session.location.describe(),
            message: message.to_owned(),
        };
        let Some(obj) = doc.as_object_mut() else {
            return Err(malformed("not a JSON object"));
        };
        let Some(token_obj) = obj.get_mut("tokens").and_then(Value::as_object_mut) else {
            return Err(malformed("no `tokens` object"));
        };
        token_obj.insert(
            "access_token".into(),
            Value::String(tokens.access_token.expose_secret().to_owned()),
        );
        if let Some(rt) = &tokens.refresh_token {
            token_obj.insert(
                "refresh_token".into(),
                Value::String(rt.expose_secret().to_owned()),
            );
        }
        if let Some(id) = &tokens.id_token {
            token_obj.insert(
                "id_token".into(),
                Value::String(id.expose_secret().to_owned()),
            );
        }
        obj.insert("last_refresh".into(), Value::String(rfc3339(now)));
        match &session.location {
            Location::File(path) => {
                let text =
                    serde_json::to_string_pretty(&doc).map_err(|e| malformed(&e.to_string()))?;
                write_private_atomic(path, text.as_bytes())?;
            }
            Location::Keyring(account) => {
                let text = serde_json::to_string(&doc).map_err(|e| malformed(&e.to_string()))?;
                let backend = self.backend()?;
                let account = account.clone();
                store::keyring_call(KEYRING_TIMEOUT, "write", move || {
                    backend
                        .build(CODEX_KEYRING_SERVICE, &account, None)?
                        .set_password(&text)
                })?;
            }
        }
        let text = doc.to_string();
        parse(session.location.clone(), &text)
    }

    fn backend(&self) -> Result<Backend, CodexError> {
        if let Some(backend) = &self.keyring {
            return Ok(backend.clone());
        }
        store::keyring_call(KEYRING_TIMEOUT, "open", store::platform_backend)?.ok_or_else(|| {
            CodexError::Keyring(StoreError::Keyring {
                action: "open",
                message: "no credential store".into(),
            })
        })
    }
}

/// A credential linked to the Codex CLI session: no tokens of its own, only what to show and
/// where to read them.
pub fn linked_credential(key: CredentialKey, home: &CodexHome, session: &Session) -> Credential {
    let access = session.access_claims();
    let id = session.id_claims();
    Credential {
        key,
        kind: CredentialKind::Oauth,
        access_token: Arc::new(SecretString::from(String::new())),
        refresh_token: None,
        id_token: None,
        expires_at: access.expires_at,
        account_id: session.account_id.clone(),
        email: id.email.or(access.email),
        plan: access.plan.or(id.plan),
        last_refresh: session.last_refresh,
        source: session.location.source(),
        needs_login: None,
        codex_home: Some(home.dir().to_path_buf()),
    }
}

/// Parses an `auth.json` document and checks it is a usable ChatGPT sign-in.
fn parse(location: Location, text: &str) -> Result<Session, CodexError> {
    let place = location.describe();
    let malformed = |message: &str| CodexError::Malformed {
        place: place.clone(),
        message: message.to_owned(),
    };
    if text.starts_with("CODEX_CHUNKED:") {
        return Err(CodexError::Unsupported {
            store: "chunked keyring entries".into(),
        });
    }
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        malformed(&format!(
            "not valid JSON (line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    if !doc.is_object() {
        return Err(malformed("not a JSON object"));
    }
    let tokens = doc.get("tokens").filter(|t| !t.is_null());
    let has_api_key = doc
        .get("OPENAI_API_KEY")
        .is_some_and(|k| k.as_str().is_some_and(|k| !k.is_empty()));
    match doc.get("auth_mode").and_then(Value::as_str) {
        Some("chatgpt") => {}
        Some("apikey") => return Err(CodexError::ApiKeySession { place }),
        Some(other) => {
            return Err(CodexError::Unsupported {
                store: format!("auth_mode {other}"),
            });
        }
        // Legacy files have no auth_mode: an API key and no tokens means API-key auth.
        None if tokens.is_none() && has_api_key => {
            return Err(CodexError::ApiKeySession { place });
        }
        None => {}
    }
    let Some(tokens) = tokens else {
        return Err(malformed("no `tokens`"));
    };
    let text_of = |key: &str| tokens.get(key).and_then(Value::as_str).map(str::to_owned);
    let access = text_of("access_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| malformed("no `tokens.access_token`"))?;
    let refresh = text_of("refresh_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            malformed(
                "no `tokens.refresh_token` (tokens supplied by another app cannot be refreshed)",
            )
        })?;
    let id_token = text_of("id_token").filter(|t| !t.is_empty());
    let account_id = text_of("account_id")
        .or_else(|| id_token.as_deref().and_then(|t| jwt::claims(t).account_id));
    let last_refresh = doc
        .get("last_refresh")
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp());
    Ok(Session {
        location,
        doc,
        access_token: SecretString::from(access),
        refresh_token: SecretString::from(refresh),
        id_token: id_token.map(SecretString::from),
        account_id,
        last_refresh,
    })
}

/// `2026-08-07T10:11:12Z`.
#[must_use]
pub fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0).map_or_else(
        || "1970-01-01T00:00:00Z".to_owned(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// Replaces `path` atomically with a 0600 file holding `bytes`.
fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<(), CodexError> {
    use std::io::Write;
    let io = |action, source| CodexError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .ok_or_else(|| io("write", std::io::Error::other("no parent directory")))?;
    store::create_private_dir(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".auth.json.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| io("write", e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io("write", e))?;
    }
    tmp.write_all(bytes).map_err(|e| io("write", e))?;
    tmp.as_file().sync_all().map_err(|e| io("write", e))?;
    tmp.persist(path).map_err(|e| io("replace", e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_account_is_cli_and_16_hex() {
        let home = CodexHome::at(PathBuf::from("/nonexistent/codex-home"));
        let account = home.keyring_account();
        assert!(account.starts_with("cli|"));
        assert_eq!(account.len(), 4 + 16);
        let digest = sha2::Sha256::digest(b"/nonexistent/codex-home");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(account, format!("cli|{}", &hex[..16]));
    }

    #[test]
    fn rfc3339_round_trip() {
        assert_eq!(rfc3339(1_786_097_472), "2026-08-07T10:11:12Z");
        let parsed = chrono::DateTime::parse_from_rfc3339("2026-08-07T10:11:12.123456789Z")
            .unwrap()
            .timestamp();
        assert_eq!(parsed, 1_786_097_472);
    }
}
