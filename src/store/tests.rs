//! The store contract, run against every backend (the keyring through `keyring_core`'s
//! in-memory mock), and the token file's safety rules.

use std::path::Path;
use std::sync::Arc;

use pretty_assertions::assert_eq;
use secrecy::{ExposeSecret, SecretString};

use super::*;

pub(crate) fn key(provider: &str, label: &str) -> CredentialKey {
    CredentialKey::new(provider.parse().unwrap(), label.parse().unwrap())
}

pub(crate) fn oauth(provider: &str, label: &str, access: &str) -> Credential {
    Credential {
        key: key(provider, label),
        kind: CredentialKind::Oauth,
        access_token: SecretString::from(access).into(),
        refresh_token: Some(SecretString::from(format!("rt-{access}"))),
        id_token: None,
        expires_at: Some(1_790_000_000),
        account_id: Some("acc-1".into()),
        email: Some("you@example.com".into()),
        plan: Some("pro".into()),
        last_refresh: Some(1_789_000_000),
        source: Source::Login,
        needs_login: None,
        codex_home: None,
    }
}

fn mock_keyring(dir: &Path) -> KeyringStore {
    KeyringStore::with_backend(
        keyring_core::mock::Store::new().unwrap(),
        dir.join("oauth-tokens.json.lock"),
    )
}

/// Save, load, list, overwrite and delete behave the same on every backend.
fn contract(store: &dyn CredentialStore) {
    assert!(store.list().unwrap().is_empty());
    assert!(store.load(&key("openai-codex", "work")).unwrap().is_none());
    assert!(
        store
            .load_shared(&key("openai-codex", "work"))
            .unwrap()
            .is_none()
    );

    let lock = store.lock().unwrap();
    store
        .save(&lock, &oauth("openai-codex", "work", "a1"))
        .unwrap();
    store
        .save(&lock, &oauth("openai-codex", "default", "b1"))
        .unwrap();
    store
        .save(&lock, &oauth("openai", "default", "c1"))
        .unwrap();
    drop(lock);

    let found = store.load(&key("openai-codex", "work")).unwrap().unwrap();
    assert_eq!(found.credential.access_token.expose_secret(), "a1");
    assert_eq!(found.credential.email.as_deref(), Some("you@example.com"));
    let keys: Vec<String> = store
        .list()
        .unwrap()
        .iter()
        .map(|s| s.credential.key.to_string())
        .collect();
    assert_eq!(
        keys,
        [
            "openai:default",
            "openai-codex:default",
            "openai-codex:work"
        ]
    );

    let next = update(store, &key("openai-codex", "work"), |c| {
        let mut c = c.unwrap();
        c.access_token = SecretString::from("a2").into();
        Some(c)
    })
    .unwrap();
    assert!(next.is_some());
    let found = store.load(&key("openai-codex", "work")).unwrap().unwrap();
    assert_eq!(found.credential.access_token.expose_secret(), "a2");
    // The shared answer is the same credential, and it follows the update too.
    let shared = store
        .load_shared(&key("openai-codex", "work"))
        .unwrap()
        .unwrap();
    assert_eq!(shared.key, found.credential.key);
    assert_eq!(shared.access_token.expose_secret(), "a2");
    assert_eq!(shared.email.as_deref(), Some("you@example.com"));

    let lock = store.lock().unwrap();
    assert!(
        store
            .delete(&lock, &key("openai-codex", "work"))
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .delete(&lock, &key("openai-codex", "work"))
            .unwrap()
            .is_none()
    );
    drop(lock);
    assert!(store.load(&key("openai-codex", "work")).unwrap().is_none());
    assert!(
        store
            .load_shared(&key("openai-codex", "work"))
            .unwrap()
            .is_none()
    );
    assert_eq!(store.list().unwrap().len(), 2);
}

#[test]
fn file_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(&FileStore::new(dir.path().join("oauth-tokens.json")));
}

#[test]
fn keyring_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(&mock_keyring(dir.path()));
}

#[test]
fn auto_store_meets_the_contract_with_and_without_keyring() {
    let dir = tempfile::tempdir().unwrap();
    let file = FileStore::new(dir.path().join("oauth-tokens.json"));
    let auto = AutoStore::new(file, Some(mock_keyring(dir.path())), None);
    contract(&auto);
    assert!(
        !dir.path().join("oauth-tokens.json").exists() || {
            // Only the keyring was written.
            let text = std::fs::read_to_string(dir.path().join("oauth-tokens.json")).unwrap();
            !text.contains("\"a1\"")
        }
    );

    let dir = tempfile::tempdir().unwrap();
    let file = FileStore::new(dir.path().join("oauth-tokens.json"));
    let auto = AutoStore::new(file, None, Some("no D-Bus session".into()));
    let notice = auto.notice().unwrap();
    assert!(notice.contains("no D-Bus session"), "{notice}");
    assert!(auto.notice().is_none(), "the fallback is announced once");
    contract(&auto);
    let saved = {
        let lock = auto.lock().unwrap();
        auto.save(&lock, &oauth("openai-codex", "x", "t")).unwrap()
    };
    assert_eq!(saved, StoreName::File);
}

#[test]
fn auto_store_reports_which_store_holds_each_credential() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oauth-tokens.json");
    let file = FileStore::new(path.clone());
    let lock = file.lock().unwrap();
    file.save(&lock, &oauth("openai-codex", "old", "f"))
        .unwrap();
    drop(lock);
    let auto = AutoStore::new(FileStore::new(path), Some(mock_keyring(dir.path())), None);
    let lock = auto.lock().unwrap();
    assert_eq!(
        auto.save(&lock, &oauth("openai-codex", "new", "k"))
            .unwrap(),
        StoreName::Keyring
    );
    drop(lock);
    let stores: Vec<(String, StoreName)> = auto
        .list()
        .unwrap()
        .into_iter()
        .map(|s| (s.credential.key.label.to_string(), s.store))
        .collect();
    assert_eq!(
        stores,
        [
            ("new".to_owned(), StoreName::Keyring),
            ("old".to_owned(), StoreName::File)
        ]
    );
}

#[test]
fn keyring_layout_is_service_bitrouter_account_provider_label() {
    let dir = tempfile::tempdir().unwrap();
    let backend: keyring::Backend = keyring_core::mock::Store::new().unwrap();
    let store = KeyringStore::with_backend(Arc::clone(&backend), dir.path().join("l.lock"));
    let lock = store.lock().unwrap();
    store
        .save(&lock, &oauth("openai-codex", "work", "tok"))
        .unwrap();
    let entry = backend
        .build("bitrouter", "openai-codex:work", None)
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&entry.get_password().unwrap()).unwrap();
    assert_eq!(value["access_token"], "tok");
    assert_eq!(value["provider"], "openai-codex");
    let index = backend.build("bitrouter", "index", None).unwrap();
    assert_eq!(index.get_password().unwrap(), r#"["openai-codex:work"]"#);
}

#[test]
fn token_file_is_private_and_in_the_contract_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("oauth-tokens.json");
    let store = FileStore::new(path.clone());
    let lock = store.lock().unwrap();
    store
        .save(&lock, &oauth("openai-codex", "work", "tok"))
        .unwrap();
    drop(lock);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"version": 1, "credentials": [{
            "provider": "openai-codex", "label": "work", "kind": "oauth",
            "access_token": "tok", "refresh_token": "rt-tok", "id_token": null,
            "expires_at": 1_790_000_000, "account_id": "acc-1", "email": "you@example.com",
            "plan": "pro", "last_refresh": 1_789_000_000, "source": "login", "needs_login": null
        }]})
    );
}

#[test]
fn token_file_seeded_by_hand_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oauth-tokens.json");
    write_private(
        &path,
        r#"{"version": 1, "credentials": [
            {"provider": "openai-codex", "label": "work", "kind": "oauth", "access_token": "at",
             "source": "login"},
            {"provider": "openai", "label": "default", "kind": "api_key", "access_token": "sk",
             "refresh_token": null, "source": "api-key", "needs_login": null, "future": 1}
        ]}"#,
    );
    let store = FileStore::new(path);
    let all = store.list().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].credential.kind, CredentialKind::ApiKey);
    assert_eq!(all[0].credential.source, Source::ApiKey);
    assert_eq!(all[1].credential.kind, CredentialKind::Oauth);
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn assert_refused_and_untouched(text: &str, expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oauth-tokens.json");
    write_private(&path, text);
    let store = FileStore::new(path.clone());
    let err = store.list().unwrap_err().to_string();
    assert!(err.contains(expect), "{err}");
    let lock = store.lock().unwrap();
    assert!(store.save(&lock, &oauth("openai-codex", "x", "t")).is_err());
    assert!(store.delete(&lock, &key("openai-codex", "x")).is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn corrupt_token_file_is_refused_and_never_overwritten() {
    assert_refused_and_untouched("{not json", "corrupt");
    assert_refused_and_untouched(r#"{"credentials": []}"#, "missing `version`");
    assert_refused_and_untouched(r#"{"version": 2, "credentials": []}"#, "version 2");
    assert_refused_and_untouched(
        r#"{"version": 1, "credentials": [{"provider": "openai-codex", "label": "a",
            "kind": "magic", "access_token": "secret-token", "source": "login"}]}"#,
        "unknown `kind`",
    );
    assert_refused_and_untouched(
        r#"{"version": 1, "credentials": [{"provider": "openai-codex", "label": "a",
            "kind": "oauth", "access_token": "x", "expires_at": "secret-token",
            "source": "login"}]}"#,
        "wrong type",
    );
}

#[test]
fn corrupt_file_error_never_echoes_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oauth-tokens.json");
    write_private(
        &path,
        r#"{"version": 1, "credentials": [{"provider": "openai-codex", "label": "a",
            "kind": "oauth", "access_token": 5, "refresh_token": "secret-token",
            "expires_at": "secret-token", "source": "login"}]}"#,
    );
    let err = FileStore::new(path).list().unwrap_err().to_string();
    assert!(!err.contains("secret-token"), "{err}");
}

#[cfg(unix)]
#[test]
fn group_readable_token_file_is_refused_and_never_overwritten() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oauth-tokens.json");
    let text = r#"{"version": 1, "credentials": []}"#;
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = FileStore::new(path.clone());
    let err = store.list().unwrap_err();
    assert!(
        matches!(err, StoreError::Permissions { mode: 0o644, .. }),
        "{err}"
    );
    let lock = store.lock().unwrap();
    assert!(store.save(&lock, &oauth("openai-codex", "x", "t")).is_err());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
}

#[test]
fn concurrent_updates_from_threads_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oauth-tokens.json");
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                // Separate stores, as separate processes would have.
                let store = FileStore::new(path);
                for j in 0..5 {
                    let label = format!("t{i}-{j}");
                    update(&store, &key("openai-codex", &label), |_| {
                        Some(oauth("openai-codex", &label, "x"))
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(FileStore::new(path).list().unwrap().len(), 40);
}

#[test]
fn file_reads_notice_replacement_by_another_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oauth-tokens.json");
    let reader = FileStore::new(path.clone());
    let writer = FileStore::new(path);
    let lock = writer.lock().unwrap();
    writer
        .save(&lock, &oauth("openai-codex", "a", "one"))
        .unwrap();
    assert_eq!(reader.list().unwrap().len(), 1);
    writer.delete(&lock, &key("openai-codex", "a")).unwrap();
    assert!(reader.list().unwrap().is_empty());
}

#[test]
fn debug_output_redacts_tokens() {
    let text = format!("{:?}", oauth("openai-codex", "a", "very-secret-token"));
    assert!(!text.contains("very-secret-token"), "{text}");
}
