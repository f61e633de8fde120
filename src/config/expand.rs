//! `${VAR}` and `${VAR:-default}` expansion in configuration values.
//!
//! serde gives a `Deserialize` impl no context, so the environment used while one document is
//! being parsed is lent through a thread-local for the duration of [`with_env`]. Expansion then
//! happens inside deserialization, where serde_yaml still knows the key path and line of the value,
//! so an unset variable is reported at the exact place it was used.

use std::cell::RefCell;

use crate::env::Env;

thread_local! {
    static CURRENT: RefCell<Option<Env>> = const { RefCell::new(None) };
}

/// Runs `f` with `env` as the environment for expansions made by config deserializers.
pub(crate) fn with_env<T>(env: &Env, f: impl FnOnce() -> T) -> T {
    CURRENT.with(|c| *c.borrow_mut() = Some(env.clone()));
    let out = f();
    CURRENT.with(|c| *c.borrow_mut() = None);
    out
}

/// Expands `input` with the environment lent by [`with_env`] (an empty one outside it).
pub(crate) fn expand_current(input: &str) -> Result<String, ExpandError> {
    CURRENT.with(|c| match c.borrow().as_ref() {
        Some(env) => expand(input, env),
        None => expand(input, &Env::default()),
    })
}

/// Why a value could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// `${VAR}` named a variable that is not set.
    #[error("environment variable `{0}` is not set (use `${{{0}:-default}}` for a fallback)")]
    Unset(String),
    /// `${` without a closing `}`, or an invalid variable name.
    #[error("malformed variable reference `{0}`: use `${{NAME}}` or `${{NAME:-default}}`")]
    Malformed(String),
}

/// Expands `${VAR}` (unset is an error) and `${VAR:-default}` (default when unset or empty).
/// `$$` is a literal `$`; any other `$` is kept as it is.
pub fn expand(input: &str, env: &Env) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                return Err(ExpandError::Malformed(rest[pos..].to_owned()));
            };
            let reference = &body[..end];
            let (name, default) = match reference.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (reference, None),
            };
            if !is_var_name(name) {
                return Err(ExpandError::Malformed(format!("${{{reference}}}")));
            }
            match (env.get(name), default) {
                (Some(""), Some(d)) | (None, Some(d)) => out.push_str(d),
                (Some(v), _) => out.push_str(v),
                (None, None) => return Err(ExpandError::Unset(name.to_owned())),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::from_pairs([("SET", "value"), ("EMPTY", "")])
    }

    #[test]
    fn expands_set_variables() {
        assert_eq!(expand("a ${SET} b", &env()).as_deref(), Ok("a value b"));
        assert_eq!(expand("${SET}${SET}", &env()).as_deref(), Ok("valuevalue"));
    }

    #[test]
    fn default_applies_when_unset_or_empty() {
        assert_eq!(expand("${NOPE:-dflt}", &env()).as_deref(), Ok("dflt"));
        assert_eq!(expand("${EMPTY:-dflt}", &env()).as_deref(), Ok("dflt"));
        assert_eq!(expand("${SET:-dflt}", &env()).as_deref(), Ok("value"));
        assert_eq!(expand("${NOPE:-}", &env()).as_deref(), Ok(""));
    }

    #[test]
    fn unset_without_default_is_an_error() {
        assert_eq!(
            expand("${NOPE}", &env()),
            Err(ExpandError::Unset("NOPE".into()))
        );
    }

    #[test]
    fn literal_dollars_survive() {
        assert_eq!(expand("$$5 and $x", &env()).as_deref(), Ok("$5 and $x"));
    }

    #[test]
    fn malformed_references_are_refused() {
        assert!(matches!(
            expand("${OPEN", &env()),
            Err(ExpandError::Malformed(_))
        ));
        assert!(matches!(
            expand("${1BAD}", &env()),
            Err(ExpandError::Malformed(_))
        ));
    }
}
