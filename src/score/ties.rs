//! Tie-break keys of the rankings (value segments, risk deciles, targeting): each
//! subscriber's `subscriber_id`, integers by value and strings by their UTF-8 bytes, the
//! order Spark's `orderBy` gives a `bigint` and a `string` column. The kernel gathers
//! them; the population steps compare by them.

use std::cmp::Ordering;

use arrow::array::{Array, AsArray, LargeStringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use serde::{Deserialize, Serialize};

use crate::model::ModelError;

/// A subscriber's tie-break key: its `subscriber_id`, an integer by value or a string by
/// its UTF-8 bytes (Spark's order of a `bigint` and of a `string`). In JSON, a number or
/// a string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TieKey {
    Int(i64),
    Str(String),
}

/// The tie-break keys of a set of rows, in their order.
#[derive(Debug, Clone)]
pub enum TieKeys {
    Int(Vec<i64>),
    Str(LargeStringArray),
}

impl Default for TieKeys {
    fn default() -> Self {
        TieKeys::Int(Vec::new())
    }
}

impl TieKeys {
    /// The keys of a `subscriber_id` column: integers of any width (as `bigint`), or
    /// strings of any Arrow encoding (dictionary included).
    pub fn of(ids: &dyn Array) -> Result<TieKeys, ModelError> {
        let nulls = |n: usize, what: &str| {
            ModelError::Data(format!(
                "`subscriber_id` holds {n} {what}: every scored subscriber needs an id that ranks"
            ))
        };
        if ids.null_count() > 0 {
            return Err(nulls(ids.null_count(), "null id(s)"));
        }
        let dt = ids.data_type();
        let integer = dt.is_integer() || matches!(dt, DataType::Dictionary(_, v) if v.is_integer());
        let unreadable = |e: arrow::error::ArrowError| {
            ModelError::Data(format!(
                "`subscriber_id` of type {dt} is neither integers nor strings: {e}"
            ))
        };
        if integer {
            let v = cast(ids, &DataType::Int64).map_err(unreadable)?;
            if v.null_count() > 0 {
                return Err(nulls(v.null_count(), "id(s) beyond a 64-bit integer"));
            }
            Ok(TieKeys::Int(
                v.as_primitive::<Int64Type>().values().to_vec(),
            ))
        } else {
            let v = cast(ids, &DataType::LargeUtf8).map_err(unreadable)?;
            Ok(TieKeys::Str(v.as_string::<i64>().clone()))
        }
    }

    pub fn len(&self) -> usize {
        match self {
            TieKeys::Int(v) => v.len(),
            TieKeys::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The order of rows `a` and `b` by key.
    pub fn cmp_rows(&self, a: usize, b: usize) -> Ordering {
        match self {
            TieKeys::Int(v) => v[a].cmp(&v[b]),
            TieKeys::Str(v) => v.value(a).as_bytes().cmp(v.value(b).as_bytes()),
        }
    }

    /// Row `i`'s key.
    pub fn key(&self, i: usize) -> TieKey {
        match self {
            TieKeys::Int(v) => TieKey::Int(v[i]),
            TieKeys::Str(v) => TieKey::Str(v.value(i).to_string()),
        }
    }

    /// Row `i`'s key against `key`. Keys of one kind only meet ([`super::population::Cutoffs::check_keys`]);
    /// were they to, an integer would rank first.
    pub fn cmp_key(&self, i: usize, key: &TieKey) -> Ordering {
        match (self, key) {
            (TieKeys::Int(v), TieKey::Int(k)) => v[i].cmp(k),
            (TieKeys::Str(v), TieKey::Str(k)) => v.value(i).as_bytes().cmp(k.as_bytes()),
            (TieKeys::Int(_), TieKey::Str(_)) => Ordering::Less,
            (TieKeys::Str(_), TieKey::Int(_)) => Ordering::Greater,
        }
    }

    /// Appends another set of keys (another shard's, of the same id column).
    pub fn extend(&mut self, other: TieKeys) {
        let as_strings = |keys: &TieKeys| -> LargeStringArray {
            match keys {
                TieKeys::Str(v) => v.clone(),
                TieKeys::Int(v) => v.iter().map(|k| Some(k.to_string())).collect(),
            }
        };
        *self = match (std::mem::take(self), other) {
            (a, b) if a.is_empty() => b,
            (a, b) if b.is_empty() => a,
            (TieKeys::Int(mut a), TieKeys::Int(b)) => {
                a.extend(b);
                TieKeys::Int(a)
            }
            // shards of one id column are of one kind; a mix ranks as text
            (a, b) => {
                let (a, b) = (as_strings(&a), as_strings(&b));
                let joined =
                    arrow::compute::concat(&[&a, &b]).map(|c| c.as_string::<i64>().clone());
                TieKeys::Str(joined.unwrap_or(a))
            }
        };
    }
}
