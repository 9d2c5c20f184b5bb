//! Floats in JSON that read back to the same bits: written as text (Rust's shortest
//! round-trip form, `"0.1"`, `"1e-7"`, `"inf"`), read from text with the correctly
//! rounded `str::parse` (or from a plain JSON number). serde_json's default number
//! parser may land an ulp away, and a cut-off an ulp away puts a subscriber at a cut in
//! the wrong decile. For the cut-offs another engine hands over (`score::population`).

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// An `f64` that serialises as exact text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExactF64(pub f64);

impl Serialize for ExactF64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:?}", self.0))
    }
}

impl<'de> Deserialize<'de> for ExactF64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Exact;
        impl Visitor<'_> for Exact {
            type Value = ExactF64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, or a number as text")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ExactF64, E> {
                v.trim()
                    .parse::<f64>()
                    .map(ExactF64)
                    .map_err(|_| E::custom(format!("`{v}` is not a number")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ExactF64, E> {
                Ok(ExactF64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ExactF64, E> {
                Ok(ExactF64(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ExactF64, E> {
                Ok(ExactF64(v as f64))
            }
        }
        d.deserialize_any(Exact)
    }
}

/// `#[serde(with = "crate::json_f64")]` on an `f64`.
pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    ExactF64(*v).serialize(s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    ExactF64::deserialize(d).map(|v| v.0)
}

/// `#[serde(with = "crate::json_f64::option")]` on an `Option<f64>` (null for `None`).
pub mod option {
    use super::ExactF64;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        v.map(ExactF64).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<ExactF64>::deserialize(d).map(|v| v.map(|x| x.0))
    }
}

#[cfg(test)]
mod tests {
    use super::ExactF64;

    #[test]
    fn floats_come_back_bit_for_bit() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if v.is_nan() {
                continue;
            }
            let text = serde_json::to_string(&ExactF64(v)).unwrap();
            let back: ExactF64 = serde_json::from_str(&text).unwrap();
            assert_eq!(back.0.to_bits(), v.to_bits(), "{text}");
        }
        let plain: ExactF64 = serde_json::from_str("0.25").unwrap();
        assert_eq!(plain.0, 0.25);
        assert!(serde_json::from_str::<ExactF64>("\"much\"").is_err());
    }
}
