//! Serde for floats that may be `NaN` (an undefined metric, a typical value of an
//! all-missing column): JSON has no `NaN`, so it is written as `null` and read back.

use serde::{Deserialize, Deserializer, Serializer};

/// One `f64`.
pub mod scalar {
    use super::*;

    /// `NaN` and ±∞ as `null`.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    /// `null` as `NaN`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

/// A `Vec<f64>`.
pub mod vec {
    use serde::ser::SerializeSeq;

    use super::*;

    /// `NaN` and ±∞ entries as `null`.
    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for x in v {
            seq.serialize_element(&x.is_finite().then_some(*x))?;
        }
        seq.end()
    }

    /// `null` entries as `NaN`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        Ok(Vec::<Option<f64>>::deserialize(d)?
            .into_iter()
            .map(|x| x.unwrap_or(f64::NAN))
            .collect())
    }
}
