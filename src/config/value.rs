//! Value types used inside the configuration model: strings with `${VAR}` expansion, values parsed
//! from (expanded) strings, and one-or-many lists.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::expand::expand_current;

/// A string value after `${VAR}` expansion.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        expand_current(&raw).map(Text).map_err(de::Error::custom)
    }
}

/// A value written either natively (a YAML number) or as a string that is expanded and then
/// parsed with [`FromStr`], e.g. `callback_port: ${PORT:-1455}` or `base_url: https://…`.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<T>(pub T);

impl<'de, T> Deserialize<'de> for Parsed<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<T> V<T>
        where
            T: FromStr,
            T::Err: fmt::Display,
        {
            fn parse<E: de::Error>(s: &str) -> Result<Parsed<T>, E> {
                let expanded = expand_current(s).map_err(E::custom)?;
                expanded
                    .trim()
                    .parse()
                    .map(Parsed)
                    .map_err(|e| E::custom(format!("invalid value `{expanded}`: {e}")))
            }
        }
        impl<T> Visitor<'_> for V<T>
        where
            T: FromStr,
            T::Err: fmt::Display,
        {
            type Value = Parsed<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Self::parse(v)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Self::parse(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Self::parse(&v.to_string())
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Self::parse(&v.to_string())
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Self::parse(&v.to_string())
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// `x` or `[x, y]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr<T> {
            Many(Vec<T>),
            One(T),
        }
        // Untagged enums lose serde_yaml's error detail, so only fall back to them for lists.
        let value = serde_yaml::Value::deserialize(d)?;
        let repr = match value {
            serde_yaml::Value::Sequence(_) => Repr::<T>::deserialize(value),
            other => T::deserialize(other).map(Repr::One),
        };
        match repr {
            Ok(Repr::Many(v)) => Ok(OneOrMany(v)),
            Ok(Repr::One(v)) => Ok(OneOrMany(vec![v])),
            Err(e) => Err(de::Error::custom(e)),
        }
    }
}
