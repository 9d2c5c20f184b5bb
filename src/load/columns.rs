//! Column helpers shared by the subscriber and interaction loaders: recognising string
//! types, formatting a cell for an error message, and turning date and timestamp
//! columns (any unit, any zone) into microseconds or days since the epoch. Both loaders
//! import from here; this module imports neither.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow::util::display::array_value_to_string;

use crate::asof::MICROS_PER_DAY;

/// Formats one cell for an error message: `row 12: "abc"`.
pub(crate) fn example(array: &dyn Array, row: usize) -> String {
    let value = array_value_to_string(array, row).unwrap_or_else(|_| "?".into());
    format!("row {row}: {value:?}")
}

/// Whether the type is a string, a large string, a string view or a dictionary of them.
pub(crate) fn is_string_like(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_string_like(v),
        _ => false,
    }
}

/// Converts a date-like array (Date32, Date64, Timestamp of any unit and zone) into
/// days since the epoch (timestamps rounded down to their UTC day).
pub(crate) fn to_days(array: &dyn Array) -> Option<Vec<Option<i32>>> {
    match array.data_type() {
        DataType::Date32 => Some(array.as_primitive::<Date32Type>().iter().collect()),
        DataType::Date64 | DataType::Timestamp(_, _) => {
            let micros = to_micros(array)?;
            Some(
                micros
                    .iter()
                    .map(|m| m.map(|m| m.div_euclid(MICROS_PER_DAY) as i32))
                    .collect(),
            )
        }
        _ => None,
    }
}

/// Writes the instants of a Timestamp (any unit, any zone: the stored value is UTC),
/// Date32 or Date64 array as microseconds since the epoch into `out`, with `i64::MIN`
/// for nulls. Returns false for other types.
pub fn ts_micros_into(array: &dyn Array, out: &mut Vec<i64>) -> bool {
    out.clear();
    macro_rules! fill {
        ($t:ty, $f:expr) => {{
            let a = array.as_primitive::<$t>();
            let f = $f;
            if a.null_count() == 0 {
                out.extend(a.values().iter().map(|&v| f(v as i64)));
            } else {
                out.extend(a.iter().map(|v| v.map_or(i64::MIN, |v| f(v as i64))));
            }
        }};
    }
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            fill!(TimestampSecondType, |v: i64| v.saturating_mul(1_000_000))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            fill!(TimestampMillisecondType, |v: i64| v.saturating_mul(1_000))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            fill!(TimestampMicrosecondType, |v: i64| v)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            fill!(TimestampNanosecondType, |v: i64| v.div_euclid(1_000))
        }
        DataType::Date32 => fill!(Date32Type, |v: i64| v * MICROS_PER_DAY),
        DataType::Date64 => fill!(Date64Type, |v: i64| v.saturating_mul(1_000)),
        _ => return false,
    }
    true
}

/// Like [`ts_micros_into`], with nulls as `None`; `None` for unsupported types.
pub fn to_micros(array: &dyn Array) -> Option<Vec<Option<i64>>> {
    let mut out = Vec::with_capacity(array.len());
    ts_micros_into(array, &mut out).then(|| {
        out.into_iter()
            .map(|v| (v != i64::MIN).then_some(v))
            .collect()
    })
}
