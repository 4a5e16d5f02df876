//! Whole numbers as the API reads them, in bodies and in query strings.
//!
//! JSON Schema, and so the OpenAPI document, calls `7.0` an integer: a field
//! declared as an integer takes it as 7, where serde alone would refuse it.
//! And a field's range is its one message: `limit` says "must be 0 to
//! 1000000" for 2000000 and for 4294967296 alike, not a second message for
//! numbers past the Rust type.
//!
//! Each function is a serde `deserialize_with` helper for a field in
//! `LO..=HI`, e.g. `#[serde(deserialize_with = "number::whole::<_, _, 0, 1_000_000>")]`;
//! the field's `#[schema(minimum = LO, maximum = HI)]` says the same range in the document.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, Visitor};

/// The largest whole number the document's integers declare: `i64::MAX`,
/// the top of OpenAPI's `int64` (many clients read integers as signed).
pub const MAX_WHOLE: u64 = i64::MAX as u64;

/// A whole number in `LO..=HI`, from a JSON number (`7` or `7.0`).
pub fn whole<'de, D, T, const LO: u64, const HI: u64>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    d.deserialize_any(Whole::<T, LO, HI>(PhantomData))
}

/// [`whole`], or nothing (the field absent or `null`).
pub fn whole_opt<'de, D, T, const LO: u64, const HI: u64>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    d.deserialize_option(Maybe(Whole::<T, LO, HI>(PhantomData)))
}

/// A whole number in `LO..=HI` written as text (a query parameter: `7` or `7.0`), or nothing.
pub fn whole_text_opt<'de, D, T, const LO: u64, const HI: u64>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let Some(text) = <Option<String> as serde::Deserialize>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = Whole::<T, LO, HI>(PhantomData);
    match text.trim().parse::<u64>() {
        Ok(v) => whole.visit_u64(v),
        Err(_) => match text.trim().parse::<f64>() {
            Ok(v) => whole.visit_f64(v),
            Err(_) => Err(de::Error::custom(format!(
                "must be a whole number {LO} to {HI}, got {text:?}"
            ))),
        },
    }
    .map(Some)
}

/// Reads a whole number in `LO..=HI` as a `T`.
struct Whole<T, const LO: u64, const HI: u64>(PhantomData<T>);

impl<T, const LO: u64, const HI: u64> Whole<T, LO, HI> {
    fn out_of_range<E: de::Error>(got: impl fmt::Display) -> E {
        E::custom(format!("must be {LO} to {HI}, got {got}"))
    }
}

impl<'de, T: TryFrom<u64>, const LO: u64, const HI: u64> Visitor<'de> for Whole<T, LO, HI> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a whole number {LO} to {HI}")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        if !(LO..=HI).contains(&v) {
            return Err(Self::out_of_range(v));
        }
        T::try_from(v).map_err(|_| Self::out_of_range(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(Self::out_of_range(v)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        if v.fract() != 0.0 || !v.is_finite() {
            return Err(E::custom(format!(
                "must be a whole number {LO} to {HI}, got {v}"
            )));
        }
        // Whole, so the cast is exact below 2^64 and saturates above it
        // (still out of range: HI is a u64).
        if v < 0.0 || v >= u64::MAX as f64 {
            return Err(Self::out_of_range(v));
        }
        self.visit_u64(v as u64)
    }
}

/// A value of `V`, or nothing for `null`.
struct Maybe<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for Maybe<V> {
    type Value = Option<V::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self.0).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::whole::<_, _, 0, 1_000_000>")]
        limit: u32,
        #[serde(default, deserialize_with = "super::whole_opt::<_, _, 1, 10>")]
        size: Option<u32>,
    }

    fn read(json: &str) -> Result<Body, String> {
        serde_json::from_str::<Body>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn whole_floats_are_integers_and_every_miss_names_the_range() {
        assert_eq!(read(r#"{"limit": 7.0}"#).unwrap().limit, 7);
        assert_eq!(
            read(r#"{"limit": 7, "size": 10.0}"#).unwrap().size,
            Some(10)
        );
        assert_eq!(read(r#"{"limit": 7, "size": null}"#).unwrap().size, None);
        assert_eq!(read(r#"{"limit": 7}"#).unwrap().size, None);
        for (json, got) in [
            (r#"{"limit": 1000001}"#, "1000001"),
            (r#"{"limit": 4294967295}"#, "4294967295"),
            (r#"{"limit": 4294967296}"#, "4294967296"),
            (r#"{"limit": 1e30}"#, "1000000000000000000000000000000"),
            (r#"{"limit": -1}"#, "-1"),
        ] {
            let e = read(json).unwrap_err();
            assert!(
                e.starts_with(&format!("must be 0 to 1000000, got {got}")),
                "{json}: {e}"
            );
        }
        let e = read(r#"{"limit": 1.5}"#).unwrap_err();
        assert!(
            e.starts_with("must be a whole number 0 to 1000000, got 1.5"),
            "{e}"
        );
        let e = read(r#"{"limit": "20"}"#).unwrap_err();
        assert!(e.contains("expected a whole number 0 to 1000000"), "{e}");
        assert!(read(r#"{"limit": 1, "size": 0}"#).is_err());
    }
}
